//! RESP reading and encoding (being written).
