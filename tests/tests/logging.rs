//! What jwtgate logs about refused requests: the failure kind and the `kid`, at debug level, and never the
//! token.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_tests::logs::capture;
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, claims};
use serde_json::{Value, json};
use tower::ServiceExt;

#[tokio::test]
async fn refusals_are_logged_with_kind_and_kid_but_never_the_token() {
    let (captured, _guard) = capture(tracing::Level::DEBUG);

    let key = TestKey::generate(Algorithm::HS256).with_kid("key-2026");
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let app = Router::new().route("/", get(|| async { "ok" })).layer(JwtAuthLayer::<Value>::new(validator));

    let mut expired = claims();
    expired["exp"] = json!(jwtgate_tests::now() - 3600);
    let impostor = TestKey::generate(Algorithm::HS256).with_kid("key-2026");
    let tokens = [key.sign(&expired), impostor.sign(&claims()), "garbage.token.value".to_owned()];
    for token in &tokens {
        let request = http::Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty());
        let response = app.clone().oneshot(request.unwrap()).await.unwrap();
        assert_eq!(response.status(), 401);
    }

    let logs = captured.text();
    assert!(logs.contains("kind=Expired") && logs.contains("kind=InvalidSignature"), "{logs}");
    assert!(logs.contains("kind=Malformed"), "{logs}");
    assert!(logs.contains(r#"kid=Some("key-2026")"#), "{logs}");
    for token in &tokens {
        for part in token.split('.') {
            assert!(!logs.contains(part), "a token part leaked into the logs: {part}");
        }
    }
}

/// A store that never answers.
struct Down;

impl jwtgate::Denylist for Down {
    fn check(&self, _claims: &jwtgate::RegisteredClaims) -> jwtgate::Lookup {
        jwtgate::Lookup::Ready(Err(jwtgate::DenylistError::new("connection refused")))
    }

    fn revoke(&self, _jti: &str, _until: i64) -> jwtgate::PendingRevocation {
        Box::pin(async { Err(jwtgate::DenylistError::new("connection refused")) })
    }

    fn revoke_subject(&self, _subject: &str, _issued_before: i64, _until: i64) -> jwtgate::PendingRevocation {
        Box::pin(async { Err(jwtgate::DenylistError::new("connection refused")) })
    }
}

#[tokio::test]
async fn fail_open_warns_on_every_request_it_lets_through() {
    let (captured, _guard) = capture(tracing::Level::WARN);

    let key = TestKey::generate(Algorithm::HS256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let layer = JwtAuthLayer::<Value>::new(validator).denylist(Down).denylist_fail_open();
    let app = Router::new().route("/", get(|| async { "ok" })).layer(layer);
    let token = key.sign(&claims());
    for _ in 0..3 {
        let request = http::Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty());
        assert_eq!(app.clone().oneshot(request.unwrap()).await.unwrap().status(), 200);
    }
    let logs = captured.text();
    assert_eq!(logs.matches("FAIL-OPEN").count(), 3, "{logs}");
    assert!(!logs.contains(&token), "the token leaked into the logs");
}
