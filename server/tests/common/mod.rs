//! Running the `brooklet-server` binary in the process tests: start it on port 0, read the
//! port it logs, keep its log, and kill it when the test is done (or panics).

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_brooklet-server");

/// A child process that is killed when dropped, so a test that fails (panics) does not leave
/// its server running.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// A started server: the process, the port it logged and everything it logged so far.
pub struct Spawned {
    pub child: Running,
    pub port: u16,
    pub log: Arc<Mutex<String>>,
}

/// Runs `cmd` (the binary, or a wrapper around it, with `--port 0` among its arguments) with
/// stderr captured, and waits up to `limit` for the "listening on" line.
pub fn spawn(cmd: &mut Command, limit: Duration) -> Spawned {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            {
                let mut g = sink.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
            if let Some(addr) = line.split("listening on ").nth(1)
                && let Some(port) = addr.trim().rsplit(':').next()
                && let Ok(port) = port.parse::<u16>()
            {
                let _ = tx.send(port);
            }
        }
    });
    let child = Running(child);
    let Ok(port) = rx.recv_timeout(limit) else {
        panic!("the server never logged its port:\n{}", log.lock().unwrap());
    };
    Spawned { child, port, log }
}
