//! What Brooklet's fuzz targets check, one module per target.
//!
//! Each `check_*` function takes the fuzzer's bytes and panics when an invariant breaks. The
//! targets in `fuzz_targets/` call them under libFuzzer; the stable tests
//! `resp/tests/fuzz_regressions.rs` and `server/tests/fuzz_regressions.rs` compile the same
//! files (with `#[path]`) and replay `fuzz/corpus/` and `fuzz/regressions/` through them, so a
//! crash found once stays fixed in `cargo test`.

pub mod commands;
pub mod inline;
pub mod input;
pub mod reader;
pub mod replay;
pub mod reply;
pub mod resp3;
pub mod seeds;
