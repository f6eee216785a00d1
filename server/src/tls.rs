//! TLS on `tls-port`: the rustls server configuration built from `tls-cert-file`,
//! `tls-key-file`, `tls-ca-cert-file` and `tls-auth-clients`, and the bounded handshake of one
//! accepted connection. Past the handshake a TLS client is served by exactly the same
//! connection code as a plain one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{Config, TlsAuthClients};

/// How long a client has to complete the TLS handshake. Past it the connection is dropped, so
/// a peer that connects and never speaks holds a socket and a task for a bounded time only.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS configuration could not be built; the server does not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A directive TLS cannot do without is unset.
    Missing(&'static str),
    /// `tls-auth-clients` is `yes` or `optional` but there is no CA to check certificates with.
    CaRequired,
    /// A file could not be read or holds nothing usable.
    File {
        /// The directive that names the file.
        directive: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// rustls refused the combination (a key that does not match the certificate, say).
    Rustls(rustls::Error),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Missing(directive) => {
                write!(f, "No {directive} configured: tls-port needs it")
            }
            TlsConfigError::CaRequired => f.write_str(
                "tls-ca-cert-file must be specified when tls-auth-clients is yes or optional (the default is yes; set tls-auth-clients no to accept clients without a certificate)",
            ),
            TlsConfigError::File {
                directive,
                path,
                reason,
            } => write!(f, "Failed to load {directive} '{}': {reason}", path.display()),
            TlsConfigError::Rustls(e) => write!(f, "Failed to configure TLS: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsConfigError::Rustls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsConfigError {
    fn from(e: rustls::Error) -> Self {
        TlsConfigError::Rustls(e)
    }
}

/// Builds the acceptor of the TLS listener from the configuration's files.
///
/// The CA file is read whenever it is set, so a wrong path is reported even under
/// `tls-auth-clients no`, where it is not used.
///
/// # Errors
/// When the certificate or key is unset, a file is missing, unreadable or holds no
/// certificate or key, the key does not match the certificate, or client certificates are
/// required (`yes`, `optional`) without a CA file.
pub fn acceptor(config: &Config) -> Result<TlsAcceptor, TlsConfigError> {
    let cert_path = config
        .tls_cert_file
        .as_deref()
        .ok_or(TlsConfigError::Missing("tls-cert-file"))?;
    let key_path = config
        .tls_key_file
        .as_deref()
        .ok_or(TlsConfigError::Missing("tls-key-file"))?;
    let chain = certificates("tls-cert-file", cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| file_error("tls-key-file", key_path, &e))?;
    let roots = match config.tls_ca_cert_file.as_deref() {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("tls-ca-cert-file", path)? {
                roots.add(cert).map_err(|e| TlsConfigError::File {
                    directive: "tls-ca-cert-file",
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    // ring, chosen explicitly rather than as the process default, so that whatever else is
    // linked in cannot change the server's crypto.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match (config.tls_auth_clients, roots) {
        (TlsAuthClients::No, _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsConfigError::CaRequired),
        (auth, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if auth == TlsAuthClients::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| TlsConfigError::Rustls(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server_config = builder.with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(server_config)))
}

/// Every certificate of a PEM file; an error when there is none.
fn certificates(
    directive: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(directive, path, &e))?;
    if certs.is_empty() {
        return Err(file_error(directive, path, &pem::Error::NoItemsFound));
    }
    Ok(certs)
}

fn file_error(directive: &'static str, path: &Path, e: &pem::Error) -> TlsConfigError {
    let reason = match e {
        pem::Error::NoItemsFound => "no PEM item of the expected kind in the file".to_string(),
        other => other.to_string(),
    };
    TlsConfigError::File {
        directive,
        path: path.to_path_buf(),
        reason,
    }
}

/// Runs the server side of the TLS handshake, giving up after [`HANDSHAKE_TIMEOUT`] or when
/// `stop` resolves (shutdown). None when the client went away, failed the handshake (plain
/// text on the TLS port, no or an untrusted certificate) or was too slow.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    socket: TcpStream,
    stop: impl Future<Output = ()>,
) -> Option<TlsStream<TcpStream>> {
    let peer = socket.peer_addr().ok();
    tokio::select! {
        done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)) => match done {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                // Debug, not warning: anyone who can reach the port can make these.
                tracing::debug!(?peer, "TLS handshake failed: {e}");
                None
            }
            Err(_) => {
                tracing::debug!(?peer, "TLS handshake not completed within {HANDSHAKE_TIMEOUT:?}");
                None
            }
        },
        () = stop => None,
    }
}
