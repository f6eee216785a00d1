//! Start-up configuration: `--directive value` command-line arguments and redis.conf-style
//! files, both applied directive by directive through [`Config::set`].

use std::path::Path;

use super::Config;

impl Config {
    /// Reads a redis.conf-style file: one `directive value...` per line, `#` comments. The
    /// file becomes the one CONFIG REWRITE writes back.
    pub fn load_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "Fatal error, can't open config file '{}': {e}",
                path.display()
            )
        })?;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = split_config_line(line).ok_or_else(|| {
                config_file_error(n + 1, raw, "Unbalanced quotes in configuration line")
            })?;
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            self.set(name, &values)
                .map_err(|e| config_file_error(n + 1, raw, &e.to_string()))?;
        }
        self.config_file = Some(absolute(path));
        Ok(())
    }

    /// Applies `--directive value ...` command-line arguments (and `--config FILE`).
    pub fn apply_args(&mut self, args: &[String]) -> Result<(), String> {
        let mut i = 0;
        while i < args.len() {
            let Some(name) = args[i].strip_prefix("--") else {
                if i == 0 {
                    // A bare first argument is a config file, as with redis-server.
                    self.load_file(Path::new(&args[0]))?;
                    i += 1;
                    continue;
                }
                return Err(format!(
                    "Unexpected argument '{}': directives are written --name value",
                    args[i]
                ));
            };
            let mut j = i + 1;
            while j < args.len() && !args[j].starts_with("--") {
                j += 1;
            }
            let values: Vec<&str> = args[i + 1..j].iter().map(String::as_str).collect();
            if name == "config" {
                let [file] = values.as_slice() else {
                    return Err("--config takes one file name".into());
                };
                self.load_file(Path::new(file))?;
            } else {
                self.set(name, &values)
                    .map_err(|e| format!("Invalid argument --{name}: {e}"))?;
            }
            i = j;
        }
        Ok(())
    }
}

/// `path` made absolute, as Redis keeps its config file's path: CONFIG REWRITE finds it
/// whatever the working directory later is.
fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn config_file_error(line_no: usize, line: &str, reason: &str) -> String {
    format!(
        "\n*** FATAL CONFIG FILE ERROR (Brooklet {}) ***\nReading the configuration file, at line {line_no}\n>>> '{line}'\n{reason}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Splits a config line on whitespace, honouring double and single quotes; inside double
/// quotes `\n`, `\r`, `\t`, `\b`, `\a` and `\xHH` are read as Redis reads them.
pub(super) fn split_config_line(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(words);
        };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next()? {
                    c if c == first => break,
                    '\\' if first == '"' => word.push(match chars.next()? {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'b' => '\u{8}',
                        'a' => '\u{7}',
                        'x' => {
                            let hex: String = [chars.next()?, chars.next()?].iter().collect();
                            char::from(u8::from_str_radix(&hex, 16).ok()?)
                        }
                        c => c,
                    }),
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
}
