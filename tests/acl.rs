//! End-to-end tests of ACL: users, passwords and `requirepass`, command, key and channel
//! permissions with Redis's NOPERM texts, selectors, ACL LOG, DRYRUN, the ACL file, and the
//! categories and key specs COMMAND INFO reports. RESP2 and RESP3 through the `redis` crate.

#![allow(clippy::unwrap_used)]

use brooklet::{
    TestServer, err, error_text, int, map_field as field, map_pairs as fields, query, run,
};
use redis::Value;
use redis_protocol::resp2::types::OwnedFrame as F2;

/// SHA-256 of "pw", as Redis stores it.
const PW_DIGEST: &str = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4";

/// A connection authenticated as `user` (the redis crate sends AUTH, or HELLO 3 AUTH).
fn client_as(server: &TestServer, user: &str, pass: &str, resp3: bool) -> redis::Connection {
    let proto = if resp3 { "?protocol=resp3" } else { "" };
    let url = format!("redis://{user}:{pass}@{}/{proto}", server.addr());
    let c = redis::Client::open(url).unwrap();
    let conn = c.get_connection_with_timeout(brooklet::IO_TIMEOUT).unwrap();
    conn.set_read_timeout(Some(brooklet::IO_TIMEOUT)).unwrap();
    conn
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Okay => "OK".into(),
        Value::Int(n) => n.to_string(),
        Value::Double(d) => d.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(text).collect(),
        other => panic!("not a list: {other:?}"),
    }
}

fn acl_list(c: &mut redis::Connection) -> Vec<String> {
    texts(&run(c, &["ACL", "LIST"]))
}

#[test]
fn requirepass_is_the_default_users_password() {
    let server = TestServer::start_with(|c| c.requirepass = Some(b"pw".to_vec()));
    let mut raw = server.raw();
    raw.send_cmd(&[b"PING"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOAUTH Authentication required."
    );
    let mut admin = client_as(&server, "default", "pw", false);
    assert_eq!(
        acl_list(&mut admin),
        [format!("user default on #{PW_DIGEST} ~* &* +@all")]
    );
    run(&mut admin, &["CONFIG", "SET", "requirepass", "other"]);
    raw.send_cmd(&[b"AUTH", b"pw"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    raw.send_cmd(&[b"AUTH", b"default", b"other"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    // The password set through ACL works as the one set through requirepass.
    run(&mut admin, &["ACL", "SETUSER", "default", ">second"]);
    let mut second = client_as(&server, "default", "second", true);
    assert_eq!(text(&run(&mut second, &["ACL", "WHOAMI"])), "default");
    // No password: new connections are the default user without AUTH, and AUTH <pass> says so.
    run(&mut admin, &["CONFIG", "SET", "requirepass", ""]);
    assert_eq!(acl_list(&mut admin), ["user default on nopass ~* &* +@all"]);
    let mut open = server.client(false);
    assert_eq!(text(&run(&mut open, &["PING"])), "PONG");
    assert_eq!(
        err(&mut open, &["AUTH", "x"]),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
    // A default user switched off refuses new connections' commands until AUTH as another.
    run(
        &mut admin,
        &["ACL", "SETUSER", "ops", "on", ">pw", "+@all", "~*"],
    );
    run(&mut admin, &["ACL", "SETUSER", "default", "off"]);
    let mut raw = server.raw();
    raw.send_cmd(&[b"PING"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOAUTH Authentication required."
    );
    raw.send_cmd(&[b"AUTH", b"ops", b"pw"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
}

#[test]
fn commands_and_keys_are_checked_with_redis_texts() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    run(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">pw",
            "~app:*",
            "%R~shared:*",
            "+@stream",
            "+@read",
            "-xtrim",
            "+config|get",
            "+acl|whoami",
        ],
    );
    assert_eq!(
        acl_list(&mut admin)[0],
        format!(
            "user app on #{PW_DIGEST} ~app:* %R~shared:* resetchannels -@all +@stream +@read -xtrim +config|get +acl|whoami"
        )
    );
    run(&mut admin, &["XADD", "shared:s", "1-1", "f", "v"]);
    for resp3 in [false, true] {
        let mut app = client_as(&server, "app", "pw", resp3);
        assert_eq!(text(&run(&mut app, &["ACL", "WHOAMI"])), "app");
        run(&mut app, &["XADD", "app:s", "*", "f", "v"]);
        assert_eq!(int(&mut app, &["XLEN", "shared:s"]), 1);
        run(&mut app, &["CONFIG", "GET", "maxmemory"]);
        assert_eq!(
            err(&mut app, &["XADD", "shared:s", "*", "f", "v"]),
            "NOPERM No permissions to access a key"
        );
        assert_eq!(
            err(&mut app, &["XLEN", "other"]),
            "NOPERM No permissions to access a key"
        );
        assert_eq!(
            err(&mut app, &["XTRIM", "app:s", "MAXLEN", "0"]),
            "NOPERM User app has no permissions to run the 'xtrim' command"
        );
        assert_eq!(
            err(&mut app, &["CONFIG", "SET", "maxmemory", "0"]),
            "NOPERM User app has no permissions to run the 'config|set' command"
        );
        assert_eq!(
            err(&mut app, &["SET", "app:x", "1"]),
            "NOPERM User app has no permissions to run the 'set' command"
        );
        // XREAD's keys come after STREAMS: each is checked.
        assert_eq!(
            err(&mut app, &["XREAD", "STREAMS", "app:s", "nope", "0", "0"]),
            "NOPERM No permissions to access a key"
        );
        run(
            &mut app,
            &["XREAD", "STREAMS", "app:s", "shared:s", "0", "0"],
        );
    }
    // Changes apply to connections already authenticated as the user.
    let mut app = client_as(&server, "app", "pw", false);
    run(&mut admin, &["ACL", "SETUSER", "app", "-xadd"]);
    assert_eq!(
        err(&mut app, &["XADD", "app:s", "*", "f", "v"]),
        "NOPERM User app has no permissions to run the 'xadd' command"
    );
    let list = run(&mut admin, &["CLIENT", "LIST"]);
    assert!(text(&list).contains(" user=app "), "{}", text(&list));
}

#[test]
fn a_denied_command_aborts_the_transaction_and_exec_checks_again() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    run(
        &mut admin,
        &["ACL", "SETUSER", "tx", "on", "nopass", "allkeys", "+@all"],
    );
    let mut raw = server.raw();
    raw.send_cmd(&[b"AUTH", b"tx", b"x"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    raw.send_cmd(&[b"MULTI"]);
    raw.read2();
    raw.send_cmd(&[b"SET", b"a", b"1"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"QUEUED".to_vec()));
    raw.send_cmd(&[b"INCR", b"n"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"QUEUED".to_vec()));
    // Revoked after queueing: EXEC refuses that command alone.
    run(&mut admin, &["ACL", "SETUSER", "tx", "-set"]);
    raw.send_cmd(&[b"EXEC"]);
    match raw.read2() {
        F2::Array(replies) => {
            assert_eq!(
                error_text(&replies[0]).unwrap(),
                "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand"
            );
            assert_eq!(replies[1], F2::Integer(1));
        }
        other => panic!("{other:?}"),
    }
    raw.send_cmd(&[b"MULTI"]);
    raw.read2();
    raw.send_cmd(&[b"SET", b"a", b"1"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOPERM User tx has no permissions to run the 'set' command"
    );
    raw.send_cmd(&[b"EXEC"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "EXECABORT Transaction discarded because of previous errors."
    );
    let log = run(&mut admin, &["ACL", "LOG"]);
    let Value::Array(entries) = log else {
        panic!("{log:?}")
    };
    assert_eq!(text(&field(&entries[0], "context")), "multi");
    assert_eq!(text(&field(&entries[0], "object")), "set");
    assert_eq!(text(&field(&entries[0], "count")), "2");
}

#[test]
fn acl_log_records_denials_and_failed_auth() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut admin = server.client(resp3);
        run(&mut admin, &["ACL", "LOG", "RESET"]);
        run(
            &mut admin,
            &[
                "ACL", "SETUSER", "lg", "on", ">pw", "~mine", "+get", "+publish",
            ],
        );
        let mut raw = server.raw();
        raw.send_cmd(&[b"AUTH", b"lg", b"wrong"]);
        error_text(&raw.read2()).unwrap();
        raw.send_cmd(&[b"AUTH", b"lg", b"pw"]);
        raw.read2();
        raw.send_cmd(&[b"GET", b"theirs"]);
        error_text(&raw.read2()).unwrap();
        raw.send_cmd(&[b"GET", b"theirs"]);
        error_text(&raw.read2()).unwrap();
        raw.send_cmd(&[b"PUBLISH", b"news", b"m"]);
        assert_eq!(
            error_text(&raw.read2()).unwrap(),
            "NOPERM No permissions to access a channel"
        );
        raw.send_cmd(&[b"DEL", b"mine"]);
        error_text(&raw.read2()).unwrap();
        let log = run(&mut admin, &["ACL", "LOG"]);
        let Value::Array(entries) = &log else {
            panic!("{log:?}")
        };
        let summary: Vec<(String, String, String, String)> = entries
            .iter()
            .map(|e| {
                (
                    text(&field(e, "reason")),
                    text(&field(e, "object")),
                    text(&field(e, "username")),
                    text(&field(e, "count")),
                )
            })
            .collect();
        let row = |r: &str, o: &str, u: &str, c: &str| {
            (r.to_string(), o.to_string(), u.to_string(), c.to_string())
        };
        assert_eq!(
            summary,
            [
                row("command", "del", "lg", "1"),
                row("channel", "news", "lg", "1"),
                row("key", "theirs", "lg", "2"),
                row("auth", "AUTH", "lg", "1"),
            ]
        );
        let newest = &entries[0];
        let names: Vec<String> = fields(newest).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "count",
                "reason",
                "context",
                "object",
                "username",
                "age-seconds",
                "client-info",
                "entry-id",
                "timestamp-created",
                "timestamp-last-updated"
            ]
        );
        assert_eq!(text(&field(newest, "context")), "toplevel");
        let info = text(&field(newest, "client-info"));
        assert!(info.contains(" cmd=del user=lg "), "{info}");
        let age: f64 = text(&field(newest, "age-seconds")).parse().unwrap();
        assert!((0.0..5.0).contains(&age));
        let Value::Array(one) = run(&mut admin, &["ACL", "LOG", "1"]) else {
            panic!()
        };
        assert_eq!(one.len(), 1);
        assert_eq!(
            err(&mut admin, &["ACL", "LOG", "x"]),
            "ERR value is not an integer or out of range"
        );
        // HELLO AUTH failures are logged with the command as typed.
        raw.send_cmd(&[b"HELLO", b"3", b"AUTH", b"lg", b"bad"]);
        assert_eq!(
            error_text(&raw.read2()).unwrap(),
            "WRONGPASS invalid username-password pair or user is disabled."
        );
        let log = run(&mut admin, &["ACL", "LOG", "1"]);
        let Value::Array(entries) = &log else {
            panic!("{log:?}")
        };
        assert_eq!(text(&field(&entries[0], "object")), "HELLO");
        assert_eq!(text(&field(&entries[0], "reason")), "auth");
        let round = if resp3 { 2 } else { 1 };
        for (name, per_round) in [("auth", 2), ("cmd", 1), ("key", 2), ("channel", 1)] {
            let n: i64 =
                brooklet::info_field(&mut admin, "stats", &format!("acl_access_denied_{name}"))
                    .unwrap()
                    .parse()
                    .unwrap();
            assert_eq!(n, per_round * round, "{name}");
        }
    }
}

#[test]
fn selectors_and_channels() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    run(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "sel",
            "on",
            "nopass",
            "&ch*",
            "+subscribe",
            "+psubscribe",
            "+publish",
            "(+get ~g*)",
            "(+set",
            "~s*)",
        ],
    );
    assert_eq!(
        acl_list(&mut admin)[1],
        "user sel on nopass resetchannels &ch* -@all +subscribe +psubscribe +publish (~g* resetchannels -@all +get) (~s* resetchannels -@all +set)"
    );
    let user = run(&mut admin, &["ACL", "GETUSER", "sel"]);
    let selectors = field(&user, "selectors");
    let Value::Array(selectors) = selectors else {
        panic!("{selectors:?}")
    };
    assert_eq!(selectors.len(), 2);
    assert_eq!(text(&field(&selectors[1], "commands")), "-@all +set");
    assert_eq!(text(&field(&selectors[1], "keys")), "~s*");
    assert_eq!(text(&field(&selectors[1], "channels")), "");
    let mut c = client_as(&server, "sel", "x", true);
    run(&mut c, &["SET", "s1", "v"]);
    assert_eq!(query(&mut c, &["GET", "g1"]).unwrap(), Value::Nil);
    assert_eq!(
        err(&mut c, &["GET", "s1"]),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(
        err(&mut c, &["SET", "g1", "v"]),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(
        err(&mut c, &["DEL", "s1"]),
        "NOPERM User sel has no permissions to run the 'del' command"
    );
    assert_eq!(int(&mut c, &["PUBLISH", "chan", "m"]), 0);
    assert_eq!(
        err(&mut c, &["PUBLISH", "other", "m"]),
        "NOPERM No permissions to access a channel"
    );
    let mut raw = server.raw();
    raw.send_cmd(&[b"AUTH", b"sel", b"x"]);
    raw.read2();
    raw.send_cmd(&[b"PSUBSCRIBE", b"ch?"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOPERM No permissions to access a channel"
    );
    // A pattern is allowed only when it is one of the user's patterns, literally.
    raw.send_cmd(&[b"PSUBSCRIBE", b"ch*"]);
    raw.read2();
    // As in Redis, permissions are checked before the subscribed-mode restriction.
    raw.send_cmd(&[b"DEL", b"s1"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOPERM User sel has no permissions to run the 'del' command"
    );
    raw.send_cmd(&[b"SUBSCRIBE", b"ch1", b"zz"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOPERM No permissions to access a channel"
    );
    // Taking the pattern away closes the subscriber that uses it.
    run(
        &mut admin,
        &["ACL", "SETUSER", "sel", "resetchannels", "&ch1"],
    );
    assert!(raw.is_closed());
    // The default user's subscribers too, though they never authenticated.
    let mut open = server.raw();
    open.send_cmd(&[b"SUBSCRIBE", b"news"]);
    open.read2();
    run(
        &mut admin,
        &["ACL", "SETUSER", "default", "resetchannels", "&other"],
    );
    assert!(open.is_closed());
    run(&mut admin, &["ACL", "SETUSER", "default", "allchannels"]);
    // New users have no channels (acl-pubsub-default resetchannels) unless configured.
    run(
        &mut admin,
        &["CONFIG", "SET", "acl-pubsub-default", "allchannels"],
    );
    run(&mut admin, &["ACL", "SETUSER", "later"]);
    assert_eq!(acl_list(&mut admin)[1], "user later off &* -@all");
}

#[test]
fn getuser_users_cat_genpass_and_dryrun() {
    let server = TestServer::start();
    let mut c = server.client(false);
    assert_eq!(
        err(&mut c, &["ACL", "SETUSER", "bad", "#abc"]),
        "ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
    );
    assert_eq!(
        err(&mut c, &["ACL", "SETUSER", "bad", "+nosuch"]),
        "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
    );
    assert_eq!(
        err(&mut c, &["ACL", "SETUSER", "bad", "(+get"]),
        "ERR Unmatched parenthesis in acl selector starting at '(+get'."
    );
    assert_eq!(
        err(&mut c, &["ACL", "SETUSER", "a b"]),
        "ERR Usernames can't contain spaces or null characters"
    );
    run(
        &mut c,
        &[
            "ACL", "SETUSER", "dr", "reset", "on", ">pw", "~k*", "+@read", "&ch",
        ],
    );
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        let u = run(&mut c, &["ACL", "GETUSER", "dr"]);
        assert_eq!(texts(&field(&u, "flags")), ["on", "sanitize-payload"]);
        assert_eq!(texts(&field(&u, "passwords")), [PW_DIGEST]);
        assert_eq!(text(&field(&u, "commands")), "-@all +@read");
        assert_eq!(text(&field(&u, "keys")), "~k*");
        assert_eq!(text(&field(&u, "channels")), "&ch");
        assert_eq!(
            query(&mut c, &["ACL", "GETUSER", "nobody"]).unwrap(),
            Value::Nil
        );
        assert_eq!(texts(&run(&mut c, &["ACL", "USERS"])), ["default", "dr"]);
    }
    let cats = texts(&run(&mut c, &["ACL", "CAT"]));
    assert_eq!(cats.len(), 21);
    assert_eq!(cats[11], "stream");
    let stream = texts(&run(&mut c, &["ACL", "CAT", "stream"]));
    assert!(stream.contains(&"xadd".to_string()) && stream.contains(&"xgroup|create".to_string()));
    assert!(!stream.contains(&"get".to_string()));
    assert_eq!(
        err(&mut c, &["ACL", "CAT", "nope"]),
        "ERR Unknown category 'nope'"
    );
    assert_eq!(text(&run(&mut c, &["ACL", "GENPASS"])).len(), 64);
    assert_eq!(text(&run(&mut c, &["ACL", "GENPASS", "5"])).len(), 2);
    assert_eq!(
        err(&mut c, &["ACL", "GENPASS", "0"]),
        "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"
    );
    let dry = |c: &mut redis::Connection, args: &[&str]| {
        let mut all = vec!["ACL", "DRYRUN", "dr"];
        all.extend_from_slice(args);
        query(c, &all)
    };
    assert_eq!(dry(&mut c, &["GET", "k1"]).unwrap(), Value::Okay);
    assert_eq!(
        text(&dry(&mut c, &["GET", "x"]).unwrap()),
        "User dr has no permissions to access the 'x' key"
    );
    assert_eq!(
        text(&dry(&mut c, &["SET", "k1", "v"]).unwrap()),
        "User dr has no permissions to run the 'set' command"
    );
    assert_eq!(
        err(&mut c, &["ACL", "DRYRUN", "nobody", "GET", "k"]),
        "ERR User 'nobody' not found"
    );
    assert_eq!(
        err(&mut c, &["ACL", "DRYRUN", "dr", "nocmd"]),
        "ERR Command 'nocmd' not found"
    );
    assert_eq!(
        err(&mut c, &["ACL", "DRYRUN", "dr", "GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&mut c, &["ACL", "DELUSER", "default"]),
        "ERR The 'default' user cannot be removed"
    );
    assert_eq!(
        err(&mut c, &["ACL", "LOAD"]),
        "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."
    );
}

#[test]
fn a_blocked_read_is_checked_again_when_served() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    run(
        &mut admin,
        &["ACL", "SETUSER", "rd", "on", "nopass", "+@all", "~*"],
    );
    let mut raw = server.raw();
    raw.send_cmd(&[b"AUTH", b"rd", b"x"]);
    raw.read2();
    raw.send_cmd(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]);
    while brooklet::blocked_clients(&mut admin) == 0 {
        std::thread::yield_now();
    }
    run(&mut admin, &["ACL", "SETUSER", "rd", "resetkeys", "~other"]);
    run(&mut admin, &["XADD", "s", "*", "f", "v"]);
    assert_eq!(
        error_text(&raw.read2()).unwrap(),
        "NOPERM No permissions to access a key"
    );
}

#[test]
fn deleting_a_user_closes_its_connections() {
    let server = TestServer::start();
    let mut admin = server.client(false);
    run(
        &mut admin,
        &["ACL", "SETUSER", "gone", "on", "nopass", "+@all", "~*"],
    );
    let mut raw = server.raw();
    raw.send_cmd(&[b"AUTH", b"gone", b"x"]);
    assert_eq!(raw.read2(), F2::SimpleString(b"OK".to_vec()));
    assert_eq!(int(&mut admin, &["ACL", "DELUSER", "gone", "never"]), 1);
    assert!(raw.is_closed());
    // CLIENT KILL USER closes a user's connections.
    run(
        &mut admin,
        &["ACL", "SETUSER", "kill", "on", "nopass", "+@all", "~*"],
    );
    let mut victim = server.raw();
    victim.send_cmd(&[b"AUTH", b"kill", b"x"]);
    victim.read2();
    assert_eq!(int(&mut admin, &["CLIENT", "KILL", "USER", "kill"]), 1);
    assert!(victim.is_closed());
    assert_eq!(
        err(&mut admin, &["CLIENT", "KILL", "USER", "bob"]),
        "ERR No such user 'bob'"
    );
    // Deleting oneself: the reply comes, then the connection closes.
    run(
        &mut admin,
        &["ACL", "SETUSER", "self", "on", "nopass", "+@all", "~*"],
    );
    let mut me = server.raw();
    me.send_cmd(&[b"AUTH", b"self", b"x"]);
    me.read2();
    me.send_cmd(&[b"ACL", b"DELUSER", b"self"]);
    assert_eq!(me.read2(), F2::Integer(1));
    assert!(me.is_closed());
}

#[test]
fn aclfile_saves_loads_and_survives_a_restart() {
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("users.acl");
    std::fs::write(&path, "user default on nopass ~* &* +@all\n").unwrap();
    let with_file = |c: &mut brooklet_server::config::Config| c.aclfile = Some(path.clone());
    let server = TestServer::start_with(with_file);
    let mut c = server.client(false);
    run(
        &mut c,
        &[
            "ACL",
            "SETUSER",
            "keep",
            "on",
            ">pw",
            "%W~w*",
            "&n",
            "+xadd",
            "(+get ~g*)",
        ],
    );
    let saved = acl_list(&mut c);
    run(&mut c, &["ACL", "SAVE"]);
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert_eq!(on_disk, saved.join("\n") + "\n");
    assert!(!on_disk.contains(">pw") && on_disk.contains(PW_DIGEST));
    let mut keep = client_as(&server, "keep", "pw", false);
    run(&mut c, &["ACL", "SETUSER", "temp", "on"]);
    run(&mut c, &["ACL", "LOAD"]);
    assert_eq!(acl_list(&mut c), saved);
    // ACL LOAD makes every user but `default` anew: their connections are closed.
    assert!(query(&mut keep, &["PING"]).is_err());
    // A file with a wrong line changes nothing.
    std::fs::write(&path, "user x on +nosuch\n").unwrap();
    let e = err(&mut c, &["ACL", "LOAD"]);
    assert!(
        e.ends_with("WARNING: ACL errors detected, no change to the previously active ACL rules was performed"),
        "{e}"
    );
    assert_eq!(acl_list(&mut c), saved);
    run(&mut c, &["ACL", "SAVE"]);
    drop(c);
    server.stop();
    let server = TestServer::start_with(with_file);
    let mut c = server.client(true);
    assert_eq!(acl_list(&mut c), saved);
    let mut keep = client_as(&server, "keep", "pw", true);
    run(&mut keep, &["XADD", "w1", "*", "f", "v"]);
    assert_eq!(
        err(&mut keep, &["XADD", "x1", "*", "f", "v"]),
        "NOPERM No permissions to access a key"
    );
    drop(c);
    server.stop();
    std::fs::write(&path, "user x on +nosuch\n").unwrap();
    let refused = TestServer::try_start_with(with_file)
        .err()
        .unwrap_or_default();
    assert!(
        refused.contains("Unknown command or category name in ACL"),
        "{refused}"
    );
}

#[test]
fn command_info_reports_categories_and_key_specs() {
    let server = TestServer::start();
    for resp3 in [false, true] {
        let mut c = server.client(resp3);
        let info = run(
            &mut c,
            &["COMMAND", "INFO", "xadd", "xreadgroup", "config|set"],
        );
        let Value::Array(cmds) = info else {
            panic!("{info:?}")
        };
        let Value::Array(xadd) = &cmds[0] else {
            panic!()
        };
        assert_eq!(texts(&xadd[6]), ["@write", "@stream", "@fast"]);
        let Value::Array(specs) = &xadd[8] else {
            panic!()
        };
        assert_eq!(texts(&field(&specs[0], "flags")), ["RW", "update"]);
        let Value::Array(xreadgroup) = &cmds[1] else {
            panic!()
        };
        assert_eq!(
            texts(&xreadgroup[6]),
            ["@write", "@stream", "@slow", "@blocking"]
        );
        let Value::Array(specs) = &xreadgroup[8] else {
            panic!()
        };
        let begin = field(&specs[0], "begin_search");
        assert_eq!(text(&field(&begin, "type")), "keyword");
        assert_eq!(text(&field(&field(&begin, "spec"), "keyword")), "STREAMS");
        let Value::Array(config_set) = &cmds[2] else {
            panic!()
        };
        assert_eq!(texts(&config_set[6]), ["@admin", "@slow", "@dangerous"]);
    }
    // Every command has at least its speed category.
    let mut c = server.client(false);
    let all = run(&mut c, &["COMMAND"]);
    let Value::Array(all) = all else { panic!() };
    for cmd in &all {
        let Value::Array(cmd) = cmd else { panic!() };
        let cats = texts(&cmd[6]);
        assert!(
            cats.iter().any(|c| c == "@fast" || c == "@slow"),
            "{}: {cats:?}",
            text(&cmd[0])
        );
    }
    let acl_cmds = texts(&run(
        &mut c,
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "dangerous"],
    ));
    assert!(acl_cmds.contains(&"flushall".to_string()));
    assert!(acl_cmds.contains(&"acl|setuser".to_string()));
}
