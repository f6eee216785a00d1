//! XGROUP SETDLQ (a Brooklet extension): a consumer group's dead-letter stream. Entries
//! are dead-lettered by the redelivery commands (XCLAIM, XAUTOCLAIM, XREADGROUP) and XNACK
//! FATAL; the write sequence appends them (`write.rs`, `dead_letter.rs`).

use bytes::Bytes;

use brooklet_resp::{Args, Reply};
use brooklet_streams::{DeadLetterConfig, StreamError};

use super::Ctx;
use super::write::Missing;
use crate::error::CommandError;

/// `ERR` when the dead-letter key is the stream itself.
const SAME_KEY: &str = "ERR The dead-letter key must be another key than the stream";
/// `ERR` when MAXDELIVERIES is not a positive integer.
const MAX_DELIVERIES_POSITIVE: &str = "ERR MAXDELIVERIES must be > 0";

/// XGROUP SETDLQ's arguments.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct XGroupSetDlqArgs<'a> {
    /// The stream's key.
    pub key: &'a Bytes,
    /// The consumer group.
    pub group: &'a Bytes,
    /// The dead-letter stream and limit; `None` for NONE.
    pub dlq: Option<DeadLetterConfig>,
}

impl<'a> XGroupSetDlqArgs<'a> {
    /// # Format
    /// `key group dlq-key MAXDELIVERIES n` or `key group NONE`, after XGROUP SETDLQ.
    pub fn parse(args: &mut Args<'a>) -> Result<Self, CommandError> {
        let key = args.next_bytes()?;
        let group = args.next_bytes()?;
        if args.remaining() == 1 && args.eat_keyword("NONE") {
            return Ok(XGroupSetDlqArgs {
                key,
                group,
                dlq: None,
            });
        }
        let dlq_key = args.next_bytes()?;
        if !args.eat_keyword("MAXDELIVERIES") || args.remaining() != 1 {
            return Err(CommandError::syntax());
        }
        let max_deliveries = args
            .next_i64()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(CommandError::msg(MAX_DELIVERIES_POSITIVE))?;
        if dlq_key == key {
            return Err(CommandError::msg(SAME_KEY));
        }
        Ok(XGroupSetDlqArgs {
            key,
            group,
            dlq: Some(DeadLetterConfig {
                key: dlq_key.clone(),
                max_deliveries: max_deliveries as u64,
            }),
        })
    }
}

/// XGROUP SETDLQ: sets or removes a group's dead-letter stream.
pub(crate) fn setdlq(ctx: &mut Ctx<'_>, argv: &[Bytes]) -> Result<Reply, CommandError> {
    let a = XGroupSetDlqArgs::parse(&mut Args::new(&argv[2..]))?;
    // A key of another type is refused here; one replacing the stream later is refused
    // when an entry would be dead-lettered into it.
    if let Some(d) = &a.dlq
        && let Some(v) = ctx.db().lock(&d.key).get(&d.key)
    {
        v.stream()?;
    }
    let missing = || CommandError::from(StreamError::XGroupKeyMissing);
    ctx.write_stream(a.key, Missing::Fail(&missing), |s, out, fx| {
        s.set_group_dlq(a.key, a.group, a.dlq.clone(), out)?;
        fx.changed("xgroup-setdlq");
        Ok(Reply::Ok)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<DeadLetterConfig>, String> {
        let argv: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        XGroupSetDlqArgs::parse(&mut Args::new(&argv))
            .map(|a| a.dlq)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn setdlq_arguments_and_errors() {
        assert_eq!(parse("s g NONE"), Ok(None));
        assert_eq!(parse("s g none"), Ok(None));
        assert_eq!(
            parse("s g dead MAXDELIVERIES 3"),
            Ok(Some(DeadLetterConfig {
                key: Bytes::from("dead"),
                max_deliveries: 3
            }))
        );
        assert_eq!(
            parse("s g dead maxdeliveries 1")
                .unwrap()
                .unwrap()
                .max_deliveries,
            1
        );
        for bad in [
            "s g dead MAXDELIVERIES 0",
            "s g dead MAXDELIVERIES -1",
            "s g dead MAXDELIVERIES x",
        ] {
            assert_eq!(parse(bad), Err(MAX_DELIVERIES_POSITIVE.into()), "{bad}");
        }
        assert_eq!(parse("s g s MAXDELIVERIES 2"), Err(SAME_KEY.into()));
        for bad in [
            "s g dead",
            "s g dead 3",
            "s g dead MAXDELIVERIES 3 4",
            "s g NONE x",
            "s g dead COUNT 3",
        ] {
            assert_eq!(parse(bad), Err("ERR syntax error".into()), "{bad}");
        }
    }
}
