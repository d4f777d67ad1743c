//! Fuzz target: see `harness::jwe`.

#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code, reason = "each target calls one function of the shared harness")]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::jwe(data));
