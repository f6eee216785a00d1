//! `cargo +nightly fuzz run reader_resp3`: see `brooklet_fuzz::resp3::check_resp3` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brooklet_fuzz::resp3::check_resp3(data));
