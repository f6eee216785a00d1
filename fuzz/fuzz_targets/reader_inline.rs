//! `cargo +nightly fuzz run reader_inline`: see `brooklet_fuzz::inline::check_inline` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brooklet_fuzz::inline::check_inline(data));
