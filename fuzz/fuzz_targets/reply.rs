//! `cargo +nightly fuzz run reply`: see `brooklet_fuzz::reply::check_reply` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brooklet_fuzz::reply::check_reply(data));
