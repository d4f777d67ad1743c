//! RFC 8725 cases the security audit (`docs/security.md`) found untested: headers that try to bring their own
//! key (`jwk`, `jku`, `x5u`, `x5c`) are never followed, a claims set that is not UTF-8 is malformed, and key
//! sizes and curve coordinates outside what jwtgate accepts are refused when the key is loaded.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use jwtgate::{Algorithm, ErrorKind, JwtAuthLayer, Key, Validator, keys::AlgorithmMapping};
use jwtgate_test::{JwksServer, TestKey, b64};
use jwtgate_tests::{AUDIENCE, ISSUER, get, serve};
use serde_json::{Value, json};

fn validator(key: &TestKey) -> Validator {
    Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build()
}

/// RFC 8725 §3.10: a token that names its own key is verified with the configured keys only.
#[tokio::test]
async fn headers_that_bring_their_own_key_are_never_followed() {
    let trusted = TestKey::generate(Algorithm::ES256).with_kid("trusted");
    let attacker = TestKey::generate(Algorithm::ES256).with_kid("trusted");
    // A server the attacker controls, which jwtgate must never ask.
    let evil = JwksServer::start(json!({ "keys": [attacker.jwk()] })).await;
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(JwtAuthLayer::<Value>::new(validator(&trusted)));
    let base = format!("http://{}/", serve(app).await);
    let http = reqwest::Client::new();
    let claims = || attacker.token().issuer(ISSUER).audience(AUDIENCE);
    for forged in [
        claims().header("jwk", attacker.jwk()).build(),
        claims().header("jku", evil.jwks_url()).build(),
        claims().header("x5u", evil.jwks_url()).build(),
        claims()
            .header("x5c", json!(["MIIBkTCB+wIJAKHBfpegPjMCMA0GCSqGSIb3DQEBCwUAMBQxEjAQBgNVBAMMCWxvY2FsaG9zdA=="]))
            .build(),
    ] {
        let answer = get(&http, &base, &[("authorization", &format!("Bearer {forged}"))]).await;
        answer.assert_invalid_token("the token's signature is invalid");
    }
    assert_eq!(evil.fetches(), 0, "jwtgate fetched a key a token pointed to");
    // The same headers on a token the trusted key signed change nothing: they are ignored, not obeyed.
    let honest = trusted.token().issuer(ISSUER).audience(AUDIENCE).header("jku", evil.jwks_url()).build();
    let answer = get(&http, &base, &[("authorization", &format!("Bearer {honest}"))]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(evil.fetches(), 0);
}

/// RFC 8725 §3.7: the claims set is UTF-8 JSON; other bytes are malformed, even with a good signature.
#[test]
fn one_key_is_enough_to_build_a_validator() {
    let key = TestKey::generate(Algorithm::ES256);
    let validator = Validator::builder(key.verification_key()).issuer(ISSUER).audience(AUDIENCE).build();
    let token = key.token().issuer(ISSUER).audience(AUDIENCE).subject("ada").build();
    assert_eq!(validator.validate::<Value>(&token).unwrap().registered().subject(), Some("ada"));
    let other = TestKey::generate(Algorithm::ES256).token().issuer(ISSUER).audience(AUDIENCE).build();
    assert_eq!(validator.validate::<Value>(&other).unwrap_err().kind(), ErrorKind::InvalidSignature);
}

#[test]
fn a_signed_claims_set_that_is_not_utf8_is_malformed() {
    let key = TestKey::generate(Algorithm::HS256);
    let input =
        format!("{}.{}", b64(key.header().to_string()), b64(b"{\"iss\":\"https://issuer.test\",\"x\":\"\xff\"}"));
    let token = format!("{input}.{}", b64(key.signature(input.as_bytes())));
    assert_eq!(validator(&key).validate::<Value>(&token).unwrap_err().kind(), ErrorKind::Malformed);
}

/// RFC 8725 §3.5: RSA keys of 2048 to 8192 bits only.
#[test]
fn rsa_keys_outside_2048_to_8192_bits_are_refused() {
    let modulus = |bytes: usize| {
        let mut n = vec![0x55; bytes];
        n[0] = 0xC1;
        json!({ "kty": "RSA", "alg": "RS256", "n": b64(n), "e": "AQAB" }).to_string()
    };
    for (bytes, bits) in [(128, 1024), (255, 2040), (1025, 8200)] {
        let err = Key::from_jwk(&modulus(bytes), &AlgorithmMapping::new()).unwrap_err();
        assert_eq!(err.to_string(), format!("RSA key has {bits} bits; 2048 to 8192 are required"));
    }
}

/// RFC 8725 §3.4: an EC public key's coordinates have the curve's length.
#[test]
fn ec_coordinates_of_the_wrong_length_are_refused() {
    let key = TestKey::generate(Algorithm::ES256);
    let mut jwk = key.jwk();
    let x = jwk["x"].as_str().unwrap().to_owned();
    // Three more bytes: 35, still valid base64url.
    jwk["x"] = json!(format!("{x}AAAA"));
    let err = Key::from_jwk(&jwk.to_string(), &AlgorithmMapping::new()).unwrap_err();
    assert_eq!(err.to_string(), "EC coordinates for P-256 must be 32 bytes");
    // The same key with a P-384 algorithm is refused for its curve.
    let mut jwk = key.jwk();
    jwk["alg"] = json!("ES384");
    let err = Key::from_jwk(&jwk.to_string(), &AlgorithmMapping::new()).unwrap_err();
    assert_eq!(err.to_string(), r#"ES384 needs curve P-384, not "P-256""#);
}
