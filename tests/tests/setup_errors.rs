//! Every setup error is one `ConfigError`, whose kind says what could not be set up and whose message never
//! holds key material.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use jwtgate::jwks::{JwksPublisher, RemoteKeySet};
use jwtgate::keys::SigningKey;
use jwtgate::session::TokenIssuer;
use jwtgate::validation::ConfigErrorKind;
use jwtgate::{Algorithm, ConfigError, Key, KeySet, Secret, Validator};

fn kind_and_message<T>(result: Result<T, ConfigError>) -> (ConfigErrorKind, String) {
    let error = result.err().expect("a setup error");
    (error.kind(), error.to_string())
}

#[test]
fn each_setup_error_names_its_kind() {
    let short = Secret::new(b"a secret of 31 bytes, too short".to_vec());
    let (kind, message) = kind_and_message(Key::hmac(Algorithm::HS256, &short));
    assert_eq!((kind, message.as_str()), (ConfigErrorKind::Key, "HMAC secret is 31 bytes; HS256 requires at least 32"));
    assert!(!message.contains("too short"), "the secret is never quoted");
    assert_eq!(kind_and_message(KeySet::new([])).0, ConfigErrorKind::Key);

    let key = || Key::hmac(Algorithm::HS256, &Secret::new(vec![7; 32])).unwrap();
    let tenant = |issuer: &str| Validator::builder(key()).issuer(issuer).audience("api").build();
    let (kind, message) = kind_and_message(Validator::by_issuer([tenant("https://a"), tenant("https://a")]));
    assert_eq!(
        (kind, message.as_str()),
        (ConfigErrorKind::Validator, r#"two validators accept the issuer "https://a""#)
    );

    let (kind, message) = kind_and_message(RemoteKeySet::jwks("http://keys.example/jwks.json").build());
    assert_eq!(kind, ConfigErrorKind::RemoteKeys, "{message}");

    assert_eq!(kind_and_message(JwksPublisher::with_keys([])).0, ConfigErrorKind::Publish);

    let signing = SigningKey::generate(Algorithm::ES256, "k").unwrap();
    let (kind, message) = kind_and_message(TokenIssuer::builder("https://auth.example", signing).build());
    assert_eq!((kind, message.as_str()), (ConfigErrorKind::Issuer, "an issuer needs at least one audience"));
}
