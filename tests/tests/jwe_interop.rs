//! Encrypted tokens between jwtgate and two JOSE implementations nobody here wrote, `jose` (npm) and jwcrypto
//! (Python), for every key management algorithm (every curve of `ECDH-ES`) with every content encryption:
//! tokens they encrypt decrypt and validate in jwtgate, and tokens jwtgate encrypts decrypt in both.

#![allow(clippy::unwrap_used, reason = "test code")]

use jwtgate::jwe::{ContentEncryption, DecryptionKey, DecryptionKeys, EncryptionKey, KeyManagement};
use jwtgate::{Algorithm, Validator};
use jwtgate_tests::interop::JwePeer;
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, claims};
use serde_json::{Value, json};

/// Every pair: each key management algorithm (the `ECDH-ES` ones on each curve) with each content encryption.
fn pairs() -> Vec<(KeyManagement, Option<&'static str>, ContentEncryption)> {
    let mut pairs = Vec::new();
    for alg in KeyManagement::ALL {
        let curves: &[Option<&str>] = match alg {
            KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw => {
                &[Some("P-256"), Some("P-384"), Some("X25519")]
            }
            _ => &[None],
        };
        for curve in curves {
            for enc in ContentEncryption::ALL {
                pairs.push((alg, *curve, enc));
            }
        }
    }
    pairs
}

fn kid(alg: KeyManagement, curve: Option<&str>, enc: ContentEncryption) -> String {
    format!("{alg}-{}-{enc}", curve.unwrap_or("-"))
}

/// The peer's keys, one per pair: `(private, public)` JWKs.
async fn keys(peer: JwePeer) -> Vec<(Value, Value)> {
    let cases: Vec<Value> = pairs()
        .into_iter()
        .map(|(alg, curve, enc)| {
            json!({ "op": "generate", "alg": alg.name(), "enc": enc.name(), "crv": curve, "kid": kid(alg, curve, enc) })
        })
        .collect();
    peer.run(&cases)
        .await
        .into_iter()
        .zip(pairs())
        .map(|(result, pair)| {
            assert!(result.get("error").is_none(), "{peer:?} generate {pair:?}: {result}");
            (result["private"].clone(), result["public"].clone())
        })
        .collect()
}

/// A decryption key from a peer's private JWK: `RSA-OAEP` named in code, as jwtgate asks, and a `dir` key's
/// content encryption named in its JWK (jwtgate binds a `dir` key to one).
fn decryption_key(alg: KeyManagement, enc: ContentEncryption, private: &Value) -> DecryptionKey {
    let mut private = private.clone();
    if alg == KeyManagement::Dir {
        private["enc"] = enc.name().into();
    }
    match alg {
        KeyManagement::RsaOaep => DecryptionKey::from_jwk_for(alg, &private.to_string()).unwrap(),
        _ => DecryptionKey::from_jwk(&private.to_string()).unwrap(),
    }
}

fn encryption_key(alg: KeyManagement, public: &Value, enc: ContentEncryption) -> EncryptionKey {
    match alg {
        KeyManagement::RsaOaep => EncryptionKey::from_jwk_for(alg, &public.to_string(), enc).unwrap(),
        _ => EncryptionKey::from_jwk(&public.to_string(), enc).unwrap(),
    }
}

async fn both_ways(peer: JwePeer) {
    let signer = TestKey::generate(Algorithm::ES256);
    let jws = signer.sign(&claims());
    let keys = keys(peer).await;
    let decryption = DecryptionKeys::new(
        pairs().into_iter().zip(&keys).map(|((alg, _, enc), (private, _))| decryption_key(alg, enc, private)),
    )
    .unwrap();
    let validator = Validator::builder(signer.key_set())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .decryption_keys(decryption)
        .require_encryption(true)
        .build();

    // The peer encrypts jwtgate's signed token for each public key; jwtgate decrypts and validates it.
    let cases: Vec<Value> = pairs()
        .into_iter()
        .zip(&keys)
        .map(|((alg, _, enc), (_, public))| {
            json!({ "op": "encrypt", "jwk": public, "alg": alg.name(), "enc": enc.name(), "plaintext": jws })
        })
        .collect();
    let encrypted = peer.run(&cases).await;
    for ((alg, curve, enc), result) in pairs().into_iter().zip(&encrypted) {
        let token =
            result["token"].as_str().unwrap_or_else(|| panic!("{peer:?} encrypt {alg} {curve:?} {enc}: {result}"));
        let validated = validator.validate::<Value>(token);
        let validated = validated.unwrap_or_else(|error| panic!("{peer:?} {alg} {curve:?} {enc}: {error}"));
        assert_eq!(validated.claims()["sub"], "user-1");
    }

    // jwtgate encrypts for each public key; the peer decrypts with the private one.
    let cases: Vec<Value> = pairs()
        .into_iter()
        .zip(&keys)
        .map(|((alg, _, enc), (private, public))| {
            let token = encryption_key(alg, public, enc).encrypt(&jws).unwrap();
            json!({ "op": "decrypt", "jwk": private, "token": token })
        })
        .collect();
    let decrypted = peer.run(&cases).await;
    for ((alg, curve, enc), result) in pairs().into_iter().zip(&decrypted) {
        assert_eq!(
            result["plaintext"].as_str(),
            Some(jws.as_str()),
            "{peer:?} decrypt {alg} {curve:?} {enc}: {result}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jose_and_jwtgate_decrypt_each_others_tokens_for_every_algorithm_pair() {
    both_ways(JwePeer::Jose).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jwcrypto_and_jwtgate_decrypt_each_others_tokens_for_every_algorithm_pair() {
    both_ways(JwePeer::Jwcrypto).await;
}
