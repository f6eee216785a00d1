//! Brooklet's pub/sub core: the channel, pattern and shard-channel registry, Redis's glob
//! matching, and fan-out of one encoded message to many subscriber queues.
//!
//! # What it owns
//!
//! - [`glob_match`]: Redis's `stringmatchlen` rules, byte-safe, without exponential blowup.
//! - [`Registry`]: who is subscribed to which channel, pattern and shard channel, indexed both
//!   ways; the counts Redis puts in confirmations, PUBSUB and INFO.
//! - Fan-out: [`Registry::publish`] / [`Registry::spublish`] encode a message once per protocol
//!   and kind and pair the same [`Bytes`](bytes::Bytes) with every receiver ([`Fanout`]); the
//!   subscriber's [`Delivery`] answer tells the server who is over its output limit.
//! - The pushed frames in RESP2 and RESP3: `message`, `pmessage`, `smessage` and the six
//!   subscription confirmations ([`encode_confirmation`]).
//!
//! # What it must not know
//!
//! Sockets, tokio, connections, configuration, or the output buffer limit itself: the server
//! implements [`Subscriber`] for a small handle around its per-client outbound queue and
//! decides when a queue is too full. Nothing here depends on `brooklet-resp` or the streams.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use brooklet_pubsub::{Delivery, Protocol, Registry, Subscriber};
//! use std::sync::{Arc, Mutex};
//!
//! #[derive(Clone)]
//! struct Client { id: u64, queue: Arc<Mutex<Vec<Bytes>>> }
//!
//! impl Subscriber for Client {
//!     fn id(&self) -> u64 { self.id }
//!     fn protocol(&self) -> Protocol { Protocol::Resp2 }
//!     fn deliver(&self, frame: &Bytes) -> Delivery {
//!         match self.queue.lock() {
//!             Ok(mut queue) => { queue.push(frame.clone()); Delivery::Accepted }
//!             Err(_) => Delivery::OverLimit,
//!         }
//!     }
//! }
//!
//! let registry = Mutex::new(Registry::new());
//! let alice = Client { id: 1, queue: Arc::default() };
//! let mut reg = registry.lock().unwrap();
//! assert_eq!(reg.subscribe(&alice, b"news").count, 1);
//! assert_eq!(reg.psubscribe(&alice, b"n*").count, 2);
//! let fanout = reg.publish(b"news", b"hi");
//! drop(reg); // deliver outside the lock (see `Registry` on ordering)
//! let outcome = fanout.deliver();
//! assert_eq!(outcome.receivers, 2); // once for the channel, once for the pattern
//! assert!(outcome.over_limit.is_empty());
//! assert_eq!(alice.queue.lock().unwrap()[0], &b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"[..]);
//! ```

#![deny(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(missing_docs)]

mod encode;
mod fanout;
mod glob;
mod registry;
mod subscriber;

pub use encode::{
    Confirmation, Protocol, encode_confirmation, encode_message, encode_pmessage, encode_smessage,
    write_confirmation,
};
pub use fanout::{Fanout, PublishOutcome};
pub use glob::glob_match;
pub use registry::{Registry, SubscriptionChange, Unsubscribed};
pub use subscriber::{Delivery, Subscriber};
