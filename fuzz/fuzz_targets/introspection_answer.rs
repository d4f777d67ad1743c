//! Fuzz target: see `harness::introspection_answer`.

#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code, reason = "each target calls one function of the shared harness")]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::introspection_answer(data));
