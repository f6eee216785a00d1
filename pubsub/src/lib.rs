//! Pub/sub registry (being written).
