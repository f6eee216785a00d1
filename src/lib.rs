//! Test harness shared by the end-to-end tests in `tests/`.
//!
//! [`TestServer`] runs the real Brooklet server in-process, on its own runtime thread, on an
//! ephemeral loopback port with a temporary data directory. It is ready when `start` returns
//! (the listener is bound before the address is handed back), so tests never sleep to wait.
//! Every client it hands out has read and write timeouts, so a bug fails a test instead of
//! hanging CI.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub use brooklet_server::Config;
use redis_protocol::resp2::types::OwnedFrame as Resp2Frame;
use redis_protocol::resp3::types::OwnedFrame as Resp3Frame;

/// How long any single read or write of a test client may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long dropping a [`TestServer`] waits for it to shut down before failing the test.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Which listeners a test server opens, each on its own free loopback port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// The plain RESP port only.
    Plain,
    /// The TLS port only (the test configures the `tls-*` files).
    Tls,
    /// Both, side by side.
    Both,
}

/// A Brooklet server running for one test.
pub struct TestServer {
    addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    trigger: Option<brooklet_server::ShutdownTrigger>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

/// What the server thread hands back once listening, or why it could not start.
type Started = Result<
    (
        Option<SocketAddr>,
        Option<SocketAddr>,
        brooklet_server::ShutdownTrigger,
    ),
    String,
>;

impl TestServer {
    /// Starts a server with the default configuration.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts a server after `configure` adjusted its configuration.
    pub fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::try_start_with(configure).expect("server did not start")
    }

    /// Starts a server from its configuration alone, as the binary does (`port 0` picks a
    /// free port); the start-up error otherwise.
    #[allow(clippy::unwrap_used)]
    pub fn try_start_with(configure: impl FnOnce(&mut Config)) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            port: 0,
            dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        configure(&mut config);
        Self::launch(dir, config, None)
    }

    /// Starts a server on the listeners asked for, each bound on a free loopback port before
    /// the server starts; `configure` sees `port` and `tls-port` set to those ports (0 for a
    /// listener not asked for).
    pub fn start_listening(listen: Listen, configure: impl FnOnce(&mut Config)) -> Self {
        Self::try_start_listening(listen, configure).expect("server did not start")
    }

    /// As [`start_listening`](Self::start_listening), returning the start-up error.
    #[allow(clippy::unwrap_used)]
    pub fn try_start_listening(
        listen: Listen,
        configure: impl FnOnce(&mut Config),
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let bind =
            |wanted: bool| wanted.then(|| std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap());
        let listeners = brooklet_server::Listeners {
            plain: bind(listen != Listen::Tls),
            tls: bind(listen != Listen::Plain),
        };
        let port = |l: &Option<std::net::TcpListener>| {
            l.as_ref().map_or(0, |l| l.local_addr().unwrap().port())
        };
        let mut config = Config {
            port: port(&listeners.plain),
            tls_port: port(&listeners.tls),
            dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        configure(&mut config);
        Self::launch(dir, config, Some(listeners))
    }

    /// Runs the server on its own runtime thread and waits until it listens or fails.
    #[allow(clippy::unwrap_used)]
    fn launch(
        dir: tempfile::TempDir,
        config: Config,
        listeners: Option<brooklet_server::Listeners>,
    ) -> Result<Self, String> {
        let (tx, rx) = std::sync::mpsc::channel::<Started>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let started = match listeners {
                    Some(l) => brooklet_server::start_on(config, l).await,
                    None => brooklet_server::start(config).await,
                };
                match started {
                    Ok(server) => {
                        let ready = (server.local_addr(), server.tls_addr(), server.trigger());
                        tx.send(Ok(ready)).unwrap();
                        server.wait().await;
                    }
                    Err(e) => tx.send(Err(e.to_string())).unwrap(),
                }
            });
        });
        let started = rx.recv_timeout(IO_TIMEOUT).expect("server did not start");
        let (addr, tls_addr, trigger) = match started {
            Ok(ready) => ready,
            Err(e) => {
                let _ = thread.join();
                return Err(e);
            }
        };
        Ok(TestServer {
            addr,
            tls_addr,
            trigger: Some(trigger),
            thread: Some(thread),
            dir,
        })
    }

    /// The address of the plain listener (panics when the server has none).
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("the server has no plain listener")
    }

    /// The address of the plain listener, if any.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The address of the TLS listener (panics when the server has none).
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr.expect("the server has no TLS listener")
    }

    /// A `redis` crate connection over TLS to the TLS port, trusting and presenting what
    /// `certs` holds, with bounded timeouts; the error of the connect or handshake otherwise.
    pub fn tls_client(
        &self,
        resp3: bool,
        certs: redis::TlsCertificates,
    ) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::build_with_tls(self.tls_url(resp3), certs)?;
        let conn = client.get_connection_with_timeout(IO_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    /// A `rediss://` URL for the TLS port, with `?protocol=resp3` when asked.
    pub fn tls_url(&self, resp3: bool) -> String {
        let proto = if resp3 { "?protocol=resp3" } else { "" };
        format!("rediss://{}/{proto}", self.tls_addr())
    }

    /// The server's data directory.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A `redis://` URL for this server, with `?protocol=resp3` when asked.
    pub fn url(&self, resp3: bool) -> String {
        let proto = if resp3 { "?protocol=resp3" } else { "" };
        format!("redis://{}/{proto}", self.addr())
    }

    /// A `redis` crate connection (RESP2, or RESP3 when asked) with bounded timeouts.
    #[allow(clippy::unwrap_used)]
    pub fn client(&self, resp3: bool) -> redis::Connection {
        let client = redis::Client::open(self.url(resp3)).unwrap();
        let conn = client.get_connection_with_timeout(IO_TIMEOUT).unwrap();
        conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        conn
    }

    /// A raw TCP connection for byte-level tests.
    #[allow(clippy::unwrap_used)]
    pub fn raw(&self) -> RawConn {
        let stream = TcpStream::connect_timeout(&self.addr(), IO_TIMEOUT).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub fn stop(mut self) {
        self.shutdown_inner();
    }

    fn shutdown_inner(&mut self) {
        if let Some(t) = self.trigger.take() {
            t.shutdown();
        }
        if let Some(th) = self.thread.take() {
            // A wedged server fails the test instead of hanging it: the thread is left
            // behind (it ends with the test process).
            let deadline = std::time::Instant::now() + SHUTDOWN_TIMEOUT;
            while !th.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if th.is_finished() {
                let _ = th.join();
            } else if !std::thread::panicking() {
                panic!("the server did not shut down within {SHUTDOWN_TIMEOUT:?}");
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown_inner();
    }
}

/// A raw connection that sends bytes and decodes replies with an independent RESP decoder.
pub struct RawConn {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    /// Sends bytes as they are.
    #[allow(clippy::unwrap_used)]
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a command as a RESP multibulk.
    pub fn send_cmd(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.send(&out);
    }

    /// Reads more bytes; false on EOF or error.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads one RESP2 reply (panics on timeout or EOF).
    #[allow(clippy::unwrap_used)]
    pub fn read2(&mut self) -> Resp2Frame {
        loop {
            if let Some((frame, used)) = redis_protocol::resp2::decode::decode(&self.buf).unwrap() {
                self.buf.drain(..used);
                return frame;
            }
            assert!(
                self.fill(),
                "connection closed or timed out while waiting for a reply"
            );
        }
    }

    /// Reads one RESP3 frame (panics on timeout or EOF).
    #[allow(clippy::unwrap_used)]
    pub fn read3(&mut self) -> Resp3Frame {
        loop {
            if let Some((frame, used)) =
                redis_protocol::resp3::decode::complete::decode(&self.buf).unwrap()
            {
                self.buf.drain(..used);
                return frame;
            }
            assert!(
                self.fill(),
                "connection closed or timed out while waiting for a reply"
            );
        }
    }

    /// Reads one reply and returns its raw bytes (for exact-byte checks).
    pub fn read_raw2(&mut self) -> Vec<u8> {
        loop {
            if let Ok(Some((_, used))) = redis_protocol::resp2::decode::decode(&self.buf) {
                return self.buf.drain(..used).collect();
            }
            assert!(
                self.fill(),
                "connection closed or timed out while waiting for a reply"
            );
        }
    }

    /// Reads one line-shaped reply (simple string, error, integer) with its CRLF, whatever
    /// bytes it holds: the frame decoder refuses error text that is not UTF-8.
    pub fn read_line2(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return self.buf.drain(..end + 2).collect();
            }
            assert!(
                self.fill(),
                "connection closed or timed out while waiting for a reply"
            );
        }
    }

    /// Whether the server closed the connection (after draining whatever it sent first).
    pub fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}

/// An error reply's text, for assertions on RESP2 frames.
pub fn error_text(frame: &Resp2Frame) -> Option<String> {
    match frame {
        Resp2Frame::Error(e) => Some(e.to_string()),
        _ => None,
    }
}

/// Whether redis-cli is installed; when it is not, says the test is skipped (`.ci/run`
/// installs it).
pub fn redis_cli_available() -> bool {
    match std::process::Command::new("redis-cli")
        .arg("--version")
        .output()
    {
        Ok(out) => {
            assert!(out.status.success(), "redis-cli --version failed");
            true
        }
        Err(_) => {
            println!("SKIPPED: redis-cli is not installed (.ci/run installs redis-tools)");
            false
        }
    }
}

/// A benchmark's target address: only loopback, as benchmarks send traffic nowhere else.
pub fn loopback_addr(arg: &str) -> Result<SocketAddr, String> {
    let parsed: SocketAddr = arg.parse().map_err(|e| format!("bad address {arg}: {e}"))?;
    if !parsed.ip().is_loopback() {
        return Err("only loopback addresses (127.0.0.1) are allowed".into());
    }
    Ok(parsed)
}

/// Sends a command given as words and returns its reply or its error.
pub fn query(c: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query::<redis::Value>(c)
}

/// Runs a command given as words and returns its reply; an error reply fails the test,
/// naming the command.
pub fn run(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    query(c, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Runs a command that must answer an integer, and returns it.
pub fn int(c: &mut redis::Connection, args: &[&str]) -> i64 {
    match run(c, args) {
        redis::Value::Int(n) => n,
        v => panic!("{args:?}: not an integer: {v:?}"),
    }
}

/// Runs a command that must answer a string (bulk, simple, verbatim or OK), and returns it.
pub fn text(c: &mut redis::Connection, args: &[&str]) -> String {
    let v = run(c, args);
    string_of(&v).unwrap_or_else(|| panic!("{args:?}: not a string: {v:?}"))
}

/// A reply that must be a string (bulk, simple, verbatim or OK) as text.
pub fn value_text(v: &redis::Value) -> String {
    string_of(v).unwrap_or_else(|| panic!("not a string: {v:?}"))
}

#[allow(clippy::unwrap_used)]
fn string_of(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8(b.clone()).unwrap()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::VerbatimString { text, .. } => Some(text.clone()),
        redis::Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// A reply that must be an integer.
pub fn value_int(v: &redis::Value) -> i64 {
    match v {
        redis::Value::Int(n) => *n,
        v => panic!("not an integer: {v:?}"),
    }
}

/// A map reply's fields in order, whichever protocol it came in (a RESP3 map, or a RESP2
/// array of names and values).
pub fn map_pairs(v: &redis::Value) -> Vec<(String, redis::Value)> {
    match v {
        redis::Value::Map(m) => m.iter().map(|(k, v)| (value_text(k), v.clone())).collect(),
        redis::Value::Array(a) => a
            .chunks(2)
            .map(|p| (value_text(&p[0]), p[1].clone()))
            .collect(),
        v => panic!("not a map: {v:?}"),
    }
}

/// A map reply's field `name`, whichever protocol it came in.
pub fn map_field(v: &redis::Value, name: &str) -> redis::Value {
    map_pairs(v)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no field {name} in {v:?}"))
        .1
}

/// Runs a command that must answer OK.
pub fn ok(c: &mut redis::Connection, args: &[&str]) {
    assert_eq!(run(c, args), redis::Value::Okay, "{args:?}");
}

/// The value of field `field` in INFO `section`, if the reply has that field.
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> Option<String> {
    let info = match run(c, &["INFO", section]) {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("INFO {section}: {other:?}"),
    };
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
}

/// Milliseconds since the epoch, as the server's clock reads them.
#[allow(clippy::unwrap_used)]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// INFO clients' `blocked_clients`.
pub fn blocked_clients(c: &mut redis::Connection) -> i64 {
    info_field(c, "clients", "blocked_clients")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO clients has no blocked_clients number"))
}

/// Runs a command that must fail and returns its error line (code and text).
pub fn err(c: &mut redis::Connection, args: &[&str]) -> String {
    match query(c, args) {
        Ok(v) => panic!("{args:?} succeeded with {v:?}"),
        Err(e) => match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            (Some(code), None) => code.to_string(),
            _ => e.to_string(),
        },
    }
}
