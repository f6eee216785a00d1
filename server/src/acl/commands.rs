//! Every command's ACL categories and key specs, as Redis reports them (COMMAND INFO of Redis
//! 7, from the command descriptions in its `src/commands/*.json`), keyed by full name. Kept
//! apart from the command table so that a family adding a command adds one row here; a
//! command without a row gets categories derived from its flags and group.
//!
//! Rows cover Redis's generic, server, connection, pub/sub, stream, string and transaction
//! commands, including ones Brooklet does not have yet, so they are right when added.

use super::categories::*;
use super::key_specs::flags::*;
use super::key_specs::{Begin, Find, KeySpec};

/// A command's categories and key specs.
#[derive(Debug)]
pub struct CommandAcl {
    /// Full name: `xadd`, `config|set`.
    pub name: &'static str,
    /// Category bits ([`super::categories`]).
    pub categories: u32,
    /// Key specs, in Redis's order.
    pub key_specs: &'static [KeySpec],
}

/// The rows, by name.
pub const COMMANDS: &[CommandAcl] = &[
    CommandAcl {
        name: "acl",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|cat",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|deluser",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|dryrun",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|genpass",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|getuser",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|help",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|list",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|load",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|log",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|save",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|setuser",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|users",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "acl|whoami",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "append",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | INSERT,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "auth",
        categories: FAST | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "bgrewriteaof",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "bgsave",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "client",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|caching",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|getname",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|getredir",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|help",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|id",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|info",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|kill",
        categories: ADMIN | SLOW | DANGEROUS | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|list",
        categories: ADMIN | SLOW | DANGEROUS | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|no-evict",
        categories: ADMIN | SLOW | DANGEROUS | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|no-touch",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|pause",
        categories: ADMIN | SLOW | DANGEROUS | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|reply",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|setinfo",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|setname",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|tracking",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|trackinginfo",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|unblock",
        categories: ADMIN | SLOW | DANGEROUS | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "client|unpause",
        categories: ADMIN | SLOW | DANGEROUS | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "command",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "command|count",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "command|docs",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "command|getkeys",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "command|getkeysandflags",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "command|help",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "command|info",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "command|list",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "config",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "config|get",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "config|help",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "config|resetstat",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "config|rewrite",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "config|set",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "copy",
        categories: KEYSPACE | WRITE | SLOW,
        key_specs: &[
            KeySpec {
                flags: RO | ACCESS,
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
        ],
    },
    CommandAcl {
        name: "dbsize",
        categories: KEYSPACE | READ | FAST,
        key_specs: &[],
    },
    CommandAcl {
        name: "debug",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "decr",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "decrby",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "del",
        categories: KEYSPACE | WRITE | SLOW,
        key_specs: &[KeySpec {
            flags: RM | DELETE,
            begin: Begin::Index(1),
            find: Find::Range(-1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "discard",
        categories: FAST | TRANSACTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "dump",
        categories: KEYSPACE | READ | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "echo",
        categories: FAST | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "exec",
        categories: SLOW | TRANSACTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "exists",
        categories: KEYSPACE | READ | FAST,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(1),
            find: Find::Range(-1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "expire",
        categories: KEYSPACE | WRITE | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "expireat",
        categories: KEYSPACE | WRITE | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "expiretime",
        categories: KEYSPACE | READ | FAST,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "failover",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "flushall",
        categories: KEYSPACE | WRITE | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "flushdb",
        categories: KEYSPACE | WRITE | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "get",
        categories: READ | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "getdel",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | DELETE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "getex",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "RW and UPDATE because it changes the TTL",
        }],
    },
    CommandAcl {
        name: "getrange",
        categories: READ | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "getset",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "hello",
        categories: FAST | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "incr",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "incrby",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "incrbyfloat",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "info",
        categories: SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "keys",
        categories: KEYSPACE | READ | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "lastsave",
        categories: ADMIN | FAST | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "latency",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "latency|doctor",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "latency|graph",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "latency|help",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "latency|histogram",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "latency|history",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "latency|latest",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "latency|reset",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "lcs",
        categories: READ | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "lolwut",
        categories: READ | FAST,
        key_specs: &[],
    },
    CommandAcl {
        name: "memory",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "memory|doctor",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "memory|help",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "memory|malloc-stats",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "memory|purge",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "memory|stats",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "memory|usage",
        categories: READ | SLOW,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "mget",
        categories: READ | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(-1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "migrate",
        categories: KEYSPACE | WRITE | SLOW | DANGEROUS,
        key_specs: &[
            KeySpec {
                flags: RW | ACCESS | DELETE,
                begin: Begin::Index(3),
                find: Find::Range(0, 1, 0),
                notes: "",
            },
            KeySpec {
                flags: RW | ACCESS | DELETE | INCOMPLETE,
                begin: Begin::Keyword("KEYS", -2),
                find: Find::Range(-1, 1, 0),
                notes: "",
            },
        ],
    },
    CommandAcl {
        name: "module",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "module|help",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "module|list",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "module|load",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "module|loadex",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "module|unload",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "monitor",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "move",
        categories: KEYSPACE | WRITE | FAST,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "mset",
        categories: WRITE | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: OW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(-1, 2, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "msetnx",
        categories: WRITE | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: OW | INSERT,
            begin: Begin::Index(1),
            find: Find::Range(-1, 2, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "multi",
        categories: FAST | TRANSACTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "object",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "object|encoding",
        categories: KEYSPACE | READ | SLOW,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "object|freq",
        categories: KEYSPACE | READ | SLOW,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "object|help",
        categories: KEYSPACE | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "object|idletime",
        categories: KEYSPACE | READ | SLOW,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "object|refcount",
        categories: KEYSPACE | READ | SLOW,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "persist",
        categories: KEYSPACE | WRITE | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "pexpire",
        categories: KEYSPACE | WRITE | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "pexpireat",
        categories: KEYSPACE | WRITE | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "pexpiretime",
        categories: KEYSPACE | READ | FAST,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "ping",
        categories: FAST | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "psetex",
        categories: WRITE | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: OW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "psubscribe",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "psync",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "pttl",
        categories: KEYSPACE | READ | FAST,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "publish",
        categories: PUBSUB | FAST,
        key_specs: &[],
    },
    CommandAcl {
        name: "pubsub",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "pubsub|channels",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "pubsub|help",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "pubsub|numpat",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "pubsub|numsub",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "pubsub|shardchannels",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "pubsub|shardnumsub",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "punsubscribe",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "quit",
        categories: FAST | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "randomkey",
        categories: KEYSPACE | READ | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "rename",
        categories: KEYSPACE | WRITE | SLOW,
        key_specs: &[
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
        ],
    },
    CommandAcl {
        name: "renamenx",
        categories: KEYSPACE | WRITE | FAST,
        key_specs: &[
            KeySpec {
                flags: RW | ACCESS | DELETE,
                begin: Begin::Index(1),
                find: Find::Range(0, 1, 0),
                notes: "",
            },
            KeySpec {
                flags: OW | INSERT,
                begin: Begin::Index(2),
                find: Find::Range(0, 1, 0),
                notes: "",
            },
        ],
    },
    CommandAcl {
        name: "replconf",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "replicaof",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        // Brooklet's own: a primary's stream records for one key, sent to its replicas.
        name: "replstream",
        categories: WRITE | ADMIN | SLOW | DANGEROUS | STREAM,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "reset",
        categories: FAST | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "restore",
        categories: KEYSPACE | WRITE | SLOW | DANGEROUS,
        key_specs: &[KeySpec {
            flags: OW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "restore-asking",
        categories: KEYSPACE | WRITE | SLOW | DANGEROUS,
        key_specs: &[KeySpec {
            flags: OW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "role",
        categories: ADMIN | FAST | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "save",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "scan",
        categories: KEYSPACE | READ | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "select",
        categories: FAST | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "set",
        categories: WRITE | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: RW | ACCESS | UPDATE | VARIABLE_FLAGS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "RW and ACCESS due to the optional `GET` argument",
        }],
    },
    CommandAcl {
        name: "setex",
        categories: WRITE | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: OW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "setnx",
        categories: WRITE | STRING | FAST,
        key_specs: &[KeySpec {
            flags: OW | INSERT,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "setrange",
        categories: WRITE | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "shutdown",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "slaveof",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "slowlog",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "slowlog|get",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "slowlog|help",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "slowlog|len",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "slowlog|reset",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "sort",
        categories: WRITE | SET | SORTEDSET | LIST | SLOW | DANGEROUS,
        key_specs: &[
            KeySpec {
                flags: RO | ACCESS,
                begin: Begin::Index(1),
                find: Find::Range(0, 1, 0),
                notes: "",
            },
            KeySpec {
                flags: RO | ACCESS,
                begin: Begin::Unknown,
                find: Find::Unknown,
                notes: "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort",
            },
            KeySpec {
                flags: OW | UPDATE,
                begin: Begin::Unknown,
                find: Find::Unknown,
                notes: "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array",
            },
        ],
    },
    CommandAcl {
        name: "sort_ro",
        categories: READ | SET | SORTEDSET | LIST | SLOW | DANGEROUS,
        key_specs: &[
            KeySpec {
                flags: RO | ACCESS,
                begin: Begin::Index(1),
                find: Find::Range(0, 1, 0),
                notes: "",
            },
            KeySpec {
                flags: RO | ACCESS,
                begin: Begin::Unknown,
                find: Find::Unknown,
                notes: "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort",
            },
        ],
    },
    CommandAcl {
        name: "spublish",
        categories: PUBSUB | FAST,
        key_specs: &[KeySpec {
            flags: NOT_KEY,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "ssubscribe",
        categories: PUBSUB | SLOW,
        key_specs: &[KeySpec {
            flags: NOT_KEY,
            begin: Begin::Index(1),
            find: Find::Range(-1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "strlen",
        categories: READ | STRING | FAST,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "subscribe",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "substr",
        categories: READ | STRING | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "sunsubscribe",
        categories: PUBSUB | SLOW,
        key_specs: &[KeySpec {
            flags: NOT_KEY,
            begin: Begin::Index(1),
            find: Find::Range(-1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "swapdb",
        categories: KEYSPACE | WRITE | FAST | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "sync",
        categories: ADMIN | SLOW | DANGEROUS,
        key_specs: &[],
    },
    CommandAcl {
        name: "time",
        categories: FAST,
        key_specs: &[],
    },
    CommandAcl {
        name: "touch",
        categories: KEYSPACE | READ | FAST,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(1),
            find: Find::Range(-1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "ttl",
        categories: KEYSPACE | READ | FAST,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "type",
        categories: KEYSPACE | READ | FAST,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "unlink",
        categories: KEYSPACE | WRITE | FAST,
        key_specs: &[KeySpec {
            flags: RM | DELETE,
            begin: Begin::Index(1),
            find: Find::Range(-1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "unsubscribe",
        categories: PUBSUB | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "unwatch",
        categories: FAST | TRANSACTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "wait",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "waitaof",
        categories: SLOW | CONNECTION,
        key_specs: &[],
    },
    CommandAcl {
        name: "watch",
        categories: FAST | TRANSACTION,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(1),
            find: Find::Range(-1, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xack",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xackdel",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE | DELETE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xadd",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "UPDATE instead of INSERT because of the optional trimming feature",
        }],
    },
    CommandAcl {
        name: "xautoclaim",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | DELETE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xcfgset",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xclaim",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xdel",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | DELETE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xdelex",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | DELETE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xgroup",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "xgroup|create",
        categories: WRITE | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RW | INSERT,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xgroup|createconsumer",
        categories: WRITE | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RW | INSERT,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xgroup|delconsumer",
        categories: WRITE | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RW | DELETE,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xgroup|destroy",
        categories: WRITE | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RW | DELETE,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xgroup|help",
        categories: STREAM | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "xgroup|setdlq",
        categories: WRITE | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xgroup|setid",
        categories: WRITE | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xidmprecord",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xinfo",
        categories: SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "xinfo|consumers",
        categories: READ | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xinfo|groups",
        categories: READ | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xinfo|help",
        categories: STREAM | SLOW,
        key_specs: &[],
    },
    CommandAcl {
        name: "xinfo|stream",
        categories: READ | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(2),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xlen",
        categories: READ | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RO,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xnack",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xpending",
        categories: READ | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xrange",
        categories: READ | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xread",
        categories: READ | STREAM | SLOW | BLOCKING,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Keyword("STREAMS", 1),
            find: Find::Range(-1, 1, 2),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xreadgroup",
        categories: WRITE | STREAM | SLOW | BLOCKING,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Keyword("STREAMS", 4),
            find: Find::Range(-1, 1, 2),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xrevrange",
        categories: READ | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RO | ACCESS,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xsetid",
        categories: WRITE | STREAM | FAST,
        key_specs: &[KeySpec {
            flags: RW | UPDATE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
    CommandAcl {
        name: "xtrim",
        categories: WRITE | STREAM | SLOW,
        key_specs: &[KeySpec {
            flags: RW | DELETE,
            begin: Begin::Index(1),
            find: Find::Range(0, 1, 0),
            notes: "",
        }],
    },
];
