//! Replays the committed fuzz inputs (`fuzz/regressions/<target>/`) through the fuzz targets' own harness,
//! so that every input the fuzzer ever found, and the seeds it starts from, stay covered by the normal test
//! run. The harness asserts its properties itself; a panic here is a regression.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

/// Runs `target` over every committed input for it, and returns how many there were.
fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions").join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    inputs.sort();
    for input in &inputs {
        let data = std::fs::read(input).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: the input {} fails again", input.display());
    }
    inputs.len()
}

#[test]
fn token_inputs_pass() {
    assert!(replay("token", harness::token) >= 5);
}

#[test]
fn mapping_preset_inputs_pass() {
    assert!(replay("mapping_presets", harness::mapping_presets) >= 2);
}

#[test]
fn token_source_inputs_pass() {
    assert!(replay("sources", harness::sources) >= 3);
}

#[test]
fn jwks_inputs_pass() {
    assert!(replay("jwks", harness::jwks) >= 3);
}
