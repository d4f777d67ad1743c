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

#[test]
fn introspection_answer_inputs_pass() {
    assert!(replay("introspection_answer", harness::introspection_answer) >= 5);
}

#[test]
fn jwe_inputs_pass() {
    assert!(replay("jwe", harness::jwe) >= 10);
}

/// The seeds `valid` and `valid-with-kid` are accepted: the harness's encryption reaches the token inside.
#[test]
fn the_jwe_seeds_that_should_pass_do() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/jwe");
    for seed in ["valid", "valid-with-kid"] {
        let data = std::fs::read(dir.join(seed)).unwrap();
        assert!(harness::jwe_accepts(&data), "{seed}");
    }
    for seed in
        ["zip", "crit", "rsa1_5", "wrong-key-alg", "no-cty", "unsigned-inside", "jwe-inside", "duplicate-member"]
    {
        let data = std::fs::read(dir.join(seed)).unwrap();
        assert!(!harness::jwe_accepts(&data), "{seed}");
    }
}

#[test]
fn dpop_proof_inputs_pass() {
    assert!(replay("dpop_proof", harness::dpop_proof) >= 3);
}

/// The seed `valid` was made by `jose` (npm): a proof from a library no one here wrote passes every check.
#[test]
fn a_dpop_proof_made_by_jose_passes_the_checks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/dpop_proof");
    let requirements = harness::proof_requirements();
    for seed in ["valid", "valid-with-nonce", "other-url"] {
        let proof = std::fs::read_to_string(dir.join(seed)).unwrap();
        let checked =
            jwtgate::dpop::check_proof(proof.trim(), &requirements).unwrap_or_else(|err| panic!("{seed}: {err}"));
        assert_eq!(checked.jti, "seed-1");
    }
}
