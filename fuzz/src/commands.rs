//! Every command in the command table, with fuzzed arguments, on an in-process server.
//!
//! The input is read as a script for up to three clients ([`Session`]s of one [`Embedded`]
//! server): each step picks a client and either sends it a command, sends it raw bytes, ends
//! its blocked command's wait as a timeout would, or replaces it once it was closed. A command
//! is a name drawn from the real command table (`xgroup|create` is sent as `XGROUP CREATE`)
//! and arguments drawn from what the parsers look for (stream IDs, numbers, keywords such as
//! MAXLEN ~ LIMIT COUNT BLOCK STREAMS GROUP NOACK IDLE TIME RETRYCOUNT FORCE JUSTID LASTID
//! MKSTREAM ENTRIESREAD, a few keys, groups and consumers) or raw bytes, so one flipped byte
//! moves the fuzzer from one command or option to another.
//!
//! Checked: no handler panics; what each client receives is always a sequence of complete
//! RESP frames an independent decoder reads (a reply with a raw CR LF in a simple string, or a
//! wrong length, would fail); and, after the script, the streams survive the store: every
//! stream's `XINFO STREAM key FULL` is the same before and after `DEBUG RELOAD` drops memory
//! and loads everything back from fjall.
//!
//! Nothing waits: a command that blocks stays blocked until another client's write serves
//! it, a timeout step or the end of the script, whatever BLOCK says.

use std::sync::OnceLock;

use brooklet_server::Config;
use brooklet_server::embedded::{Embedded, Session};
use redis_protocol::resp2::types::OwnedFrame as F2;

use crate::input::Input;

/// Steps of one script; enough to build state and use it, few enough to keep runs fast.
const MAX_STEPS: usize = 48;

/// The databases a script can reach with SELECT (the server's default `databases`).
const DATABASES: usize = 16;

/// Tokens the argument parsers react to, and hostile values.
const TOKENS: &[&[u8]] = &[
    b"MAXLEN",
    b"MINID",
    b"~",
    b"=",
    b"LIMIT",
    b"COUNT",
    b"BLOCK",
    b"STREAMS",
    b"GROUP",
    b"NOACK",
    b"IDLE",
    b"TIME",
    b"RETRYCOUNT",
    b"FORCE",
    b"JUSTID",
    b"LASTID",
    b"MKSTREAM",
    b"ENTRIESREAD",
    b"NOMKSTREAM",
    b"ENTRIESADDED",
    b"MAXDELETEDID",
    b"FULL",
    b"CREATE",
    b"SETID",
    b"DESTROY",
    b"CREATECONSUMER",
    b"DELCONSUMER",
    b"CONSUMERS",
    b"GROUPS",
    b"STREAM",
    b"HELP",
    b"*",
    b"$",
    b">",
    b"+",
    b"-",
    b"0",
    b"1",
    b"-1",
    b"MATCH",
    b"TYPE",
    b"ID",
    b"ADDR",
    b"LADDR",
    b"SKIPME",
    b"USER",
    b"MAXAGE",
    b"yes",
    b"no",
    b"ON",
    b"OFF",
    b"SKIP",
    b"AUTH",
    b"default",
    b"SETNAME",
    b"LIB-NAME",
    b"LIB-VER",
    b"FILTERBY",
    b"MODULE",
    b"ACLCAT",
    b"PATTERN",
    b"ASYNC",
    b"SYNC",
    b"RELOAD",
    b"NOSAVE",
    b"ABORT",
    b"appendfsync",
    b"always",
    b"notify-keyspace-events",
    b"KEA",
    b"client-output-buffer-limit",
    b"pubsub 64 32 0",
    b"stream-node-max-entries",
    b"stream-node-max-bytes",
    b"proto-max-bulk-len",
    b"requirepass",
    b"timeout",
    b"__keyspace@0__:s",
    b"__key*__:*",
    b"ch",
    b"h?",
    b"[a-",
    b"\\",
    b"",
    b"\x00\xff\r\n",
];

/// Keys, groups and consumers: few, so commands meet each other's state.
const NAMES: &[&[u8]] = &[b"s", b"t", b"{s}u", b"g", b"h", b"c", b"d", b"ch"];

/// Numbers at the edges of what the parsers accept.
const NUMBERS: &[&[u8]] = &[
    b"0",
    b"1",
    b"2",
    b"3",
    b"10",
    b"100",
    b"-1",
    b"-100",
    b"4294967295",
    b"4294967296",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1.5",
    b"01",
    b"+1",
    b" 1",
];

/// A fresh server in a fresh directory, on tmpfs when there is one (DEBUG RELOAD and SAVE
/// fsync). Each input gets its own: one server shared by every input would carry the store's
/// history from input to input (the tombstones FLUSHALL leaves make every later flush and
/// reload scan more), so runs would slow down (from 40 to 3 inputs a second within ten
/// minutes) and an input's outcome could depend on the inputs before it. Opening the store is
/// most of an input's time; copying an empty store instead was slower still (its journal is
/// preallocated).
fn fresh_server() -> (Embedded, tempfile::TempDir) {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory for the store");
    let config = Config {
        dir: dir.path().to_path_buf(),
        enable_debug_command: "yes".into(),
        databases: DATABASES,
        ..Config::default()
    };
    let server = Embedded::open(config).expect("the embedded server opens");
    (server, dir)
}

/// The command table's names, once.
fn table_names() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(brooklet_server::embedded::command_names)
}

/// A client of the script and what it has been sent but not yet checked.
struct Client {
    session: Session,
    /// Output not yet decoded into frames.
    pending: Vec<u8>,
}

impl Client {
    fn new(server: &Embedded) -> Self {
        Client {
            session: server.session(),
            pending: Vec::new(),
        }
    }

    /// Decodes everything the client received; every reply must be complete by now.
    fn check_output(&mut self) {
        self.pending.extend_from_slice(&self.session.take_output());
        let mut at = 0;
        while at < self.pending.len() {
            match decode_frame(&self.pending[at..]) {
                Some(used) => at += used,
                None => panic!(
                    "client received bytes that are not complete RESP frames: {:?}",
                    String::from_utf8_lossy(&self.pending[at..])
                ),
            }
        }
        self.pending.clear();
    }
}

/// The length of the frame at the start of `buf`, read as RESP3 (which HELLO 3 switches to)
/// or as RESP2 (whose `*-1` RESP3 lacks); None when neither decoder reads a whole frame.
fn decode_frame(buf: &[u8]) -> Option<usize> {
    if let Ok(Some((_, used))) = redis_protocol::resp3::decode::complete::decode(buf) {
        return Some(used);
    }
    match redis_protocol::resp2::decode::decode(buf) {
        Ok(Some((_, used))) => Some(used),
        _ => None,
    }
}

/// A request as a client library encodes it.
fn multibulk(argv: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Client `.0` sends this request (name first).
    Command(usize, Vec<Vec<u8>>),
    /// Client `.0` sends these bytes as they are.
    Raw(usize, Vec<u8>),
    /// Client `.0`'s blocked command times out.
    TimeOut(usize),
    /// Client `.0`, if the server closed it, is replaced by a new connection.
    Reconnect(usize),
}

/// What the fuzzer's bytes decode to: how many clients, and what they do in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Clients connected at the start (1 to 3).
    pub clients: usize,
    /// The steps, at most [`MAX_STEPS`].
    pub steps: Vec<Step>,
}

/// Choices of a step: `op` below [`OPS`]; 0, 1 and 2 are the non-command steps.
const OPS: usize = 24;
const OP_TIME_OUT: usize = 0;
const OP_RAW: usize = 1;
const OP_RECONNECT: usize = 2;
const OP_COMMAND: usize = 3;

/// Choices of an argument: `kind` below [`KINDS`]; the last, 9, is a command name.
const KINDS: usize = 10;
const KIND_TOKEN: usize = 0;
const KIND_NAME: usize = 3;
const KIND_ID: usize = 5;
const KIND_NUMBER: usize = 7;
const KIND_RAW: usize = 8;

/// Longest raw argument or raw step.
const RAW_ARG: usize = 24;
const RAW_STEP: usize = 48;

/// A stream ID, full, partial or special.
fn stream_id(input: &mut Input<'_>) -> Vec<u8> {
    let small = |input: &mut Input<'_>| u64::from(input.byte() % 8);
    match input.below(6) {
        0 => format!("{}-{}", small(input), small(input)),
        1 => format!("{}", small(input)),
        2 => format!("{}-*", small(input)),
        3 => format!("({}-{}", small(input), small(input)),
        4 => "18446744073709551615-18446744073709551615".into(),
        _ => format!("{}-18446744073709551615", small(input)),
    }
    .into_bytes()
}

fn argument(input: &mut Input<'_>, names: &[&'static str]) -> Vec<u8> {
    match input.below(KINDS) {
        k if k < KIND_NAME => TOKENS[input.below(TOKENS.len())].to_vec(),
        k if k < KIND_ID => NAMES[input.below(NAMES.len())].to_vec(),
        k if k < KIND_NUMBER => stream_id(input),
        KIND_NUMBER => NUMBERS[input.below(NUMBERS.len())].to_vec(),
        KIND_RAW => input.bytes(RAW_ARG).to_vec(),
        _ => {
            // KIND_COMMAND: a command name as an argument (COMMAND INFO, COMMAND DOCS).
            let name = names[input.below(names.len())];
            name.split('|').next().unwrap_or(name).as_bytes().to_vec()
        }
    }
}

fn command(input: &mut Input<'_>, names: &[&'static str]) -> Vec<Vec<u8>> {
    let name = names[input.below(names.len())];
    let upper = input.one_in(2);
    let mut argv: Vec<Vec<u8>> = name
        .split('|')
        .map(|part| {
            if upper {
                part.to_ascii_uppercase().into_bytes()
            } else {
                part.as_bytes().to_vec()
            }
        })
        .collect();
    let n = if input.one_in(16) {
        input.below(64)
    } else {
        input.below(10)
    };
    for _ in 0..n {
        argv.push(argument(input, names));
    }
    argv
}

/// Reads a script out of the fuzzer's bytes; every byte string is some script.
pub fn decode_script(data: &[u8], names: &[&'static str]) -> Script {
    let mut input = Input::new(data);
    let clients = 1 + input.below(3);
    let mut steps = Vec::new();
    while !input.is_empty() && steps.len() < MAX_STEPS {
        let client = input.below(clients);
        steps.push(match input.below(OPS) {
            OP_TIME_OUT => Step::TimeOut(client),
            OP_RAW => Step::Raw(client, input.bytes(RAW_STEP).to_vec()),
            OP_RECONNECT => Step::Reconnect(client),
            _ => Step::Command(client, command(&mut input, names)),
        });
    }
    Script { clients, steps }
}

/// The bytes [`decode_script`] reads as `script`, for writing seed inputs by hand.
///
/// # Panics
/// When an argument is neither in the vocabulary nor short enough to go raw, or the script
/// is longer than [`MAX_STEPS`]: it could not be decoded back.
pub fn encode_script(script: &Script, names: &[&'static str]) -> Vec<u8> {
    assert!((1..=3).contains(&script.clients) && script.steps.len() <= MAX_STEPS);
    let mut out = Vec::new();
    // The inverse of `Input::below` (one byte below 257, two above).
    let below = |out: &mut Vec<u8>, n: usize, value: usize| {
        assert!(value < n.max(1));
        if n > 256 {
            out.extend_from_slice(&(value as u16).to_be_bytes());
        } else if n > 1 {
            out.push(value as u8);
        }
    };
    below(&mut out, 3, script.clients - 1);
    for step in &script.steps {
        match step {
            Step::TimeOut(c) => {
                below(&mut out, script.clients, *c);
                below(&mut out, OPS, OP_TIME_OUT);
            }
            Step::Raw(c, bytes) => {
                below(&mut out, script.clients, *c);
                below(&mut out, OPS, OP_RAW);
                below(&mut out, RAW_STEP + 1, bytes.len());
                out.extend_from_slice(bytes);
            }
            Step::Reconnect(c) => {
                below(&mut out, script.clients, *c);
                below(&mut out, OPS, OP_RECONNECT);
            }
            Step::Command(c, argv) => {
                below(&mut out, script.clients, *c);
                below(&mut out, OPS, OP_COMMAND);
                let (name, args) = match argv.get(1) {
                    Some(sub) => {
                        let full = format!(
                            "{}|{}",
                            String::from_utf8_lossy(&argv[0]),
                            String::from_utf8_lossy(sub)
                        )
                        .to_ascii_lowercase();
                        match names.iter().position(|n| *n == full) {
                            Some(i) => (i, &argv[2..]),
                            None => (position(names, &argv[0]), &argv[1..]),
                        }
                    }
                    None => (position(names, &argv[0]), &argv[1..]),
                };
                below(&mut out, names.len(), name);
                // Upper case: the first choice of `one_in(2)`.
                below(&mut out, 2, 0);
                if args.len() < 10 {
                    below(&mut out, 16, 1);
                    below(&mut out, 10, args.len());
                } else {
                    below(&mut out, 16, 0);
                    below(&mut out, 64, args.len());
                }
                for arg in args {
                    let find = |list: &[&[u8]]| list.iter().position(|t| t == arg);
                    if let Some(i) = find(TOKENS) {
                        below(&mut out, KINDS, KIND_TOKEN);
                        below(&mut out, TOKENS.len(), i);
                    } else if let Some(i) = find(NAMES) {
                        below(&mut out, KINDS, KIND_NAME);
                        below(&mut out, NAMES.len(), i);
                    } else if let Some(i) = find(NUMBERS) {
                        below(&mut out, KINDS, KIND_NUMBER);
                        below(&mut out, NUMBERS.len(), i);
                    } else if let Some(choices) = stream_id_choices(arg) {
                        below(&mut out, KINDS, KIND_ID);
                        out.extend_from_slice(&choices);
                    } else {
                        assert!(
                            arg.len() <= RAW_ARG,
                            "argument too long for a script: {arg:?}"
                        );
                        below(&mut out, KINDS, KIND_RAW);
                        below(&mut out, RAW_ARG + 1, arg.len());
                        out.extend_from_slice(arg);
                    }
                }
            }
        }
    }
    out
}

/// The bytes [`stream_id`] reads as `id`, if it makes that ID.
fn stream_id_choices(id: &[u8]) -> Option<Vec<u8>> {
    const MAX: &str = "18446744073709551615";
    let id = std::str::from_utf8(id).ok()?;
    let small = |s: &str| s.parse::<u8>().ok().filter(|n| *n < 8);
    if id == format!("{MAX}-{MAX}") {
        return Some(vec![4]);
    }
    if let Some(rest) = id.strip_prefix('(') {
        let (ms, seq) = rest.split_once('-')?;
        return Some(vec![3, small(ms)?, small(seq)?]);
    }
    match id.split_once('-') {
        None => Some(vec![1, small(id)?]),
        Some((ms, "*")) => Some(vec![2, small(ms)?]),
        Some((ms, MAX)) => Some(vec![5, small(ms)?]),
        Some((ms, seq)) => Some(vec![0, small(ms)?, small(seq)?]),
    }
}

/// Index of a command in the table's name list.
fn position(names: &[&'static str], name: &[u8]) -> usize {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("no command {name} in the table"))
}

/// Sends `argv` and returns the reply frames it produced.
fn admin_command(admin: &mut Session, argv: &[&[u8]]) -> Vec<F2> {
    let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    admin.feed(&multibulk(&argv));
    let out = admin.take_output();
    let mut frames = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let Ok(Some((frame, used))) = redis_protocol::resp2::decode::decode(&out[at..]) else {
            panic!(
                "a bad reply to {argv:?}: {:?}",
                String::from_utf8_lossy(&out)
            );
        };
        frames.push(frame);
        at += used;
    }
    frames
}

/// Every stream of every database with its `XINFO STREAM FULL`, keys sorted.
fn snapshot(admin: &mut Session) -> Vec<(usize, Vec<u8>, F2)> {
    let mut out = Vec::new();
    // INFO keyspace names the databases that hold keys (`db3:keys=1,...`): visit only those.
    let Some(F2::BulkString(info)) = admin_command(admin, &[b"INFO", b"keyspace"]).pop() else {
        panic!("INFO did not answer a bulk string");
    };
    let used: Vec<usize> = String::from_utf8_lossy(&info)
        .lines()
        .filter_map(|l| l.strip_prefix("db")?.split(':').next()?.parse().ok())
        .collect();
    for db in used {
        admin_command(admin, &[b"SELECT", db.to_string().as_bytes()]);
        let Some(F2::Array(keys)) = admin_command(admin, &[b"KEYS", b"*"]).pop() else {
            panic!("KEYS did not answer an array");
        };
        let mut keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter_map(|k| match k {
                F2::BulkString(k) => Some(k),
                _ => None,
            })
            .collect();
        keys.sort();
        for key in keys {
            let info = admin_command(admin, &[b"XINFO", b"STREAM", &key, b"FULL", b"COUNT", b"0"])
                .pop()
                .expect("XINFO STREAM answers");
            out.push((db, key, info));
        }
    }
    out
}

/// The `commands` target: decodes a script and runs it.
pub fn check_commands(data: &[u8]) {
    let script = decode_script(data, table_names());
    let (server, _dir) = fresh_server();
    run_script(&server, &script);
}

/// Runs a script on a fresh server, with every check.
fn run_script(server: &Embedded, script: &Script) {
    let mut clients: Vec<Client> = (0..script.clients).map(|_| Client::new(server)).collect();
    for step in &script.steps {
        match step {
            Step::Command(i, argv) => clients[*i].session.feed(&multibulk(argv)),
            Step::Raw(i, bytes) => clients[*i].session.feed(bytes),
            Step::TimeOut(i) => clients[*i].session.time_out(),
            Step::Reconnect(i) => {
                if clients[*i].session.is_closed() {
                    clients[*i] = Client::new(server);
                }
            }
        }
        for c in &mut clients {
            c.check_output();
        }
    }
    for c in &mut clients {
        c.session.time_out();
        c.check_output();
    }
    drop(clients);
    // The configuration the script may have changed (a password, limits) goes back first.
    server.restore_config();
    let mut admin = server.session();
    let before = snapshot(&mut admin);
    let reload = admin_command(&mut admin, &[b"DEBUG", b"RELOAD"]);
    assert_eq!(
        reload,
        vec![F2::SimpleString(b"OK".to_vec())],
        "DEBUG RELOAD failed"
    );
    let after = snapshot(&mut admin);
    assert_eq!(
        before, after,
        "the streams read back from the store differ from the ones in memory"
    );
}

/// The command table's names, as scripts index them.
pub fn names() -> Vec<&'static str> {
    brooklet_server::embedded::command_names()
}
