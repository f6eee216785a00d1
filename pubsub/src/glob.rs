//! Redis's glob matching (`stringmatchlen` in Redis's `src/util.c`), byte for byte.
//!
//! The rules, as Redis applies them to pattern subscriptions and `PUBSUB CHANNELS`:
//!
//! - `*` matches any run of bytes, `?` exactly one byte.
//! - `[abc]` matches one byte of the set, `[^abc]` one byte outside it, `[a-z]` a range; a
//!   reversed range such as `[z-a]` means the same as `[a-z]`. Inside a class `\x` stands for
//!   the byte `x`. `[]` is an empty class and matches nothing (`[^]` matches any byte).
//! - Outside a class `\x` stands for the byte `x`; a trailing `\` stands for itself.
//! - Redis's quirks are kept on purpose, because clients see them: an unterminated class
//!   (`[abc`) takes the rest of the pattern as its members, and in `[a-]` the `]` is the end of
//!   the range `a-]`, so the class continues past it.
//!
//! Matching is on bytes; nothing is assumed about UTF-8. Ranges compare bytes as unsigned
//! (Redis compares C `char`s, which are signed on x86, so a range with a byte >= 0x80 in it
//! differs there; unsigned is what Redis does on ARM and what a reader expects).
//!
//! One deliberate difference: `*` (or `**`...) matches the empty subject, as it did in Redis up
//! to 6.x. Redis 7's loop stops as soon as the subject is empty, so there `PUBSUB CHANNELS *`
//! misses a channel named `""`; that is reported upstream as a bug (redis/redis#15643).
//!
//! Why it cannot blow up: each non-`*` token consumes exactly one subject byte, so when a
//! later `*` is reached, retrying an earlier `*` with a longer run can never help (anything
//! that retry could match, the later `*` can absorb). Keeping only the most recent `*` as the
//! backtrack point makes the worst case O(pattern × subject) instead of exponential. Redis
//! reaches the same bound with its `skipLongerMatches` flag; its extra nesting limit (1000
//! stars) is not needed here because nothing recurses.

/// Whether `subject` matches the glob `pattern` under Redis's rules (see the module docs).
pub fn glob_match(pattern: &[u8], subject: &[u8]) -> bool {
    let mut p = 0;
    let mut s = 0;
    // After the latest `*`: where the pattern resumes, and the subject byte the star's run
    // would end at on the next retry.
    let mut backtrack: Option<(usize, usize)> = None;

    loop {
        if s == subject.len() {
            // Only stars can match nothing.
            return pattern
                .get(p..)
                .is_none_or(|rest| rest.iter().all(|&b| b == b'*'));
        }
        if let Some(&token) = pattern.get(p) {
            if token == b'*' {
                while pattern.get(p) == Some(&b'*') {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                backtrack = Some((p, s));
                continue;
            }
            if let Some(next) = match_one(pattern, p, subject[s]) {
                p = next;
                s += 1;
                continue;
            }
        }
        // Mismatch, or pattern used up with subject left: let the latest star eat one more byte.
        match backtrack {
            Some((resume, start)) => {
                let start = start + 1;
                backtrack = Some((resume, start));
                p = resume;
                s = start;
            }
            None => return false,
        }
    }
}

/// Matches the single-byte token at `pattern[p]` (not `*`) against `byte`; on a match returns
/// where the next token starts.
fn match_one(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => match_class(pattern, p + 1, byte),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(p + 2),
        literal => (literal == byte).then_some(p + 1),
    }
}

/// Matches a class whose body starts at `pattern[i]` (just after `[`); on a match returns where
/// the next token starts (after `]`, or the pattern's end for an unterminated class).
fn match_class(pattern: &[u8], mut i: usize, byte: u8) -> Option<usize> {
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let end = loop {
        match pattern.get(i) {
            None => break pattern.len(),
            Some(b']') => break i + 1,
            Some(b'\\') if i + 1 < pattern.len() => {
                i += 1;
                hit |= pattern[i] == byte;
            }
            Some(&low) if i + 2 < pattern.len() && pattern[i + 1] == b'-' => {
                // Redis compares the bytes as C `char`s, signed on the x86-64 builds people
                // run: `[a-\xff]` is the range -1..=97 there, not 97..=255.
                let (low, high, byte) = (low as i8, pattern[i + 2] as i8, byte as i8);
                let (low, high) = if low <= high {
                    (low, high)
                } else {
                    (high, low)
                };
                hit |= (low..=high).contains(&byte);
                i += 2;
            }
            Some(&member) => hit |= member == byte,
        }
        i += 1;
    };
    (hit != negate).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::{glob_match, match_one};

    fn m(pattern: &str, subject: &str) -> bool {
        glob_match(pattern.as_bytes(), subject.as_bytes())
    }

    #[test]
    fn literals_match_only_themselves() {
        assert!(m("news", "news"));
        assert!(!m("news", "new"));
        assert!(!m("new", "news"));
        assert!(!m("news", "News"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(!m("a", ""));
    }

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(m("*", "anything"));
        assert!(m("*", ""));
        assert!(m("**", ""));
        assert!(m("news.*", "news.tech"));
        assert!(m("news.*", "news."));
        assert!(!m("news.*", "news"));
        assert!(m("*.tech", "news.tech"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("a**b", "aZZb"));
        assert!(!m("*a", ""));
        assert!(!m("a*", ""));
        assert!(m("*a*", "bab"));
        assert!(!m("*a*", "bbb"));
    }

    #[test]
    fn star_backtracks_to_a_later_occurrence() {
        assert!(m("*ab", "aab"));
        assert!(m("*aab", "aaab"));
        assert!(m("a*a", "aa"));
        assert!(m("*x*y", "xxyxy"));
        assert!(!m("*x*y", "xxyx"));
    }

    #[test]
    fn question_mark_matches_exactly_one_byte() {
        assert!(m("h?llo", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(!m("?", ""));
        assert!(m("??", "ab"));
        assert!(!m("??", "a"));
        assert!(m("*?", "a"));
        assert!(!m("*?", ""));
    }

    #[test]
    fn classes_sets_negations_and_ranges() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[0-9][0-9]", "42"));
        assert!(m("[^0-9]", "x"));
        assert!(!m("[^0-9]", "5"));
        assert!(m("[a-cx-z]", "y"));
        assert!(!m("[a-cx-z]", "m"));
    }

    #[test]
    fn reversed_range_is_accepted_like_redis() {
        assert!(m("[z-a]", "m"));
        assert!(m("[z-a]", "a"));
        assert!(m("[z-a]", "z"));
        assert!(!m("[z-a]", "A"));
    }

    #[test]
    fn dash_first_in_class_is_literal() {
        assert!(m("[-a]", "-"));
        assert!(m("[-a]", "a"));
        assert!(!m("[-a]", "b"));
    }

    #[test]
    fn dash_before_closing_bracket_makes_a_range_like_redis() {
        // `b-]` is the range 0x5d..=0x62, not `b`, `-`; the class stays open to the end.
        assert!(m("[ab-]", "a"));
        assert!(m("[ab-]", "_"));
        assert!(!m("[ab-]", "-"));
        assert!(!m("[ab-]x", "bx"));
    }

    #[test]
    fn ranges_compare_bytes_as_signed_chars_like_redis() {
        let class = b"[a-\xff]";
        for byte in [0x00u8, b'A', b'a', 0xff] {
            assert!(glob_match(class, &[byte]), "{byte:#x}");
        }
        for byte in [b'z', 0x7f, 0x80, 0xe9] {
            assert!(!glob_match(class, &[byte]), "{byte:#x}");
        }
        // Within 0x80..=0xff the order is kept: 0x80 is the lowest.
        assert!(glob_match(b"[\x80-\xff]", &[0xc0]));
    }

    #[test]
    fn range_ending_in_bracket_keeps_class_open_like_redis() {
        // `a-]` is the range 0x5d..=0x61; the class then runs to the end of the pattern.
        assert!(m("[a-]", "_"));
        assert!(m("[a-]", "]"));
        assert!(!m("[a-]", "b"));
        assert!(m("[a-]x", "x"));
        assert!(!m("[a-]x", "_x"));
    }

    #[test]
    fn empty_class_matches_nothing_and_negated_empty_matches_anything() {
        assert!(!m("[]", "a"));
        assert!(!m("[]", ""));
        assert!(!m("[]abc]", "abc]"));
        assert!(!m("[]abc]", "]"));
        assert!(m("[^]", "a"));
        assert!(m("[^]x", "ax"));
    }

    #[test]
    fn unterminated_class_takes_rest_of_pattern_as_members() {
        assert!(m("[abc", "a"));
        assert!(m("[abc", "c"));
        assert!(!m("[abc", "d"));
        assert!(!m("[abc", "ab"));
        assert!(!m("[", "["));
        assert!(!m("[", ""));
        assert!(!m("x[", "x"));
        assert!(m("[^", "q"));
        assert!(!m("[^", ""));
        assert!(m("[a-", "-"));
        assert!(m("[a-", "a"));
    }

    #[test]
    fn escapes_outside_classes() {
        assert!(m(r"\*", "*"));
        assert!(!m(r"\*", "a"));
        assert!(m(r"a\?b", "a?b"));
        assert!(!m(r"a\?b", "axb"));
        assert!(m(r"\[x]", "[x]"));
        assert!(m(r"\\", r"\"));
        assert!(m(r"\a", "a"));
        assert!(m(r"news\*.*", "news*.x"));
        assert!(!m(r"news\*.*", "newsX.x"));
    }

    #[test]
    fn trailing_backslash_is_literal() {
        assert!(m("a\\", "a\\"));
        assert!(!m("a\\", "a"));
        assert!(m("\\", "\\"));
    }

    #[test]
    fn escapes_inside_classes() {
        assert!(m(r"[\]]", "]"));
        assert!(m(r"[\^a]", "^"));
        assert!(m(r"[\-]", "-"));
        assert!(m(r"[a\-z]", "-"));
        assert!(!m(r"[a\-z]", "m"));
        // A backslash as the pattern's last byte inside an open class is a member.
        assert!(m("[a\\", "\\"));
    }

    #[test]
    fn binary_bytes_are_matched_exactly() {
        assert!(glob_match(b"\x00*\xff", b"\x00\x80\x81\xff"));
        assert!(glob_match(b"?", b"\xc3"));
        assert!(!glob_match(b"?", b"\xc3\xa9"));
        assert!(glob_match(b"[\x80-\xff]", b"\x90"));
        assert!(!glob_match(b"[\x80-\xff]", b"\x7f"));
        assert!(glob_match(b"[^\x00]", b"\x01"));
        assert!(!glob_match(b"[^\x00]", b"\x00"));
        assert!(glob_match(b"a\x00b", b"a\x00b"));
        assert!(!glob_match(b"a\x00b", b"a"));
    }

    #[test]
    fn abusive_pattern_finishes_quickly() {
        let pattern = format!("{}b", "*a".repeat(200));
        let subject = "a".repeat(5000);
        let start = std::time::Instant::now();
        assert!(!m(&pattern, &subject));
        assert!(m(&pattern, &format!("{subject}b")));
        // Exponential backtracking would not finish in our lifetime; linear-ish is ~ms.
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn star_then_class_and_escape_combinations() {
        assert!(m("*[0-9]", "chan7"));
        assert!(!m("*[0-9]", "chan"));
        assert!(m(r"*\*", "a*"));
        assert!(m("user:*:[^x]?", "user:42:ab"));
        assert!(!m("user:*:[^x]?", "user:42:xb"));
    }

    /// Exhaustive backtracking over the same tokens: tries every run length for every star.
    /// Exponential, so only for tiny inputs; it pins that keeping only the latest star as the
    /// backtrack point changes no answer.
    fn oracle(pattern: &[u8], p: usize, subject: &[u8], s: usize) -> bool {
        match pattern.get(p) {
            None => s == subject.len(),
            Some(b'*') => (s..=subject.len()).any(|end| oracle(pattern, p + 1, subject, end)),
            Some(_) => match subject.get(s) {
                None => false,
                Some(&byte) => match_one(pattern, p, byte)
                    .is_some_and(|next| oracle(pattern, next, subject, s + 1)),
            },
        }
    }

    #[test]
    fn agrees_with_exhaustive_backtracking_on_random_inputs() {
        const PATTERN_BYTES: &[u8] = b"ab*?[]^-\\";
        const SUBJECT_BYTES: &[u8] = b"ab-]^*\\";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            // xorshift64: deterministic, no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..200_000 {
            let pattern: Vec<u8> = (0..next(9))
                .map(|_| PATTERN_BYTES[next(PATTERN_BYTES.len())])
                .collect();
            let subject: Vec<u8> = (0..next(7))
                .map(|_| SUBJECT_BYTES[next(SUBJECT_BYTES.len())])
                .collect();
            assert_eq!(
                glob_match(&pattern, &subject),
                oracle(&pattern, 0, &subject, 0),
                "pattern {:?} subject {:?}",
                String::from_utf8_lossy(&pattern),
                String::from_utf8_lossy(&subject),
            );
        }
    }
}
