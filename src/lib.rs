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

/// A Brooklet server running for one test.
pub struct TestServer {
    addr: SocketAddr,
    trigger: Option<brooklet_server::ShutdownTrigger>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the default configuration.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Starts a server after `configure` adjusted its configuration.
    #[allow(clippy::unwrap_used)]
    pub fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            port: 0,
            dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        configure(&mut config);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = brooklet_server::start(config).await.unwrap();
                let addr = server.local_addr().expect("no plain listener");
                tx.send((addr, server.trigger())).unwrap();
                server.wait().await;
            });
        });
        let (addr, trigger) = rx.recv_timeout(IO_TIMEOUT).expect("server did not start");
        TestServer {
            addr,
            trigger: Some(trigger),
            thread: Some(thread),
            dir,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's data directory.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A `redis://` URL for this server, with `?protocol=resp3` when asked.
    pub fn url(&self, resp3: bool) -> String {
        let proto = if resp3 { "?protocol=resp3" } else { "" };
        format!("redis://{}/{proto}", self.addr)
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
        let stream = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT).unwrap();
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
            let _ = th.join();
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
