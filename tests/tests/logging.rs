//! What jwtgate logs: refusals with the failure kind and the `kid`, and an `authenticate` span per request
//! with its outcome, at debug level. Never the token, and the subject only as a keyed hash when asked.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_tests::logs::capture;
use jwtgate_tests::{AUDIENCE, DownDenylist, ISSUER, TestKey, claims};
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

#[tokio::test]
async fn fail_open_warns_on_every_request_it_lets_through() {
    let (captured, _guard) = capture(tracing::Level::WARN);

    let key = TestKey::generate(Algorithm::HS256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let layer = JwtAuthLayer::<Value>::new(validator).denylist(DownDenylist).denylist_fail_open();
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

/// The `authenticate` span's lines, one per closed span.
fn span_lines(logs: &str) -> Vec<&str> {
    logs.lines().filter(|line| line.contains("authenticate{") && line.contains("close")).collect()
}

#[tokio::test]
async fn each_request_gets_an_authenticate_span_with_its_outcome_but_never_the_token_or_subject() {
    let (captured, _guard) = jwtgate_tests::logs::capture_spans(tracing::Level::DEBUG);
    let key = TestKey::generate(Algorithm::HS256).with_kid("key-2026");
    let denylist = jwtgate::revocation::MemoryDenylist::new();
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let layer = JwtAuthLayer::<Value>::new(validator).optional().denylist(denylist.clone());
    let app = Router::new().route("/", get(|| async { "ok" })).layer(layer);

    let mut revoked = claims();
    revoked["jti"] = json!("revoked-1");
    denylist.revoke_now("revoked-1", jwtgate_tests::now() + 600).unwrap();
    let mut expired = claims();
    expired["exp"] = json!(jwtgate_tests::now() - 3600);
    let (good, revoked, expired) = (key.sign(&claims()), key.sign(&revoked), key.sign(&expired));
    for (token, status) in [(Some(&good), 200), (Some(&revoked), 401), (Some(&expired), 401), (None, 200)] {
        let mut request = http::Request::get("/");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), status);
    }

    let logs = captured.text();
    let spans = span_lines(&logs);
    assert_eq!(spans.len(), 4, "{logs}");
    let has = |line: &str, fields: &[&str]| fields.iter().all(|field| line.contains(field));
    let valid = [r#"kid="key-2026""#, r#"iss="https://issuer.test""#];
    assert!(has(spans[0], &[&[r#"outcome="authenticated""#][..], &valid].concat()), "{}", spans[0]);
    assert!(has(spans[1], &[&[r#"outcome="refused""#, r#"reason="revoked""#][..], &valid].concat()), "{}", spans[1]);
    assert!(has(spans[2], &[r#"outcome="refused""#, r#"reason="expired""#]), "{}", spans[2]);
    assert!(has(spans[3], &[r#"outcome="anonymous""#]), "{}", spans[3]);
    // The subject is omitted by default, and no part of any token is ever recorded.
    assert!(!logs.contains("user-1") && !logs.contains("sub="), "{logs}");
    for part in [&good, &revoked, &expired].iter().flat_map(|token| token.split('.')) {
        assert!(!logs.contains(part), "a token part leaked into the logs: {part}");
    }
}

#[tokio::test]
async fn the_subject_can_be_recorded_as_a_keyed_hash() {
    let (captured, _guard) = jwtgate_tests::logs::capture_spans(tracing::Level::DEBUG);
    let key = TestKey::generate(Algorithm::HS256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let log_key = jwtgate::Secret::new(vec![9; 32]);
    let layer = JwtAuthLayer::<Value>::new(validator)
        .subject_in_logs(jwtgate::service::SubjectInLogs::hashed(&log_key).unwrap());
    let app = Router::new().route("/", get(|| async { "ok" })).layer(layer);
    let request = http::Request::get("/").header("authorization", format!("Bearer {}", key.sign(&claims())));
    assert_eq!(app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap().status(), 200);

    // HMAC-SHA256 of the subject under the log key, its first 8 bytes in hex.
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[9; 32]), b"user-1");
    let expected: String = tag.as_ref()[..8].iter().map(|byte| format!("{byte:02x}")).collect();
    let logs = captured.text();
    let spans = span_lines(&logs);
    assert_eq!(spans.len(), 1, "{logs}");
    assert!(spans[0].contains(&format!(r#"sub="{expected}""#)), "{}", spans[0]);
    assert!(!logs.contains("user-1"), "{logs}");
}

#[tokio::test]
async fn a_forbidden_request_is_logged_without_its_subject() {
    let (captured, _guard) = capture(tracing::Level::DEBUG);
    let key = TestKey::generate(Algorithm::HS256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let guard = jwtgate::RequireLayer::new(jwtgate::Policy::role("admin"));
    let app = Router::new()
        .route("/", get(|| async { "ok" }).route_layer(guard))
        .layer(JwtAuthLayer::<Value>::new(validator));
    let token = key.token().issuer(ISSUER).audience(AUDIENCE).subject("alice@example.com").build();
    let request = http::Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty());
    assert_eq!(app.oneshot(request.unwrap()).await.unwrap().status(), 403);
    let logs = captured.text();
    assert!(logs.contains("jwtgate: request forbidden"), "{logs}");
    assert!(!logs.contains("alice"), "the subject leaked into the logs: {logs}");
}
