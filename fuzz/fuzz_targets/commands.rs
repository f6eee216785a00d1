//! `cargo +nightly fuzz run commands`: see `brooklet_fuzz::commands::check_commands` for what is checked.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brooklet_fuzz::commands::check_commands(data));
