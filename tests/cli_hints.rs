//! End-to-end tests of the hints redis-cli shows while a command is typed, which it builds
//! from COMMAND DOCS. redis-cli only hints on a terminal, so it runs under `script` (a
//! pseudo-terminal), and the test answers the cursor-position queries a terminal would.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use brooklet::TestServer;

/// How long one hint may take to appear.
const HINT_TIMEOUT: Duration = Duration::from_secs(10);

/// What redis-cli shows after `typed` has been typed at its prompt: everything it drew, with
/// the terminal escapes left in. None when `script` or redis-cli is not installed.
fn screen_after_typing(server: &TestServer, typed: &str, expect: &str) -> Option<String> {
    let cli = format!("redis-cli -h 127.0.0.1 -p {}", server.addr().port());
    let mut child = match Command::new("script")
        .args(["-qfc", &cli, "/dev/null"])
        .env("TERM", "xterm")
        .env("REDISCLI_HISTFILE", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: cannot run script(1): {e}");
            return None;
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let mut answered = 0;
    let mut typed_yet = false;
    let deadline = Instant::now() + HINT_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            screen.extend_from_slice(&chunk);
        }
        // linenoise asks where the cursor is, twice (before and after moving it right to
        // find the width): answer column 1, then a wide terminal.
        let queries = screen.windows(4).filter(|w| w == b"\x1b[6n").count();
        while answered < queries {
            answered += 1;
            let reply: &[u8] = if answered % 2 == 1 {
                b"\x1b[1;1R"
            } else {
                b"\x1b[1;400R"
            };
            stdin.write_all(reply).unwrap();
            stdin.flush().unwrap();
        }
        if !typed_yet && answered >= 2 && String::from_utf8_lossy(&screen).contains("> ") {
            stdin.write_all(typed.as_bytes()).unwrap();
            stdin.flush().unwrap();
            typed_yet = true;
        }
        if typed_yet && String::from_utf8_lossy(&screen).contains(expect) {
            break;
        }
    }
    // Ctrl-C leaves redis-cli; the kill covers a redis-cli that never started.
    let _ = stdin.write_all(b"\x03");
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let screen = String::from_utf8_lossy(&screen).into_owned();
    if screen.contains("redis-cli: not found") || screen.contains("command not found") {
        eprintln!("skipped: redis-cli is not installed");
        return None;
    }
    Some(screen)
}

#[test]
fn xadd_hint_repeats_field_value_pairs() {
    let server = TestServer::start();
    let want = "*|id field value [field value ...]";
    let Some(screen) = screen_after_typing(&server, "XADD ", want) else {
        return;
    };
    assert!(screen.contains(want), "redis-cli drew {screen:?}");
    assert!(!screen.contains("field value [value ...]"), "{screen:?}");
}

#[test]
fn client_kill_hint_names_its_filters() {
    let server = TestServer::start();
    let want = "ip:port|[ID client-id]|[TYPE normal|master|replica|pubsub]|[USER username]";
    let Some(screen) = screen_after_typing(&server, "CLIENT KILL ", want) else {
        return;
    };
    assert!(screen.contains(want), "redis-cli drew {screen:?}");
    // The hint used to start with a choice of two empty strings.
    assert!(
        !screen.contains("KILL\x1b[0;90;49m ip:port |"),
        "{screen:?}"
    );
    assert!(!screen.contains("ip:port | "), "{screen:?}");
}
