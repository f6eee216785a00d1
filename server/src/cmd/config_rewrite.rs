//! CONFIG REWRITE (its text is built by `config::rewrite`).

use bytes::Bytes;

use brooklet_resp::Reply;

use super::Ctx;
use crate::error::CommandError;

/// CONFIG REWRITE: writes the current configuration into the file the server started from.
pub(super) fn config_rewrite(ctx: &mut Ctx<'_>, _: &[Bytes]) -> Result<Reply, CommandError> {
    let (path, text) = {
        let c = ctx.shared.config();
        let Some(path) = c.repl.config_file.clone() else {
            return Err(CommandError::msg(
                "ERR The server is running without a config file",
            ));
        };
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        (path, crate::config::rewrite(&old, &c))
    };
    let tmp = path.with_extension("rewrite-tmp");
    let written = std::fs::write(&tmp, text)
        .and_then(|()| std::fs::File::open(&tmp).and_then(|f| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            Ok(Reply::Ok)
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(CommandError::text(format!(
                "ERR Rewriting config file: {e}"
            )))
        }
    }
}
