//! Serving the scrape over HTTP/1.1 with hyper: `GET /metrics` (and HEAD) answers the
//! figures, any other path 404. One task per connection, 64 connections at most, each given
//! 10 s to send its headers; scrapes run on the blocking pool, since they lock every shard
//! in turn.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::state::Shared;

/// Scrape connections open at once.
const MAX_CONNECTIONS: usize = 64;

/// How long a connection may take to send a request's headers.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts scrapers on `listener` until shutdown begins.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let registry = Arc::new(super::collector::registry(shared.clone()));
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let stopping = shared.stopping();
    tokio::pin!(stopping);
    loop {
        let (socket, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!("metrics accept failed: {e}");
                    continue;
                }
            },
            () = &mut stopping => return,
        };
        // Past the cap the connection is closed at once: scrapers are few, and the port
        // must not become a way to hold the server's memory.
        let Ok(permit) = open.clone().try_acquire_owned() else {
            continue;
        };
        let registry = registry.clone();
        let stop = shared.stopping();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| answer(registry.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(socket), service);
            tokio::select! {
                done = conn => {
                    if let Err(e) = done {
                        tracing::debug!("metrics connection ended: {e}");
                    }
                }
                () = stop => {}
            }
        });
    }
}

/// One request's response.
async fn answer(
    registry: Arc<Registry>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    if !get || req.uri().path() != "/metrics" {
        let status = if get {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::METHOD_NOT_ALLOWED
        };
        return Ok(reply(
            status,
            "text/plain",
            "Metrics are at GET /metrics\n".into(),
        ));
    }
    let text = tokio::task::spawn_blocking(move || super::collector::scrape(&registry))
        .await
        .unwrap_or_default();
    let ctype = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
    Ok(reply(StatusCode::OK, ctype, text))
}
