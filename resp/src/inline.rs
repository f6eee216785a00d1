//! Splitting an inline request (`PING`, `ECHO "a b"`) into arguments, with the rules of
//! Redis's `sdssplitargs` (src/sds.c).

use bytes::Bytes;

/// C's `isspace`: what separates arguments, and what may follow a closing quote.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What ends an unquoted word in `sdssplitargs`: fewer bytes than `isspace`, so a vertical
/// tab or form feed inside a word is part of it, though one between words separates them.
/// (Redis also stops at a NUL byte, but it never finishes reading a line that holds one: it
/// looks for the newline with `strchr`. Brooklet reads such a line and keeps the NUL.)
fn ends_word(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Splits one inline line into arguments; `None` for unbalanced quotes, or a closing quote
/// followed by something other than a space.
pub(crate) fn split_inline(line: &Bytes) -> Option<Vec<Bytes>> {
    let s = &line[..];
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i >= s.len() {
            return Some(out);
        }
        let start = i;
        while i < s.len() && !ends_word(s[i]) && s[i] != b'"' && s[i] != b'\'' {
            i += 1;
        }
        match s.get(i) {
            Some(b'"') => {
                // A quote inside a word opens a quoted part of the same argument, as in
                // Redis: `a"b c"` is the one argument `ab c`. Its closing quote ends it.
                let (arg, next) = double_quoted(s, i + 1, s[start..i].to_vec())?;
                out.push(Bytes::from(arg));
                i = next;
            }
            Some(b'\'') => {
                let (arg, next) = single_quoted(s, i + 1, s[start..i].to_vec())?;
                out.push(Bytes::from(arg));
                i = next;
            }
            // A bare word is a zero-copy slice of the read buffer.
            _ => out.push(line.slice(start..i)),
        }
    }
}

/// Parses a `"..."` part starting after the quote onto `arg`; returns the argument and the
/// index after the closing quote.
fn double_quoted(s: &[u8], mut i: usize, mut arg: Vec<u8>) -> Option<(Vec<u8>, usize)> {
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

/// Parses a `'...'` part starting after the quote onto `arg`; only `\'` is an escape.
fn single_quoted(s: &[u8], mut i: usize, mut arg: Vec<u8>) -> Option<(Vec<u8>, usize)> {
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
        Some(&c) if is_space(c) => Some(next),
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
    fn quotes_inside_a_word_continue_it_as_in_redis() {
        assert_eq!(split(r#"echo a"b c""#).unwrap(), ["echo", "ab c"]);
        assert_eq!(split("echo a'b c' d").unwrap(), ["echo", "ab c", "d"]);
    }

    #[test]
    fn vertical_tab_and_form_feed_separate_words_but_do_not_end_them() {
        assert_eq!(split("\x0becho \x0cx\x0by").unwrap(), ["echo", "x\x0by"]);
        assert_eq!(split("echo\x0c x").unwrap(), ["echo\x0c", "x"]);
        assert_eq!(split("echo \"x\"\x0b'y'\x0c").unwrap(), ["echo", "x", "y"]);
        assert!(split("\x0b\x0c").unwrap().is_empty());
    }

    #[test]
    fn malformed_quotes_are_refused() {
        assert!(split(r#"echo "abc"#).is_none());
        assert!(split(r#"echo "abc"d"#).is_none());
        assert!(split("echo 'abc").is_none());
    }
}
