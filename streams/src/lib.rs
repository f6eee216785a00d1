//! Redis Streams data model (being written).
