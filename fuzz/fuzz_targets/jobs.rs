//! Fuzz target `jobs`: see `harness::jobs` for what it runs and checks.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::jobs(data));
