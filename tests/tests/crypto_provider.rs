//! This test binary is built with jsonwebtoken's `aws_lc_rs` and `rust_crypto` features both on, as happens
//! when some other crate of a user's build asks for `rust_crypto`. Plain jsonwebtoken then panics ("could not
//! determine the process-level CryptoProvider"); jwtgate must keep working.

#![allow(clippy::unwrap_used, reason = "test code")]

use jwtgate::{Algorithm, KeySet, Validator, keys::AlgorithmMapping};
use jwtgate_tests::{TestKey, claims};
use serde_json::{Value, json};

#[test]
fn this_build_reproduces_the_crypto_provider_panic() {
    let attempt = std::panic::catch_unwind(|| {
        let key = jsonwebtoken::EncodingKey::from_secret(&[7; 32]);
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &json!({ "exp": 1 }), &key)
    });
    assert!(attempt.is_err(), "jsonwebtoken did not panic: the test no longer reproduces the hazard");
}

#[test]
fn jwtgate_validates_every_algorithm_in_this_build() {
    let keys: Vec<TestKey> = Algorithm::ALL.iter().map(|alg| TestKey::generate(*alg).with_kid(alg.as_str())).collect();
    let jwks = json!({ "keys": keys.iter().map(TestKey::jwk).collect::<Vec<_>>() }).to_string();
    let from_jwks = Validator::builder(KeySet::from_jwks(&jwks, &AlgorithmMapping::new()).unwrap())
        .issuer(jwtgate_tests::ISSUER)
        .audience(jwtgate_tests::AUDIENCE)
        .build();
    let from_keys = Validator::builder(KeySet::new(keys.iter().map(TestKey::verification_key)).unwrap())
        .issuer(jwtgate_tests::ISSUER)
        .audience(jwtgate_tests::AUDIENCE)
        .build();
    for key in &keys {
        let token = key.sign(&claims());
        for validator in [&from_jwks, &from_keys] {
            let valid = validator.validate::<Value>(&token).unwrap();
            assert_eq!(valid.algorithm(), Some(key.alg()));
        }
    }
}
