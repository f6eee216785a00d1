//! End-to-end tests of TLS: the plain and TLS ports side by side, the `redis` crate (sync and
//! tokio, RESP2 and RESP3) and redis-cli over TLS, `tls-auth-clients yes|optional|no`, clients
//! that speak plain text to the TLS port or never handshake, and start-up errors. Every
//! certificate is made at run time by rcgen; no key is committed.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use brooklet::{Config, IO_TIMEOUT, Listen, TestServer};
use brooklet_server::TlsAuthClients;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use redis::{ClientTlsConfig, TlsCertificates, cmd};

/// A test CA, a server certificate and key it signed, a client certificate and key it signed,
/// and a client certificate signed by another CA the server does not trust; all as PEM files
/// in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        let (ca_pem, ca) = authority("Brooklet test CA");
        write("ca.crt", ca_pem);
        let (server_cert, server_key) = leaf(
            &ca,
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        write("server.crt", server_cert);
        write("server.key", server_key);
        let (client_cert, client_key) = leaf(&ca, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth);
        write("client.crt", client_cert);
        write("client.key", client_key);
        let (_, rogue_ca) = authority("Some other CA");
        let (rogue_cert, rogue_key) =
            leaf(&rogue_ca, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth);
        write("rogue.crt", rogue_cert);
        write("rogue.key", rogue_key);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// Points the `tls-*` directives at these files; the CA only when `auth` needs it, so
    /// `tls-auth-clients no` is also tested without one.
    fn configure(&self, c: &mut Config, auth: TlsAuthClients) {
        c.tls_cert_file = Some(self.path("server.crt"));
        c.tls_key_file = Some(self.path("server.key"));
        c.tls_ca_cert_file = (auth != TlsAuthClients::No).then(|| self.path("ca.crt"));
        c.tls_auth_clients = auth;
    }

    /// A byte-level TLS connection to `addr` that trusts the test CA and presents no
    /// certificate; the handshake completes on the first read or write.
    fn raw_tls(
        &self,
        addr: std::net::SocketAddr,
    ) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_file(self.path("ca.crt")).unwrap())
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        rustls::StreamOwned::new(conn, raw_tcp(addr, IO_TIMEOUT))
    }

    /// Trusts the test CA and presents no certificate.
    fn anonymous(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: None,
            root_cert: Some(self.read("ca.crt")),
        }
    }

    /// Trusts the test CA and presents the certificate it signed (`client`) or the one
    /// another CA signed (`rogue`).
    fn presenting(&self, who: &str) -> TlsCertificates {
        TlsCertificates {
            client_tls: Some(ClientTlsConfig {
                client_cert: self.read(&format!("{who}.crt")),
                client_key: self.read(&format!("{who}.key")),
            }),
            root_cert: Some(self.read("ca.crt")),
        }
    }
}

/// A self-signed CA: its certificate as PEM and the issuer that signs with it.
fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate signed by `issuer` for `names`, and its key, as PEM.
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "brooklet test");
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A TLS server on a free port (and a plain one beside it with `Listen::Both`).
fn tls_server(pki: &Pki, listen: Listen, auth: TlsAuthClients) -> TestServer {
    TestServer::start_listening(listen, |c| pki.configure(c, auth))
}

/// PING over a fresh TLS connection: the reply, or the connection's or the command's error.
fn tls_ping(
    server: &TestServer,
    resp3: bool,
    certs: TlsCertificates,
) -> redis::RedisResult<String> {
    let mut c = server.tls_client(resp3, certs)?;
    cmd("PING").query(&mut c)
}

/// Asserts that a TLS client was turned away by the server, not left waiting.
fn assert_refused(result: redis::RedisResult<String>, what: &str) {
    match result {
        Ok(reply) => panic!("{what}: served ({reply}) but should have been refused"),
        Err(e) => assert!(!e.is_timeout(), "{what}: timed out instead of refused: {e}"),
    }
}

/// Whether the server closed `stream` (EOF or reset) before the read timeout.
fn closed_by_server(stream: &mut TcpStream) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return (false, got);
            }
            Err(_) => return (true, got),
        }
    }
}

fn raw_tcp(addr: std::net::SocketAddr, read_timeout: Duration) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(read_timeout)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

#[test]
fn plain_and_tls_ports_serve_one_keyspace_side_by_side() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Both, TlsAuthClients::Yes);
    let (plain_port, tls_port) = (server.addr().port(), server.tls_addr().port());
    assert_ne!(plain_port, tls_port);
    let mut plain = server.client(false);
    let mut tls = server.tls_client(false, pki.presenting("client")).unwrap();
    let id: String = cmd("XADD")
        .arg("s")
        .arg("1-1")
        .arg("via")
        .arg("plain")
        .query(&mut plain)
        .unwrap();
    assert_eq!(id, "1-1");
    let _: String = cmd("XADD")
        .arg("s")
        .arg("2-1")
        .arg("via")
        .arg("tls")
        .query(&mut tls)
        .unwrap();
    for c in [&mut plain, &mut tls] {
        let len: i64 = cmd("XLEN").arg("s").query(c).unwrap();
        assert_eq!(len, 2);
    }

    let config: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("tls-*")
        .query(&mut plain)
        .unwrap();
    let pairs: std::collections::HashMap<_, _> = config
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(pairs["tls-port"], tls_port.to_string());
    assert_eq!(pairs["tls-auth-clients"], "yes");
    assert_eq!(
        pairs["tls-cert-file"],
        pki.path("server.crt").display().to_string()
    );

    let info: String = cmd("INFO").arg("server").query(&mut tls).unwrap();
    assert!(
        info.contains(&format!("tcp_port:{plain_port}\r\n")),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            "listener0:name=tcp,bind=127.0.0.1,port={plain_port}\r\n"
        )),
        "{info}"
    );
    assert!(
        info.contains(&format!(
            "listener2:name=tls,bind=127.0.0.1,port={tls_port}\r\n"
        )),
        "{info}"
    );

    // The TLS client is an ordinary client: listed with the TLS port as its local address,
    // and killable from a plain connection.
    let tls_id: i64 = cmd("CLIENT").arg("ID").query(&mut tls).unwrap();
    let list: String = cmd("CLIENT").arg("LIST").query(&mut plain).unwrap();
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={tls_id} ")))
        .expect("the TLS client is in CLIENT LIST");
    assert!(
        line.contains(&format!("laddr=127.0.0.1:{tls_port} ")),
        "{line}"
    );
    let killed: i64 = cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(tls_id)
        .query(&mut plain)
        .unwrap();
    assert_eq!(killed, 1);
    assert!(cmd("PING").query::<String>(&mut tls).is_err());
}

#[test]
fn the_redis_crate_speaks_resp2_and_resp3_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Tls, TlsAuthClients::Yes);
    for resp3 in [false, true] {
        let mut c = server.tls_client(resp3, pki.presenting("client")).unwrap();
        let pong: String = cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG");
        let key = format!("s{}", u8::from(resp3));
        for i in 1..=3 {
            let _: String = cmd("XADD")
                .arg(&key)
                .arg(format!("{i}-0"))
                .arg("n")
                .arg(i)
                .query(&mut c)
                .unwrap();
        }
        let range: redis::streams::StreamRangeReply = cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query(&mut c)
            .unwrap();
        let ids: Vec<_> = range.ids.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1-0", "2-0", "3-0"]);
        let info: String = cmd("CLIENT").arg("INFO").query(&mut c).unwrap();
        let resp = if resp3 { "resp=3" } else { "resp=2" };
        assert!(info.contains(resp), "{info}");
    }
}

#[test]
fn the_redis_crate_on_tokio_speaks_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Tls, TlsAuthClients::Yes);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for resp3 in [false, true] {
        let client =
            redis::Client::build_with_tls(server.tls_url(resp3), pki.presenting("client")).unwrap();
        let ids: Vec<String> = rt
            .block_on(async {
                tokio::time::timeout(IO_TIMEOUT, async {
                    let mut c = client.get_multiplexed_async_connection().await.unwrap();
                    let _: String = cmd("XADD")
                        .arg("a")
                        .arg("*")
                        .arg("f")
                        .arg("v")
                        .query_async(&mut c)
                        .await
                        .unwrap();
                    let range: redis::streams::StreamRangeReply = cmd("XRANGE")
                        .arg("a")
                        .arg("-")
                        .arg("+")
                        .query_async(&mut c)
                        .await
                        .unwrap();
                    range.ids.into_iter().map(|e| e.id).collect()
                })
                .await
            })
            .expect("the async TLS client timed out");
        assert_eq!(ids.len(), if resp3 { 2 } else { 1 });
    }
}

#[test]
fn large_replies_and_pubsub_messages_arrive_whole_over_tls() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Both, TlsAuthClients::Optional);
    let mut tls = server.tls_client(false, pki.anonymous()).unwrap();
    // Many TLS records per reply, past the connection's 256 KiB flush point and the socket's
    // buffer: every byte must arrive, not only those the first write took.
    let value = "v".repeat(1024);
    let mut pipe = redis::pipe();
    for i in 1..=2000 {
        pipe.cmd("XADD")
            .arg("big")
            .arg(format!("{i}-0"))
            .arg("f")
            .arg(&value)
            .ignore();
    }
    let () = pipe.query(&mut tls).unwrap();
    let range: redis::streams::StreamRangeReply = cmd("XRANGE")
        .arg("big")
        .arg("-")
        .arg("+")
        .query(&mut tls)
        .unwrap();
    assert_eq!(range.ids.len(), 2000);
    assert_eq!(range.ids[1999].id, "2000-0");

    let mut subscriber = server.tls_client(true, pki.anonymous()).unwrap();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.subscribe("news").unwrap();
    pubsub.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let receivers: i64 = cmd("PUBLISH")
        .arg("news")
        .arg("over tls")
        .query(&mut server.client(false))
        .unwrap();
    assert_eq!(receivers, 1);
    let msg = pubsub.get_message().unwrap();
    assert_eq!(msg.get_channel_name(), "news");
    assert_eq!(msg.get_payload::<String>().unwrap(), "over tls");
}

#[test]
fn auth_clients_yes_requires_a_certificate_from_the_trusted_ca() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Tls, TlsAuthClients::Yes);
    assert_refused(tls_ping(&server, false, pki.anonymous()), "no certificate");
    assert_refused(
        tls_ping(&server, false, pki.presenting("rogue")),
        "a certificate from an untrusted CA",
    );
    for resp3 in [false, true] {
        assert_eq!(
            tls_ping(&server, resp3, pki.presenting("client")).unwrap(),
            "PONG"
        );
    }
}

#[test]
fn auth_clients_optional_accepts_clients_with_and_without_a_certificate() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Tls, TlsAuthClients::Optional);
    assert_eq!(tls_ping(&server, false, pki.anonymous()).unwrap(), "PONG");
    assert_eq!(
        tls_ping(&server, true, pki.presenting("client")).unwrap(),
        "PONG"
    );
    // A certificate that is presented is still checked.
    assert_refused(
        tls_ping(&server, false, pki.presenting("rogue")),
        "a certificate from an untrusted CA",
    );
}

#[test]
fn auth_clients_no_accepts_clients_without_a_certificate_and_needs_no_ca() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Tls, TlsAuthClients::No);
    assert_eq!(tls_ping(&server, false, pki.anonymous()).unwrap(), "PONG");
    assert_eq!(tls_ping(&server, true, pki.anonymous()).unwrap(), "PONG");
}

#[test]
fn plain_text_sent_to_the_tls_port_is_dropped_while_others_are_served() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Both, TlsAuthClients::Optional);
    let mut tls = server.tls_client(false, pki.anonymous()).unwrap();
    let mut confused = raw_tcp(server.tls_addr(), IO_TIMEOUT);
    confused.write_all(b"*1\r\n$4\r\nPING\r\nPING\r\n").unwrap();
    let (closed, got) = closed_by_server(&mut confused);
    assert!(
        closed,
        "the server kept a plain-text client on the TLS port"
    );
    assert!(!String::from_utf8_lossy(&got).contains("PONG"));
    let pong: String = cmd("PING").query(&mut tls).unwrap();
    assert_eq!(pong, "PONG");
    let pong: String = cmd("PING").query(&mut server.client(false)).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn clients_that_never_handshake_block_neither_others_nor_shutdown() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Both, TlsAuthClients::Optional);
    let silent: Vec<TcpStream> = (0..20)
        .map(|_| raw_tcp(server.tls_addr(), IO_TIMEOUT))
        .collect();
    for resp3 in [false, true] {
        assert_eq!(tls_ping(&server, resp3, pki.anonymous()).unwrap(), "PONG");
    }
    let pong: String = cmd("PING").query(&mut server.client(false)).unwrap();
    assert_eq!(pong, "PONG");
    // Shutdown ends handshakes in progress instead of waiting out their timeout.
    let stopping = Instant::now();
    server.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "shutdown waited {:?} for clients in their handshake",
        stopping.elapsed()
    );
    drop(silent);
}

#[test]
fn a_client_that_never_handshakes_is_dropped_after_the_handshake_timeout() {
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Tls, TlsAuthClients::Optional);
    let started = Instant::now();
    // Bounded well past the server's 10 s handshake timeout.
    let mut silent = raw_tcp(server.tls_addr(), Duration::from_secs(30));
    let (closed, got) = closed_by_server(&mut silent);
    assert!(
        closed,
        "a silent client was kept for {:?}",
        started.elapsed()
    );
    assert!(got.is_empty());
    assert!(started.elapsed() >= Duration::from_secs(5));
}

#[test]
fn maxclients_counts_tls_and_plain_clients_alike() {
    let pki = Pki::new();
    let server = TestServer::start_listening(Listen::Both, |c| {
        pki.configure(c, TlsAuthClients::Optional);
        c.maxclients = 1;
    });
    let mut first = server.tls_client(false, pki.anonymous()).unwrap();
    let pong: String = cmd("PING").query(&mut first).unwrap();
    assert_eq!(pong, "PONG");
    // Refused with Redis's error, sent inside TLS so the client can read it.
    let mut second = pki.raw_tls(server.tls_addr());
    let mut refusal = Vec::new();
    second.read_to_end(&mut refusal).unwrap();
    assert_eq!(refusal, b"-ERR max number of clients reached\r\n");
    let mut raw = server.raw();
    assert_eq!(
        brooklet::error_text(&raw.read2()).unwrap(),
        "ERR max number of clients reached"
    );
}

#[test]
fn a_flood_over_maxclients_on_the_tls_port_is_closed_without_handshakes() {
    let pki = Pki::new();
    let server = TestServer::start_listening(Listen::Tls, |c| {
        pki.configure(c, TlsAuthClients::Optional);
        c.maxclients = 1;
    });
    let mut first = server.tls_client(false, pki.anonymous()).unwrap();
    // 64 silent refused connections wait in their handshake; the ones after them are closed
    // at once instead of each holding a socket for the handshake timeout.
    let _waiting: Vec<TcpStream> = (0..64)
        .map(|_| raw_tcp(server.tls_addr(), IO_TIMEOUT))
        .collect();
    let mut late = raw_tcp(server.tls_addr(), Duration::from_secs(5));
    let (closed, got) = closed_by_server(&mut late);
    assert!(
        closed && got.is_empty(),
        "a refused TLS connection was kept"
    );
    let pong: String = cmd("PING").query(&mut first).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn port_zero_beside_a_tls_port_serves_tls_only() {
    let pki = Pki::new();
    // start() binds tls-port itself, so the test needs a port number up front: take a free
    // one, and try again if something else took it before the server bound it.
    let mut attempts = 0;
    let (server, tls_port) = loop {
        let probe = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let started = TestServer::try_start_with(|c| {
            pki.configure(c, TlsAuthClients::Yes);
            c.port = 0;
            c.tls_port = port;
        });
        match started {
            Ok(server) => break (server, port),
            Err(e) if e.contains("in use") && attempts < 5 => attempts += 1,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(server.plain_addr(), None);
    assert_eq!(server.tls_addr().port(), tls_port);
    let mut c = server.tls_client(false, pki.presenting("client")).unwrap();
    let port: Vec<String> = cmd("CONFIG").arg("GET").arg("port").query(&mut c).unwrap();
    assert_eq!(port, ["port", "0"]);
    let info: String = cmd("INFO").arg("server").query(&mut c).unwrap();
    assert!(info.contains(&format!("tcp_port:{tls_port}\r\n")), "{info}");
    assert!(!info.contains("listener0:"), "{info}");
}

#[test]
fn unusable_tls_settings_stop_start_up_with_an_error_naming_the_file() {
    let pki = Pki::new();
    let missing = pki.path("nope/server.crt");
    let start = |change: &dyn Fn(&mut Config)| {
        TestServer::try_start_listening(Listen::Both, |c| {
            pki.configure(c, TlsAuthClients::Yes);
            change(c);
        })
        .err()
        .expect("the server started with an unusable TLS configuration")
    };

    let err = start(&|c| c.tls_cert_file = Some(missing.clone()));
    assert!(
        err.contains("tls-cert-file") && err.contains(&shown(missing.clone())),
        "{err}"
    );
    let err = start(&|c| c.tls_key_file = Some(missing.clone()));
    assert!(
        err.contains("tls-key-file") && err.contains(&shown(missing.clone())),
        "{err}"
    );
    let err = start(&|c| c.tls_ca_cert_file = Some(missing.clone()));
    assert!(
        err.contains("tls-ca-cert-file") && err.contains(&shown(missing.clone())),
        "{err}"
    );
    // A key where the certificate should be: the file exists but holds no certificate.
    let err = start(&|c| c.tls_cert_file = Some(pki.path("server.key")));
    assert!(
        err.contains("tls-cert-file") && err.contains(&shown(pki.path("server.key"))),
        "{err}"
    );
    let err = start(&|c| c.tls_key_file = Some(pki.path("server.crt")));
    assert!(
        err.contains("tls-key-file") && err.contains(&shown(pki.path("server.crt"))),
        "{err}"
    );
    let err = start(&|c| c.tls_cert_file = None);
    assert!(err.contains("No tls-cert-file configured"), "{err}");
    let err = start(&|c| c.tls_ca_cert_file = None);
    assert!(err.contains("tls-ca-cert-file must be specified"), "{err}");
    let err = start(&|c| {
        c.tls_ca_cert_file = None;
        c.tls_auth_clients = TlsAuthClients::Optional;
    });
    assert!(err.contains("tls-ca-cert-file must be specified"), "{err}");
    // The key of another certificate.
    let err = start(&|c| c.tls_key_file = Some(pki.path("client.key")));
    assert!(err.contains("Failed to configure TLS"), "{err}");
}

/// Runs redis-cli with `args`, bounded by [`IO_TIMEOUT`]; its stdout and stderr.
fn redis_cli(args: &[&str]) -> (String, String) {
    let child = std::process::Command::new("redis-cli")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(IO_TIMEOUT)
        .expect("redis-cli did not finish")
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn redis_cli_connects_over_tls() {
    if !brooklet::redis_cli_available() {
        return;
    }
    let pki = Pki::new();
    let server = tls_server(&pki, Listen::Tls, TlsAuthClients::Yes);
    let port = server.tls_addr().port().to_string();
    let (ca, cert, key) = (
        shown(pki.path("ca.crt")),
        shown(pki.path("client.crt")),
        shown(pki.path("client.key")),
    );
    let base = ["--tls", "--cacert", &ca, "-h", "127.0.0.1", "-p", &port];
    let with_cert = |args: &[&str]| {
        let mut all = base.to_vec();
        all.extend(["--cert", &cert, "--key", &key]);
        all.extend(args);
        redis_cli(&all)
    };
    assert_eq!(with_cert(&["PING"]).0.trim(), "PONG");
    assert_eq!(with_cert(&["XADD", "cli", "1-1", "f", "v"]).0.trim(), "1-1");
    assert!(
        with_cert(&["-3", "XRANGE", "cli", "-", "+"])
            .0
            .contains("1-1")
    );
    // tls-auth-clients yes: no certificate, no service.
    let mut anonymous = base.to_vec();
    anonymous.push("PING");
    let (out, err) = redis_cli(&anonymous);
    assert!(!out.contains("PONG"), "stdout {out:?} stderr {err:?}");

    let open = tls_server(&pki, Listen::Tls, TlsAuthClients::No);
    let port = open.tls_addr().port().to_string();
    let (out, _) = redis_cli(&[
        "--tls",
        "--cacert",
        &ca,
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "PING",
    ]);
    assert_eq!(out.trim(), "PONG");
}

fn shown(p: PathBuf) -> String {
    p.display().to_string()
}
