//! fjall-backed persistence for Brooklet.
//!
//! Not built yet: this crate will own the fjall keyspaces, the key layout, the durability
//! policy and recovery (see `../shared/ARCHITECTURE.md`). Until then the server keeps its
//! state in memory only, and says so at start-up.
