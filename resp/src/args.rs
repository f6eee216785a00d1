//! A cursor over a request's arguments, for parsing them into typed structs.

use bytes::Bytes;
use std::fmt;

use crate::request::parse_i64;

/// Why an argument could not be parsed; `Display` is Redis's exact error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// `ERR syntax error`: a missing, extra or unknown argument.
    Syntax,
    /// `ERR value is not an integer or out of range`.
    NotInteger,
    /// `ERR value is out of range, must be positive`.
    NotPositive,
    /// `ERR timeout is not an integer or out of range`.
    Timeout,
    /// `ERR timeout is negative`.
    NegativeTimeout,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArgError::Syntax => "ERR syntax error",
            ArgError::NotInteger => "ERR value is not an integer or out of range",
            ArgError::NotPositive => "ERR value is out of range, must be positive",
            ArgError::Timeout => "ERR timeout is not an integer or out of range",
            ArgError::NegativeTimeout => "ERR timeout is negative",
        })
    }
}

impl std::error::Error for ArgError {}

/// The arguments of one request after the command name, consumed front to back.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    argv: &'a [Bytes],
    pos: usize,
}

impl<'a> Args<'a> {
    /// A cursor over `argv` (the command name excluded).
    pub fn new(argv: &'a [Bytes]) -> Self {
        Args { argv, pos: 0 }
    }

    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.argv.len() - self.pos
    }

    /// Whether every argument has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The arguments not consumed yet.
    pub fn rest(&self) -> &'a [Bytes] {
        &self.argv[self.pos..]
    }

    /// The next argument without consuming it.
    pub fn peek(&self) -> Option<&'a Bytes> {
        self.argv.get(self.pos)
    }

    /// The next argument, or a syntax error when there is none.
    pub fn next_bytes(&mut self) -> Result<&'a Bytes, ArgError> {
        let arg = self.argv.get(self.pos).ok_or(ArgError::Syntax)?;
        self.pos += 1;
        Ok(arg)
    }

    /// The next argument as a signed integer (Redis's `string2ll` rules).
    pub fn next_i64(&mut self) -> Result<i64, ArgError> {
        parse_i64(self.next_bytes()?).ok_or(ArgError::NotInteger)
    }

    /// The next argument as a non-negative integer.
    pub fn next_u64(&mut self) -> Result<u64, ArgError> {
        let n = self.next_i64()?;
        u64::try_from(n).map_err(|_| ArgError::NotInteger)
    }

    /// Consumes the next argument when it equals `keyword` (ASCII case-insensitive).
    pub fn eat_keyword(&mut self, keyword: &str) -> bool {
        match self.peek() {
            Some(a) if a.eq_ignore_ascii_case(keyword.as_bytes()) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// Fails with a syntax error when arguments are left over.
    pub fn finish(&self) -> Result<(), ArgError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ArgError::Syntax)
        }
    }
}

/// `word` upper-cased into `buf`, for matching against keywords without an allocation;
/// empty when it is longer than `buf` (no keyword is).
pub fn upper_keyword<'b, const N: usize>(word: &[u8], buf: &'b mut [u8; N]) -> &'b [u8] {
    let Some(room) = buf.get_mut(..word.len()) else {
        return &[];
    };
    for (d, s) in room.iter_mut().zip(word) {
        *d = s.to_ascii_uppercase();
    }
    room
}

/// Parses a whole argument as a signed integer (Redis's `string2ll` rules).
pub fn parse_int(arg: &[u8]) -> Option<i64> {
    parse_i64(arg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keywords_upper_cased_in_place() {
        let mut buf = [0u8; 8];
        assert_eq!(upper_keyword(b"ex", &mut buf), b"EX");
        assert_eq!(upper_keyword(b"KeepTtl", &mut buf), b"KEEPTTL");
        assert_eq!(upper_keyword(b"12345678", &mut buf), b"12345678");
        assert_eq!(upper_keyword(b"123456789", &mut buf), b"");
        assert_eq!(upper_keyword(b"", &mut buf), b"");
    }

    #[test]
    fn cursor_reads_keywords_and_numbers() {
        let argv = [Bytes::from("count"), Bytes::from("10"), Bytes::from("x")];
        let mut a = Args::new(&argv);
        assert!(!a.eat_keyword("BLOCK"));
        assert!(a.eat_keyword("COUNT"));
        assert_eq!(a.next_u64().unwrap(), 10);
        assert_eq!(a.finish(), Err(ArgError::Syntax));
        assert_eq!(a.next_i64(), Err(ArgError::NotInteger));
        assert_eq!(a.next_bytes(), Err(ArgError::Syntax));
    }
}
