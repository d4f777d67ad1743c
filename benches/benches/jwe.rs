//! What decrypting an encrypted token (a nested JWT) costs, beside the plain signed token, side by side in one
//! run. Every case validates the same ES256-signed claims with the same validator settings:
//!
//! - `jwe/validate/jws`: the signed token alone;
//! - `jwe/validate/RSA-OAEP-256+A256GCM`: inside a JWE for an RSA 2048 key;
//! - `jwe/validate/ECDH-ES+A256GCM`: inside a JWE for a P-256 key (one ECDH, the Concat KDF);
//! - `jwe/validate/A256KW+A256GCM`, `jwe/validate/dir+A256GCM`: shared secrets, for scale;
//! - `jwe/encrypt/...`: what `TokenIssuer::encrypt_for` adds per token, for the two public-key algorithms.
//!
//! 256 tokens of each kind are used in turn, as in the other benchmarks. Run with
//! `cargo bench -p jwtgate-benches --bench jwe`.

#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark code")]

use criterion::{Criterion, criterion_group, criterion_main};
use jwtgate::jwe::{ContentEncryption, DecryptionKeys, KeyManagement};
use jwtgate::{Algorithm, Validator};
use jwtgate_test::JweKey;
use jwtgate_tests::bench::{BenchClaims, bench_claims};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey};
use serde_json::json;

fn bench_jwe(c: &mut Criterion) {
    let signer = TestKey::generate(Algorithm::ES256);
    let cases = [
        ("RSA-OAEP-256+A256GCM", JweKey::generate(KeyManagement::RsaOaep256)),
        ("ECDH-ES+A256GCM", JweKey::generate(KeyManagement::EcdhEs)),
        ("A256KW+A256GCM", JweKey::generate(KeyManagement::A256Kw)),
        ("dir+A256GCM", JweKey::generate_dir(ContentEncryption::A256Gcm)),
    ];
    let keys = DecryptionKeys::new(cases.iter().map(|(_, key)| key.decryption_key())).unwrap();
    let validator =
        Validator::builder(signer.key_set()).issuer(ISSUER).audience(AUDIENCE).decryption_keys(keys).build();
    let jws: Vec<String> = (0..256)
        .map(|i| {
            let mut claims = bench_claims();
            claims["jti"] = json!(format!("bench-{i}"));
            signer.sign(&claims)
        })
        .collect();

    let mut group = c.benchmark_group("jwe/validate");
    let mut next = 0;
    group.bench_function("jws", |b| {
        b.iter(|| {
            next = (next + 1) % jws.len();
            validator.validate::<BenchClaims>(&jws[next]).unwrap()
        });
    });
    for (name, key) in &cases {
        let tokens: Vec<String> = jws.iter().map(|jws| key.encrypt(jws, ContentEncryption::A256Gcm)).collect();
        let mut next = 0;
        group.bench_function(*name, |b| {
            b.iter(|| {
                next = (next + 1) % tokens.len();
                validator.validate::<BenchClaims>(&tokens[next]).unwrap()
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("jwe/encrypt");
    for (name, key) in &cases[..2] {
        let recipient = key.decryption_key().encryption_key(ContentEncryption::A256Gcm).unwrap();
        group.bench_function(*name, |b| b.iter(|| recipient.encrypt(&jws[0]).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, bench_jwe);
criterion_main!(benches);
