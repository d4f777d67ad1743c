//! The toolbox as a user's tests would use it: keys of every algorithm, the token builder against a real
//! `Validator`, the mock JWKS server behind a `RemoteKeySet`, and `send` through a `JwtAuthLayer`.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use jwtgate_core::{Algorithm, ErrorKind, Validator};
use jwtgate_jwks::RemoteKeySet;
use jwtgate_test::{JwksServer, TestKey, body_json, send};
use jwtgate_tower::JwtAuthLayer;
use serde_json::{Value, json};

const ISSUER: &str = "https://issuer.test";

fn validator(key: &TestKey) -> Validator {
    Validator::builder(key.key_set()).issuer(ISSUER).audience("api").build()
}

fn refusal(validator: &Validator, token: &str) -> ErrorKind {
    validator.validate::<Value>(token).unwrap_err().kind()
}

#[test]
fn every_algorithm_signs_tokens_its_own_verification_key_accepts() {
    for alg in [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ] {
        let key = TestKey::generate(alg).with_kid("k");
        let token = key.token().issuer(ISSUER).audience("api").subject("alice").build();
        let validated = validator(&key).validate::<Value>(&token).unwrap();
        assert_eq!((validated.algorithm(), validated.kid()), (Some(alg), Some("k")), "{alg}");
        assert_eq!(validated.registered().subject(), Some("alice"));
    }
}

#[test]
fn the_builder_makes_each_kind_of_bad_token_on_purpose() {
    let key = TestKey::generate(Algorithm::ES256).with_kid("k");
    let validator = validator(&key);
    let good = || key.token().issuer(ISSUER).audience("api");
    assert_eq!(refusal(&validator, &good().wrong_signature().build()), ErrorKind::InvalidSignature);
    assert_eq!(refusal(&validator, &good().expired_since(Duration::from_secs(3600)).build()), ErrorKind::Expired);
    assert_eq!(refusal(&validator, &good().not_before_in(Duration::from_secs(3600)).build()), ErrorKind::NotYetValid);
    assert_eq!(refusal(&validator, &good().without("exp").build()), ErrorKind::MissingClaim { claim: "exp" });
    assert_eq!(refusal(&validator, &good().kid("other").build()), ErrorKind::UnknownKey);
    assert_eq!(refusal(&validator, &good().audience("elsewhere").build()), ErrorKind::InvalidAudience);
    assert_eq!(refusal(&validator, &good().header("crit", json!(["exp"])).build()), ErrorKind::UnsupportedCritical);
    assert!(validator.validate::<Value>(&good().expires_in(Duration::from_secs(60)).build()).is_ok());
}

#[test]
fn roles_scopes_and_claims_reach_the_principal() {
    let key = TestKey::generate(Algorithm::HS256);
    let token = key
        .token()
        .issuer(ISSUER)
        .audience("api")
        .roles(["admin", "auditor"])
        .scopes(["orders:read", "orders:write"])
        .claim("tenant", "acme")
        .token_id("t-1")
        .build();
    let validated = validator(&key).validate::<Value>(&token).unwrap();
    let principal = validated.principal();
    assert_eq!(principal.roles(), ["admin", "auditor"]);
    assert_eq!(principal.scopes(), ["orders:read", "orders:write"]);
    assert_eq!(principal.claim::<String>("tenant").as_deref(), Some("acme"));
    assert_eq!(validated.registered().token_id(), Some("t-1"));
}

#[tokio::test]
async fn the_mock_server_serves_keys_and_discovery_to_a_remote_key_set() {
    let key = TestKey::generate(Algorithm::RS256).with_kid("k1");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    let token = key.token().issuer(&server.issuer()).audience("api").build();

    let by_url = RemoteKeySet::jwks(&server.jwks_url()).build_eager().await.unwrap();
    let validator = Validator::builder(by_url).issuer(server.issuer()).audience("api").build();
    assert!(validator.validate::<Value>(&token).is_ok());

    let discovered = RemoteKeySet::discover(&server.issuer()).build_eager().await.unwrap();
    let validator = Validator::builder(discovered).issuer(server.issuer()).audience("api").build();
    assert!(validator.validate::<Value>(&token).is_ok());
    assert_eq!((server.fetches(), server.discoveries()), (2, 1));
}

#[tokio::test]
async fn send_calls_a_router_with_the_token() {
    let key = TestKey::generate(Algorithm::EdDSA);
    let app = Router::new()
        .route("/", get(|| async { axum::Json(json!({ "ok": true })) }))
        .layer(JwtAuthLayer::<Value>::new(validator(&key)));
    let token = key.token().issuer(ISSUER).audience("api").build();
    let response = send(app.clone(), Request::get("/").body(Body::empty()).unwrap(), &token).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(response.into_body()).await, json!({ "ok": true }));

    let forged = key.token().issuer(ISSUER).audience("api").wrong_signature().build();
    let response = send(app, Request::get("/").body(Body::empty()).unwrap(), &forged).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        body_json(response.into_body()).await,
        json!({ "error": "invalid_token", "error_description": "the token's signature is invalid" })
    );
}

#[cfg(feature = "tonic")]
#[test]
fn a_tonic_request_carries_the_token_in_its_metadata() {
    let request = jwtgate_test::tonic_request((), "a.b.c");
    assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer a.b.c");
}
