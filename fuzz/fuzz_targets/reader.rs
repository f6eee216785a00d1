//! `cargo +nightly fuzz run reader`: see `brooklet_fuzz::reader::check_requests` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brooklet_fuzz::reader::check_requests(data));
