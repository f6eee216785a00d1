//! End-to-end tests of the server foundation: protocol, connection and server commands,
//! limits, transactions, and real clients (the `redis` crate and redis-cli).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use brooklet::{TestServer, error_text};
use redis::{Value, cmd};
use redis_protocol::resp2::types::OwnedFrame as F2;
use redis_protocol::resp3::types::OwnedFrame as F3;
use redis_protocol::resp3::types::Resp3Frame as _;

fn bulk(s: &str) -> F2 {
    F2::BulkString(s.as_bytes().to_vec())
}

#[test]
fn ping_and_echo_in_resp2_and_resp3() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        let pong: String = cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG");
        let echoed: Vec<u8> = cmd("ECHO").arg(&b"a\r\nb\x00"[..]).query(&mut c).unwrap();
        assert_eq!(echoed, b"a\r\nb\x00");
        let hi: String = cmd("PING").arg("hi").query(&mut c).unwrap();
        assert_eq!(hi, "hi");
    }
}

#[test]
fn inline_commands_and_pipelines_are_answered_in_order() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send(b"PING\r\nECHO \"two words\"\r\n\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\nping\n");
    assert_eq!(raw.read2(), F2::SimpleString(b"PONG".to_vec()));
    assert_eq!(raw.read2(), bulk("two words"));
    assert_eq!(raw.read2(), bulk("x"));
    assert_eq!(raw.read2(), F2::SimpleString(b"PONG".to_vec()));
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(
            format!("*2\r\n$4\r\nECHO\r\n${}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
    }
    raw.send(&batch);
    for i in 0..1000 {
        assert_eq!(raw.read2(), bulk(&i.to_string()));
    }
}

#[test]
fn unknown_commands_and_wrong_arity_get_redis_errors() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send_cmd(&[b"foo", b"bar", b"baz"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR unknown command 'foo', with args beginning with: 'bar' 'baz' "
    );
    raw.send_cmd(&[b"ECHO"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR wrong number of arguments for 'echo' command"
    );
    raw.send_cmd(&[b"CLIENT", b"nope"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR unknown subcommand 'nope'. Try CLIENT HELP."
    );
    raw.send_cmd(&[b"CLIENT", b"SETNAME"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR wrong number of arguments for 'client|setname' command"
    );
    // Previews carry the arguments' own bytes, each up to a NUL, as Redis's C strings do.
    raw.send_cmd(&[b"FOO", b"\x01\xff\x80", b"a\x00b"]);
    assert_eq!(
        raw.read_line2(),
        b"-ERR unknown command 'FOO', with args beginning with: '\x01\xff\x80' 'a' \r\n"
    );
    raw.send_cmd(&[b"client", b"n\xffpe"]);
    assert_eq!(
        raw.read_line2(),
        b"-ERR unknown subcommand 'n\xffpe'. Try CLIENT HELP.\r\n"
    );
    // The connection stays usable after errors.
    raw.send_cmd(&[b"PING"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"PONG".to_vec()));
}

#[test]
fn hello_switches_protocol_and_reports_the_version() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send_cmd(&[b"HELLO", b"3", b"SETNAME", b"me"]);
    let F3::Map { data, .. } = raw.read3() else {
        panic!("HELLO 3 did not answer with a map")
    };
    let get = |k: &str| {
        data.iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("server").as_str(), Some("redis"));
    assert_eq!(get("version").as_str(), Some("8.10.0"));
    assert!(matches!(get("proto"), F3::Number { data: 3, .. }));
    assert_eq!(get("mode").as_str(), Some("standalone"));
    assert_eq!(get("role").as_str(), Some("master"));
    assert!(matches!(get("modules"), F3::Array { ref data, .. } if data.is_empty()));
    raw.send_cmd(&[b"CLIENT", b"GETNAME"]);
    assert_eq!(raw.read3().as_str(), Some("me"));
    raw.send_cmd(&[b"CLIENT", b"GETNAME", b"x"]);
    let _ = raw.read3();
    raw.send_cmd(&[b"HELLO", b"4"]);
    assert!(matches!(raw.read3(), F3::SimpleError { data, .. } if data.starts_with("NOPROTO")));
    // A null in RESP3 is `_`.
    raw.send_cmd(&[b"HELLO", b"3", b"SETNAME", b"x"]);
    let _ = raw.read3();
    raw.send_cmd(&[b"CLIENT", b"SETNAME", b"bad name"]);
    assert!(
        matches!(raw.read3(), F3::SimpleError { data, .. } if data.contains("cannot contain spaces"))
    );
}

#[test]
fn auth_gates_commands_until_the_password_is_given() {
    let server = TestServer::start_with(|c| c.requirepass = Some(b"s3cret".to_vec()));
    let mut raw = server.raw();
    raw.send_cmd(&[b"PING"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOAUTH Authentication required."
    );
    raw.send_cmd(&[b"AUTH", b"wrong"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    raw.send_cmd(&[b"HELLO", b"3"]);
    assert!(
        error_text(&raw.read2())
            .unwrap()
            .starts_with("NOAUTH HELLO must be called")
    );
    raw.send_cmd(&[b"AUTH", b"default", b"s3cret"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    raw.send_cmd(&[b"PING"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"PONG".to_vec()));
    // redis-crate clients authenticate through the URL.
    let client = redis::Client::open(format!("redis://:s3cret@{}/", server.addr())).unwrap();
    let mut c = client
        .get_connection_with_timeout(brooklet::IO_TIMEOUT)
        .unwrap();
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn auth_without_a_password_configured_is_an_error() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send_cmd(&[b"AUTH", b"x"]);
    assert!(
        error_text(&raw.read2())
            .unwrap()
            .starts_with("ERR AUTH <password> called without any password configured")
    );
}

#[test]
fn unauthenticated_clients_get_the_tighter_limits_and_others_are_served() {
    let server = TestServer::start_with(|c| c.requirepass = Some(b"pw".to_vec()));
    let mut bad = server.raw();
    bad.send(b"*11\r\n");
    assert_eq!(
        error_text(&bad.read2()).unwrap(),
        "ERR Protocol error: unauthenticated multibulk length"
    );
    assert!(bad.is_closed());
    let mut bad = server.raw();
    bad.send(b"*1\r\n$16385\r\n");
    assert_eq!(
        error_text(&bad.read2()).unwrap(),
        "ERR Protocol error: unauthenticated bulk length"
    );
    assert!(bad.is_closed());
    let mut good = server.raw();
    good.send_cmd(&[b"AUTH", b"pw"]);
    assert_eq!(good.read2(), F2::SimpleString(b"OK".to_vec()));
    let big = vec![b'a'; 20_000];
    good.send_cmd(&[b"ECHO", &big]);
    assert_eq!(good.read2(), F2::BulkString(big));
}

#[test]
fn oversized_bulk_length_is_refused_and_the_client_closed() {
    let server = TestServer::start();
    let mut bad = server.raw();
    bad.send(b"*1\r\n$536870913\r\n");
    assert_eq!(
        error_text(&bad.read2()).unwrap(),
        "ERR Protocol error: invalid bulk length"
    );
    assert!(bad.is_closed());
    let mut c = server.client(false);
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn oversized_multibulk_count_is_refused_and_a_huge_legal_one_costs_nothing() {
    let server = TestServer::start();
    let mut bad = server.raw();
    bad.send(b"*3000000000\r\n");
    assert_eq!(
        error_text(&bad.read2()).unwrap(),
        "ERR Protocol error: invalid multibulk length"
    );
    assert!(bad.is_closed());
    // A legal but huge count is only a promise: the server keeps waiting without allocating.
    let mut waiting = server.raw();
    waiting.send(b"*100000000\r\n");
    let mut c = server.client(false);
    let info: String = cmd("INFO").arg("memory").query(&mut c).unwrap();
    let rss: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_rss:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        rss < 512 * 1024 * 1024,
        "rss {rss} after a *100000000 header"
    );
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn garbage_gets_a_protocol_error_and_a_close() {
    let server = TestServer::start();
    let mut bad = server.raw();
    bad.send(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n");
    assert_eq!(
        error_text(&bad.read2()).unwrap(),
        "ERR Protocol error: expected '$', got 'f'"
    );
    assert!(bad.is_closed());
    let mut bad = server.raw();
    bad.send(b"ECHO \"unbalanced\r\n");
    assert_eq!(
        error_text(&bad.read2()).unwrap(),
        "ERR Protocol error: unbalanced quotes in request"
    );
    assert!(bad.is_closed());
    let mut c = server.client(true);
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn query_buffer_over_the_limit_closes_the_client() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("client-query-buffer-limit")
        .arg("1mb")
        .query(&mut admin)
        .unwrap();
    let mut bad = server.raw();
    // A legal 4 MB bulk announced, then 2 MB of it sent: over the 1 MB limit before it completes.
    bad.send(b"*2\r\n$4\r\nECHO\r\n$4194304\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut closed = false;
    for _ in 0..32 {
        if std::io::Write::write_all(&mut bad.stream, &chunk).is_err() {
            closed = true;
            break;
        }
    }
    assert!(
        closed || bad.is_closed(),
        "client past the query buffer limit was not closed"
    );
    let info: String = cmd("INFO").arg("stats").query(&mut admin).unwrap();
    assert!(
        info.contains("client_query_buffer_limit_disconnections:1"),
        "{info}"
    );
}

#[test]
fn maxclients_refuses_the_extra_client_with_redis_error() {
    let server = TestServer::start_with(|c| c.maxclients = 2);
    let mut a = server.client(false);
    let mut b = server.raw();
    b.send_cmd(&[b"PING"]);
    assert_eq!(b.read2(), F2::SimpleString(b"PONG".to_vec()));
    let mut extra = server.raw();
    assert_eq!(
        error_text(&extra.read2()).unwrap(),
        "ERR max number of clients reached"
    );
    assert!(extra.is_closed());
    let pong: String = cmd("PING").query(&mut a).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn select_and_database_scoped_commands() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let _: () = cmd("SELECT").arg(15).query(&mut c).unwrap();
    let err = cmd("SELECT").arg(16).query::<()>(&mut c).unwrap_err();
    assert!(
        err.to_string().contains("DB index is out of range"),
        "{err}"
    );
    let err = cmd("SELECT").arg(i64::MAX).query::<()>(&mut c).unwrap_err();
    assert!(
        err.to_string()
            .contains("value is out of range, value must between -2147483648 and 2147483647"),
        "{err}"
    );
    let n: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let keys: Vec<String> = cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert!(keys.is_empty());
    let (cursor, keys): (String, Vec<String>) = cmd("SCAN").arg(0).query(&mut c).unwrap();
    assert_eq!((cursor.as_str(), keys.len()), ("0", 0));
    let t: String = cmd("TYPE").arg("nokey").query(&mut c).unwrap();
    assert_eq!(t, "none");
    let n: i64 = cmd("EXISTS").arg("a").arg("b").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let n: i64 = cmd("DEL").arg("a").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let _: () = cmd("FLUSHALL").query(&mut c).unwrap();
    let _: () = cmd("FLUSHDB").arg("ASYNC").query(&mut c).unwrap();
    let err = cmd("SCAN").arg("x").query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("invalid cursor"), "{err}");
}

#[test]
fn client_subcommands() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let id: i64 = cmd("CLIENT").arg("ID").query(&mut c).unwrap();
    let _: () = cmd("CLIENT")
        .arg("SETNAME")
        .arg("worker")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("CLIENT")
        .arg("SETINFO")
        .arg("LIB-NAME")
        .arg("mylib")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("CLIENT")
        .arg("NO-EVICT")
        .arg("on")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("CLIENT")
        .arg("NO-TOUCH")
        .arg("off")
        .query(&mut c)
        .unwrap();
    let list: String = cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
    let mine = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap();
    for field in [
        "name=worker",
        "cmd=client|list",
        "lib-name=mylib",
        "db=0",
        "resp=2",
        // NO-EVICT on, NO-TOUCH off, as Redis shows them.
        "flags=e ",
        "user=default",
    ] {
        assert!(mine.contains(field), "{field} missing from {mine}");
    }
    let info: String = cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
    assert!(
        info.contains(&format!("id={id} ")) && info.contains("cmd=client|info"),
        "{info}"
    );
    let mut other = server.client(false);
    let other_id: i64 = cmd("CLIENT").arg("ID").query(&mut other).unwrap();
    let killed: i64 = cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(other_id)
        .query(&mut c)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(cmd("PING").query::<String>(&mut other).is_err());
    let err = cmd("CLIENT")
        .arg("KILL")
        .arg("1.2.3.4:5")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("No such client"), "{err}");
    let name: Option<String> = cmd("CLIENT").arg("GETNAME").query(&mut c).unwrap();
    assert_eq!(name.as_deref(), Some("worker"));
}

#[test]
fn client_reply_off_and_skip_silence_replies() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send_cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
    raw.send_cmd(&[b"ECHO", b"hidden"]);
    raw.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    raw.send_cmd(&[b"CLIENT", b"REPLY", b"ON"]);
    raw.send_cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    raw.send_cmd(&[b"ECHO", b"skipped"]);
    raw.send_cmd(&[b"ECHO", b"shown"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    assert_eq!(raw.read2(), bulk("shown"));
}

#[test]
fn multi_exec_discard_and_errors() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send_cmd(&[b"MULTI"]);
    raw.send_cmd(&[b"PING"]);
    raw.send_cmd(&[b"ECHO", b"x"]);
    raw.send_cmd(&[b"MULTI"]);
    raw.send_cmd(&[b"EXEC"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    assert_eq!(raw.read2(), F2::SimpleString(b"QUEUED".to_vec()));
    assert_eq!(raw.read2(), F2::SimpleString(b"QUEUED".to_vec()));
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR MULTI calls can not be nested"
    );
    assert_eq!(
        raw.read2(),
        F2::Array(vec![F2::SimpleString(b"PONG".to_vec()), bulk("x")])
    );
    raw.send_cmd(&[b"EXEC"]);
    assert_eq!(error_text(&raw.read2()).unwrap(), "ERR EXEC without MULTI");
    raw.send_cmd(&[b"DISCARD"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR DISCARD without MULTI"
    );
    raw.send_cmd(&[b"MULTI"]);
    raw.send_cmd(&[b"NOSUCH"]);
    raw.send_cmd(&[b"EXEC"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    assert!(
        error_text(&raw.read2())
            .unwrap()
            .starts_with("ERR unknown command 'NOSUCH'")
    );
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "EXECABORT Transaction discarded because of previous errors."
    );
    raw.send_cmd(&[b"MULTI"]);
    raw.send_cmd(&[b"WATCH", b"k"]);
    raw.send_cmd(&[b"DISCARD"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR WATCH inside MULTI is not allowed"
    );
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
}

#[test]
fn redis_crate_atomic_pipelines_work() {
    let server = TestServer::start();
    let mut c = server.client(true);
    let (a, b): (String, String) = redis::pipe()
        .atomic()
        .cmd("ECHO")
        .arg("a")
        .cmd("ECHO")
        .arg("b")
        .query(&mut c)
        .unwrap();
    assert_eq!((a.as_str(), b.as_str()), ("a", "b"));
}

#[test]
fn command_introspection_for_clients_and_redis_cli() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let count: i64 = cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    assert!(count >= 25, "{count}");
    let info: Value = cmd("COMMAND")
        .arg("INFO")
        .arg("echo")
        .arg("nosuch")
        .query(&mut c)
        .unwrap();
    let Value::Array(items) = info else {
        panic!("{info:?}")
    };
    assert_eq!(items.len(), 2);
    assert_eq!(items[1], Value::Nil);
    // An unknown name is a null bulk string in RESP2, as Redis's addReplyNull gives it.
    let mut raw = server.raw();
    raw.send_cmd(&[b"COMMAND", b"INFO", b"nosuch"]);
    assert_eq!(raw.read_raw2(), b"*1\r\n$-1\r\n");
    let docs: Value = cmd("COMMAND")
        .arg("DOCS")
        .arg("client")
        .query(&mut c)
        .unwrap();
    let text = format!("{docs:?}");
    assert!(
        text.contains("summary") && text.contains("client|setname") && text.contains("arguments"),
        "{text}"
    );
    let list: Vec<String> = cmd("COMMAND")
        .arg("LIST")
        .arg("FILTERBY")
        .arg("PATTERN")
        .arg("client*")
        .query(&mut c)
        .unwrap();
    assert!(list.contains(&"client|kill".to_string()), "{list:?}");
}

#[test]
fn info_and_config_answer_what_clients_and_benchmarks_ask() {
    let server = TestServer::start();
    let mut c = server.client(false);
    let info: String = cmd("INFO").query(&mut c).unwrap();
    for field in [
        "redis_version:8.10.0",
        "arch_bits:",
        "cluster_enabled:0",
        "role:master",
        "connected_clients:1",
        "brooklet_version:",
    ] {
        assert!(info.contains(field), "{field} missing");
    }
    assert!(!info.contains("# Commandstats"));
    // Sections in Redis's order; a bare INFO has all but commandstats.
    let headers = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# "))
            .map(str::to_string)
            .collect()
    };
    let default = [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Modules",
        "Errorstats",
        "Cluster",
        "Keyspace",
    ];
    assert_eq!(headers(&info), default);
    let all: String = cmd("INFO").arg("everything").query(&mut c).unwrap();
    assert!(all.contains("cmdstat_info:calls="), "{all}");
    let mut everything = default.to_vec();
    everything.insert(8, "Commandstats");
    everything.insert(10, "Latencystats");
    assert_eq!(headers(&all), everything);
    let _ = cmd("NOPE").query::<()>(&mut c);
    let errors: String = cmd("INFO").arg("errorstats").query(&mut c).unwrap();
    assert!(errors.contains("errorstat_ERR:count=1"), "{errors}");
    let save: Vec<String> = cmd("CONFIG").arg("GET").arg("save").query(&mut c).unwrap();
    assert_eq!(save, ["save", ""]);
    let got: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .arg("maxclient*")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, ["appendfsync", "everysec", "maxclients", "10000"]);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("appendfsync")
        .arg("always")
        .arg("stream-node-max-entries")
        .arg("50")
        .query(&mut c)
        .unwrap();
    let got: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("appendfsync")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, ["appendfsync", "always"]);
    let err = cmd("CONFIG")
        .arg("SET")
        .arg("appendfsync")
        .arg("sometimes")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("CONFIG SET failed (possibly related to argument 'appendfsync')"),
        "{err}"
    );
    let err = cmd("CONFIG")
        .arg("SET")
        .arg("nosuch")
        .arg("1")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Unknown option or number of arguments for CONFIG SET - 'nosuch'"),
        "{err}"
    );
    let _: () = cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let mut resp3 = server.client(true);
    let map: Value = cmd("CONFIG")
        .arg("GET")
        .arg("port")
        .query(&mut resp3)
        .unwrap();
    assert!(matches!(map, Value::Map(_)), "{map:?}");
}

#[test]
fn quit_reset_and_time() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send_cmd(&[b"HELLO", b"3"]);
    let _ = raw.read3();
    raw.send_cmd(&[b"SELECT", b"3"]);
    let _ = raw.read3();
    raw.send_cmd(&[b"RESET"]);
    assert_eq!(raw.read3().as_str(), Some("RESET"));
    raw.send_cmd(&[b"TIME"]);
    let F2::Array(t) = raw.read2() else {
        panic!("TIME is not an array in RESP2 after RESET")
    };
    assert_eq!(t.len(), 2);
    raw.send_cmd(&[b"QUIT"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    assert!(raw.is_closed());
}

#[test]
fn shutdown_command_stops_the_server() {
    let server = TestServer::start();
    let addr = server.addr();
    let mut raw = server.raw();
    raw.send_cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(raw.is_closed());
    server.stop();
    assert!(
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_err()
    );
}

#[test]
fn redis_cli_talks_to_the_server() {
    if !brooklet::redis_cli_available() {
        return;
    }
    let server = TestServer::start();
    let port = server.addr().port().to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&["PING"]).trim(), "PONG");
    assert_eq!(run(&["ECHO", "hello world"]).trim(), "hello world");
    assert!(run(&["-3", "HELLO", "3"]).contains("8.10.0"));
    assert!(run(&["INFO", "server"]).contains("redis_version:8.10.0"));
    assert!(run(&["NOSUCH"]).contains("unknown command"));
}

#[test]
fn an_unknown_subcommand_inside_multi_aborts_the_transaction() {
    let server = TestServer::start();
    let mut raw = server.raw();
    raw.send_cmd(&[b"MULTI"]);
    raw.send_cmd(&[b"CLIENT", b"NOSUCH"]);
    raw.send_cmd(&[b"ECHO", b"x"]);
    raw.send_cmd(&[b"EXEC"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    assert!(
        error_text(&raw.read2())
            .unwrap()
            .starts_with("ERR unknown subcommand")
    );
    assert_eq!(raw.read2(), F2::SimpleString(b"QUEUED".to_vec()));
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "EXECABORT Transaction discarded because of previous errors."
    );
}

#[test]
fn a_refused_exec_discards_the_transaction() {
    let server = TestServer::start_with(|c| c.requirepass = Some(b"pw".to_vec()));
    let mut raw = server.raw();
    // Unauthenticated: EXEC is refused, as an EXECABORT (Redis's rejectCommand).
    raw.send_cmd(&[b"EXEC"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "EXECABORT Transaction discarded because of: NOAUTH Authentication required."
    );
    raw.send_cmd(&[b"AUTH", b"pw"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    // Wrong arity inside MULTI: the transaction is gone, so PING runs at once.
    raw.send_cmd(&[b"MULTI"]);
    raw.send_cmd(&[b"PING"]);
    raw.send_cmd(&[b"EXEC", b"x"]);
    raw.send_cmd(&[b"PING"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    assert_eq!(raw.read2(), F2::SimpleString(b"QUEUED".to_vec()));
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"
    );
    assert_eq!(raw.read2(), F2::SimpleString(b"PONG".to_vec()));
    raw.send_cmd(&[b"EXEC"]);
    assert_eq!(error_text(&raw.read2()).unwrap(), "ERR EXEC without MULTI");
}

#[test]
fn hello_with_a_bad_name_does_not_authenticate() {
    let server = TestServer::start_with(|c| c.requirepass = Some(b"pw".to_vec()));
    let mut raw = server.raw();
    raw.send_cmd(&[
        b"HELLO", b"3", b"SETNAME", b"a b", b"AUTH", b"default", b"pw",
    ]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    raw.send_cmd(&[b"PING"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOAUTH Authentication required."
    );
    // A bad name is reported before a syntax error after it, and before a wrong password.
    raw.send_cmd(&[b"HELLO", b"2", b"SETNAME", b"a b", b"BOGUS"]);
    assert!(
        error_text(&raw.read2())
            .unwrap()
            .starts_with("ERR Client names")
    );
    raw.send_cmd(&[b"HELLO", b"2", b"SETNAME", b"a b", b"AUTH", b"x", b"y"]);
    assert!(
        error_text(&raw.read2())
            .unwrap()
            .starts_with("ERR Client names")
    );
    raw.send_cmd(&[
        b"HELLO", b"2", b"AUTH", b"default", b"pw", b"SETNAME", b"ok",
    ]);
    assert!(matches!(raw.read2(), F2::Array(_)));
    raw.send_cmd(&[b"CLIENT", b"GETNAME"]);
    assert_eq!(raw.read2(), bulk("ok"));
}

#[test]
fn config_set_checks_names_before_values_and_reads_integers_as_redis() {
    let server = TestServer::start();
    let mut raw = server.raw();
    let mut ask = |args: &[&[u8]]| {
        raw.send_cmd(args);
        raw.read2()
    };
    let failed = |arg: &str, why: &str| {
        format!("ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}")
    };
    let error = |f: F2| error_text(&f).unwrap();
    assert_eq!(
        error(ask(&[
            b"CONFIG", b"SET", b"timeout", b"0", b"TIMEOUT", b"0"
        ])),
        failed("TIMEOUT", "duplicate parameter")
    );
    // An unknown name later in the list wins over a bad value before it.
    assert_eq!(
        error(ask(&[
            b"CONFIG", b"SET", b"timeout", b"abc", b"nosuch", b"1"
        ])),
        "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
    );
    for bad in [&b"abc"[..], b"", b"1.5", b" 0", b"+0", b"00", b"-0"] {
        assert_eq!(
            error(ask(&[b"CONFIG", b"SET", b"timeout", bad])),
            failed("timeout", "argument couldn't be parsed into an integer"),
            "{bad:?}"
        );
    }
    assert_eq!(
        error(ask(&[b"CONFIG", b"SET", b"Timeout", b"-1"])),
        failed(
            "timeout",
            "argument must be between 0 and 2147483647 inclusive"
        )
    );
    assert_eq!(
        error(ask(&[b"CONFIG", b"SET", b"appendfsync", b"x"])),
        failed(
            "appendfsync",
            "argument(s) must be one of the following: everysec, always, no"
        )
    );
    assert_eq!(
        error(ask(&[b"CONFIG", b"SET", b"Databases", b"5"])),
        failed("Databases", "can't set immutable config")
    );
    // A plain name comes back as typed, once; a pattern gives the parameters' names.
    assert_eq!(
        ask(&[b"CONFIG", b"GET", b"MAXCLIENTS", b"maxclients"]),
        F2::Array(vec![bulk("MAXCLIENTS"), bulk("10000")])
    );
    assert_eq!(
        ask(&[b"CONFIG", b"GET", b"MAXCLIENT?"]),
        F2::Array(vec![bulk("maxclients"), bulk("10000")])
    );
    let F2::Array(limits) = ask(&[b"CONFIG", b"GET", b"client-output-buffer-limit"]) else {
        panic!("not an array")
    };
    assert_eq!(
        limits[1],
        bulk("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
    );
}

#[test]
fn config_set_appendonly_yes_is_a_no_op_and_no_is_refused() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        // Tools turn the AOF on before a test or a backup: the log is always on.
        let ok: String = cmd("CONFIG")
            .arg("SET")
            .arg("appendonly")
            .arg("yes")
            .query(&mut c)
            .unwrap();
        assert_eq!(ok, "OK");
        // A map in RESP3, pairs in RESP2.
        let got: HashMap<String, String> = cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query(&mut c)
            .unwrap();
        assert_eq!(got["appendonly"], "yes");
        let err = cmd("CONFIG")
            .arg("SET")
            .arg("appendonly")
            .arg("no")
            .query::<()>(&mut c)
            .unwrap_err();
        assert_eq!(
            err.detail(),
            Some(
                "CONFIG SET failed (possibly related to argument 'appendonly') - argument must \
                 be 'yes': Brooklet journals every write and cannot turn that off"
            ),
            "{err}"
        );
        // All or nothing: the refused `no` leaves the other parameter as it was.
        let err = cmd("CONFIG")
            .arg("SET")
            .arg("timeout")
            .arg("7")
            .arg("appendonly")
            .arg("no")
            .query::<()>(&mut c)
            .unwrap_err();
        assert_eq!(err.code(), Some("ERR"), "{err}");
        let got: HashMap<String, String> = cmd("CONFIG")
            .arg("GET")
            .arg("timeout")
            .query(&mut c)
            .unwrap();
        assert_eq!(got["timeout"], "0");
    }
}
