//! Redis's ACL command categories: their names and order (COMMAND INFO and ACL CAT list them
//! in this order), each a bit of a command's category set.

/// Every category, in Redis's order; a category's bit is `1 << its index`.
pub const NAMES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// `@keyspace`.
pub const KEYSPACE: u32 = 1;
/// `@read`.
pub const READ: u32 = 1 << 1;
/// `@write`.
pub const WRITE: u32 = 1 << 2;
/// `@set`.
pub const SET: u32 = 1 << 3;
/// `@sortedset`.
pub const SORTEDSET: u32 = 1 << 4;
/// `@list`.
pub const LIST: u32 = 1 << 5;
/// `@string`.
pub const STRING: u32 = 1 << 7;
/// `@stream`.
pub const STREAM: u32 = 1 << 11;
/// `@pubsub`.
pub const PUBSUB: u32 = 1 << 12;
/// `@admin`.
pub const ADMIN: u32 = 1 << 13;
/// `@fast`.
pub const FAST: u32 = 1 << 14;
/// `@slow`.
pub const SLOW: u32 = 1 << 15;
/// `@blocking`.
pub const BLOCKING: u32 = 1 << 16;
/// `@dangerous`.
pub const DANGEROUS: u32 = 1 << 17;
/// `@connection`.
pub const CONNECTION: u32 = 1 << 18;
/// `@transaction`.
pub const TRANSACTION: u32 = 1 << 19;

/// The bit of a category named without its `@`, any case; None for an unknown name.
pub fn by_name(name: &[u8]) -> Option<u32> {
    NAMES
        .iter()
        .position(|n| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// The names of the categories in `bits`, in Redis's order.
pub fn names_of(bits: u32) -> impl Iterator<Item = &'static str> {
    NAMES
        .iter()
        .enumerate()
        .filter(move |(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_follow_the_names() {
        assert_eq!(by_name(b"STREAM"), Some(STREAM));
        assert_eq!(by_name(b"transaction"), Some(TRANSACTION));
        assert_eq!(by_name(b"all"), None);
        let listed: Vec<_> = names_of(WRITE | STREAM | FAST).collect();
        assert_eq!(listed, ["write", "stream", "fast"]);
    }
}
