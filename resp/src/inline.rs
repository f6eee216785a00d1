//! Splitting an inline request (`PING`, `ECHO "a b"`) into arguments, with the quoting rules
//! of Redis's `sdssplitargs`.

use bytes::Bytes;

/// Splits one inline line into arguments; `None` for unbalanced quotes.
pub(crate) fn split_inline(line: &Bytes) -> Option<Vec<Bytes>> {
    let s = &line[..];
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= s.len() {
            return Some(out);
        }
        match s[i] {
            b'"' => {
                let (arg, next) = double_quoted(s, i + 1)?;
                out.push(Bytes::from(arg));
                i = next;
            }
            b'\'' => {
                let (arg, next) = single_quoted(s, i + 1)?;
                out.push(Bytes::from(arg));
                i = next;
            }
            _ => {
                let start = i;
                while i < s.len() && !s[i].is_ascii_whitespace() && s[i] != b'"' && s[i] != b'\'' {
                    i += 1;
                }
                // A bare word is a zero-copy slice of the read buffer.
                out.push(line.slice(start..i));
                if i < s.len() && !s[i].is_ascii_whitespace() {
                    // Quotes glued to a word: Redis treats the rest as part of the same
                    // token only inside quotes, so a quote here starts a malformed token.
                    return None;
                }
            }
        }
    }
}

/// Parses a `"..."` token starting after the quote; returns it and the index after it.
fn double_quoted(s: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut arg = Vec::new();
    loop {
        let &c = s.get(i)?;
        match c {
            b'\\'
                if s.get(i + 1) == Some(&b'x')
                    && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                    && s.get(i + 3).is_some_and(u8::is_ascii_hexdigit) =>
            {
                arg.push(hex(s[i + 2]) * 16 + hex(s[i + 3]));
                i += 4;
            }
            b'\\' if i + 1 < s.len() => {
                arg.push(match s[i + 1] {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
            }
            b'"' => return closing(s, i + 1).map(|next| (arg, next)),
            _ => {
                arg.push(c);
                i += 1;
            }
        }
    }
}

/// Parses a `'...'` token starting after the quote; only `\'` is an escape.
fn single_quoted(s: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut arg = Vec::new();
    loop {
        let &c = s.get(i)?;
        match c {
            b'\\' if s.get(i + 1) == Some(&b'\'') => {
                arg.push(b'\'');
                i += 2;
            }
            b'\'' => return closing(s, i + 1).map(|next| (arg, next)),
            _ => {
                arg.push(c);
                i += 1;
            }
        }
    }
}

/// A closing quote must be followed by a space or the end of the line.
fn closing(s: &[u8], next: usize) -> Option<usize> {
    match s.get(next) {
        None => Some(next),
        Some(c) if c.is_ascii_whitespace() => Some(next),
        Some(_) => None,
    }
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(s: &str) -> Option<Vec<String>> {
        split_inline(&Bytes::copy_from_slice(s.as_bytes())).map(|v| {
            v.iter()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
                .collect()
        })
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(split("  set  a b ").unwrap(), ["set", "a", "b"]);
        assert_eq!(
            split(r#"echo "a\x41\n" 'it\'s'"#).unwrap(),
            ["echo", "aA\n", "it's"]
        );
        assert_eq!(split(r#"echo """#).unwrap(), ["echo", ""]);
    }

    #[test]
    fn malformed_quotes_are_refused() {
        assert!(split(r#"echo "abc"#).is_none());
        assert!(split(r#"echo "abc"d"#).is_none());
        assert!(split("echo 'abc").is_none());
    }
}
