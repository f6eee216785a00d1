//! The Prometheus endpoint (`metrics-port`, a Brooklet extension): `GET /metrics` answers
//! the server's figures and, per stream and consumer group, length, lag, pending entries,
//! the oldest pending entry's idle time and the group's lifetime counters, in Prometheus's
//! text format, so autoscalers and alerts on consumer lag need no separate exporter.
//!
//! The text format is `prometheus-client`'s (the Prometheus project's own Rust client);
//! the figures are read at scrape time (`figures.rs`, where the cost of a scrape is
//! described) by a collector (`collector.rs`); `http.rs` serves them with hyper.

mod collector;
mod figures;
mod http;

pub use http::serve;
