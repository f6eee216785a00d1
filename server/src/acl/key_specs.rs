//! Key specifications (Redis 7's key specs): where a command's keys are in its arguments and
//! what it does to each (read, write, insert, delete...). COMMAND INFO reports them and ACL
//! checks each key against the user's read and write patterns by them, as Redis does.

/// Key spec flags, in the order COMMAND INFO lists them.
pub mod flags {
    /// Read-only access to the key's value.
    pub const RO: u32 = 1;
    /// Read and write.
    pub const RW: u32 = 1 << 1;
    /// Overwrite: the value is replaced without being read.
    pub const OW: u32 = 1 << 2;
    /// Remove.
    pub const RM: u32 = 1 << 3;
    /// The value (or part of it) is returned or used.
    pub const ACCESS: u32 = 1 << 4;
    /// The value is updated.
    pub const UPDATE: u32 = 1 << 5;
    /// Data is added.
    pub const INSERT: u32 = 1 << 6;
    /// Data is removed.
    pub const DELETE: u32 = 1 << 7;
    /// The argument is not a key (a shard channel).
    pub const NOT_KEY: u32 = 1 << 8;
    /// The spec may not find every key.
    pub const INCOMPLETE: u32 = 1 << 9;
    /// Some arguments change the flags.
    pub const VARIABLE_FLAGS: u32 = 1 << 10;

    /// Bits and the names COMMAND INFO gives them.
    pub const NAMES: [(u32, &str); 11] = [
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

/// Where the search for keys begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// At this argument.
    Index(i32),
    /// After this keyword, searched for from this argument (from the end when negative).
    Keyword(&'static str, i32),
    /// Found by the command's own logic.
    Unknown,
}

/// How keys are found from where the search begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Find {
    /// (last key relative to the first, or from the end when negative; step; limit: with a
    /// negative last key, the keys are the remaining arguments divided by `limit`).
    Range(i32, i32, i32),
    /// (argument holding the number of keys, first key, step), relative to the beginning.
    Keynum(i32, i32, i32),
    /// Found by the command's own logic.
    Unknown,
}

/// One key spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// [`flags`] bits.
    pub flags: u32,
    /// Where the search begins.
    pub begin: Begin,
    /// How keys are found from there.
    pub find: Find,
    /// Redis's note on the spec, empty for none.
    pub notes: &'static str,
}

/// Calls `each(position, flags)` for every key `specs` find in `argv` (the name at 0), in
/// spec order, as Redis's getKeysUsingKeySpecs finds them.
pub fn for_each_key(specs: &[KeySpec], argv: &[bytes::Bytes], mut each: impl FnMut(usize, u32)) {
    let argc = argv.len() as i64;
    for spec in specs {
        let first = match spec.begin {
            Begin::Index(i) => i64::from(i),
            Begin::Keyword(word, from) => {
                let found = if from >= 0 {
                    (i64::from(from)..argc)
                        .find(|&i| argv[i as usize].eq_ignore_ascii_case(word.as_bytes()))
                } else {
                    (1..=argc + i64::from(from))
                        .rev()
                        .find(|&i| argv[i as usize].eq_ignore_ascii_case(word.as_bytes()))
                };
                match found {
                    Some(i) => i + 1,
                    None => continue,
                }
            }
            Begin::Unknown => continue,
        };
        if first <= 0 || first >= argc {
            continue;
        }
        let (last, step) = match spec.find {
            Find::Range(last, step, limit) => {
                let last = if last >= 0 {
                    first + i64::from(last)
                } else if limit == 0 {
                    argc + i64::from(last)
                } else {
                    first + (argc - first) / i64::from(limit) + i64::from(last)
                };
                (last, i64::from(step))
            }
            Find::Keynum(numidx, firstkey, step) => {
                let at = first + i64::from(numidx);
                let Some(n) = argv
                    .get(at as usize)
                    .and_then(|a| brooklet_resp::parse_int(a))
                    .filter(|&n| n >= 0)
                else {
                    continue;
                };
                let start = first + i64::from(firstkey);
                let last = (start + n - 1).min(argc - 1);
                let mut i = start;
                while i <= last {
                    each(i as usize, spec.flags);
                    i += i64::from(step).max(1);
                }
                continue;
            }
            Find::Unknown => continue,
        };
        let last = last.min(argc - 1);
        let mut i = first;
        while i <= last {
            each(i as usize, spec.flags);
            i += step.max(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;
    use bytes::Bytes;

    fn keys(specs: &[KeySpec], line: &str) -> Vec<(String, u32)> {
        let argv: Vec<Bytes> = line
            .split(' ')
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let mut out = Vec::new();
        for_each_key(specs, &argv, |i, f| {
            out.push((String::from_utf8_lossy(&argv[i]).into_owned(), f))
        });
        out
    }

    #[test]
    fn ranges_keywords_and_steps() {
        let mset = [KeySpec {
            flags: OW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(-1, 2, 0),
            notes: "",
        }];
        let got = keys(&mset, "mset a 1 b 2");
        assert_eq!(got, [("a".into(), OW | UPDATE), ("b".into(), OW | UPDATE)]);
        let xread = [KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Keyword("STREAMS", 1),
            find: Find::Range(-1, 1, 2),
            notes: "",
        }];
        let got: Vec<_> = keys(&xread, "xread COUNT 2 streams s1 s2 0 0")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, ["s1", "s2"]);
        assert!(keys(&xread, "xread COUNT 2").is_empty());
        let rename = [
            KeySpec {
                flags: RW | ACCESS | DELETE,
                begin: Begin::Index(1),
                find: Find::Range(0, 1, 0),
                notes: "",
            },
            KeySpec {
                flags: OW | UPDATE,
                begin: Begin::Index(2),
                find: Find::Range(0, 1, 0),
                notes: "",
            },
        ];
        let got: Vec<_> = keys(&rename, "rename a b")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, ["a", "b"]);
        let keynum = [KeySpec {
            flags: RO,
            begin: Begin::Index(1),
            find: Find::Keynum(0, 1, 1),
            notes: "",
        }];
        let got: Vec<_> = keys(&keynum, "x 2 a b c")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(got, ["a", "b"]);
    }
}
