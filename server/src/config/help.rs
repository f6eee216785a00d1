//! `brooklet-server --help`: the directives of [`DIRECTIVES`] with their defaults, so the
//! list of flags can never drift from what the server accepts.

use std::fmt::Write as _;

use super::{Config, DIRECTIVES};

/// The usage text: how to pass directives, then every directive CONFIG GET lists, with its
/// default and whether CONFIG SET may change it at run time.
pub fn usage() -> String {
    let defaults = Config::default();
    let mut out = String::from(
        "Usage: brooklet-server [/path/to/brooklet.conf] [--config FILE] [--directive value ...]\n\
         Directives use redis.conf names; each is a --flag, a config-file line and a CONFIG \
         GET / SET name.\n\
         Defaults shown; * marks those CONFIG SET can change while the server runs.\n\
         --import-rdb FILE: load a Redis RDB file (versions 1 to 12: streams, strings, \
         deadlines; other types skipped) into --dir, print a summary and exit.\n",
    );
    for d in DIRECTIVES {
        let Some(default) = d.get(&defaults) else {
            continue;
        };
        let shown = if default.is_empty() {
            "\"\"".to_string()
        } else if default.contains(' ') {
            format!("\"{default}\"")
        } else {
            default
        };
        let mark = if d.mutable { '*' } else { ' ' };
        let _ = writeln!(out, " {mark} --{} {shown}", d.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_lists_every_directive_config_get_shows_with_its_default() {
        let text = usage();
        let defaults = Config::default();
        for d in DIRECTIVES {
            let line = text
                .lines()
                .find(|l| l[3..].split(' ').next() == Some(&format!("--{}", d.name)));
            match d.get(&defaults) {
                Some(_) => {
                    let line = line.unwrap_or_else(|| panic!("--{} missing from --help", d.name));
                    assert_eq!(line.starts_with(" *"), d.mutable, "{line}");
                }
                None => assert!(line.is_none(), "--{} is hidden from CONFIG GET", d.name),
            }
        }
        assert!(text.contains("--port 6379\n"), "{text}");
        assert!(text.contains(" * --appendfsync everysec\n"), "{text}");
    }
}
