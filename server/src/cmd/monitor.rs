//! MONITOR: from now on, every command any client runs is shown to this one (`monitor.rs`
//! keeps the monitors and writes the lines; `observe.rs` feeds them).

use bytes::Bytes;

use brooklet_resp::Reply;

use super::table::flags::*;
use super::table::simple;
use super::{CommandSpec, Ctx};
use crate::error::CommandError;

/// This family's commands.
pub const COMMANDS: &[CommandSpec] = &[simple("monitor", 1, ADMIN | NO_MULTI | LOADING, monitor)];

/// Turns the client into a monitor; a second MONITOR is answered with nothing, as Redis
/// ignores it.
fn monitor(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    if ctx.shared.monitors.add(ctx.client.handle.clone()) {
        Ok(Reply::Ok)
    } else {
        Ok(Reply::Raw(Bytes::new()))
    }
}

/// Ends monitor mode (RESET, disconnection).
pub(crate) fn stop(ctx: &Ctx<'_>) {
    if ctx.shared.monitors.any() {
        ctx.shared.monitors.remove(ctx.client.id());
    }
}
