//! The validated-token cache behind `JwtAuthLayer::cache`, over real HTTP: what a hit may skip, and what it
//! never skips (the exact token, expiry, revocation, key changes).

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use jwtgate::jwks::RemoteKeySet;
use jwtgate::service::Authenticated;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validated, Validator, keys::TrustedKeys, revocation::MemoryDenylist};
use jwtgate_test::JwksServer;
use jwtgate_tests::{AUDIENCE, Answer, ISSUER, TestKey, claims, now, serve};
use serde_json::{Value, json};

/// Each `Validated` the handler saw, in order, kept alive so that no two can share an address: the same one
/// twice means the second request was answered from the cache, with the very claims the first validation
/// produced.
type Seen = Arc<Mutex<Vec<Arc<Validated<Value>>>>>;

struct App {
    base: String,
    http: reqwest::Client,
    seen: Seen,
}

impl App {
    async fn new(layer: JwtAuthLayer<Value>) -> Self {
        let seen = Seen::default();
        let record = seen.clone();
        let handler = move |Extension(authenticated): Extension<Authenticated>| {
            let record = record.clone();
            async move {
                let validated = authenticated.validated::<Value>().expect("the layer's claims type");
                let body = axum::Json(json!({ "sub": validated.registered().subject() }));
                record.lock().unwrap().push(validated);
                body
            }
        };
        let addr = serve(Router::new().route("/me", get(handler)).layer(layer)).await;
        Self { base: format!("http://{addr}/me"), http: reqwest::Client::new(), seen }
    }

    async fn bearer(&self, token: &str) -> Answer {
        jwtgate_tests::get(&self.http, &self.base, &[("authorization", &format!("Bearer {token}"))]).await
    }

    /// Whether the last two admitted requests carried the same validated token.
    fn last_two_shared(&self) -> bool {
        let seen = self.seen.lock().unwrap();
        let [.., a, b] = seen.as_slice() else { panic!("fewer than two requests were admitted") };
        Arc::ptr_eq(a, b)
    }
}

fn validator(keys: impl Into<TrustedKeys>) -> Validator {
    Validator::builder(keys).issuer(ISSUER).audience(AUDIENCE).leeway(Duration::ZERO).build()
}

fn hs256() -> (TestKey, Validator) {
    let key = TestKey::generate(Algorithm::HS256);
    let validator = validator(KeySet::new([key.verification_key()]).unwrap());
    (key, validator)
}

#[tokio::test]
async fn a_token_seen_again_is_answered_from_the_cache() {
    let (key, validator) = hs256();
    let token = key.sign(&claims());

    let cached = App::new(JwtAuthLayer::new(validator.clone()).cache(100)).await;
    for _ in 0..3 {
        assert_eq!(cached.bearer(&token).await.body, json!({ "sub": "user-1" }));
    }
    assert!(cached.last_two_shared(), "the second request was validated again");

    let uncached = App::new(JwtAuthLayer::new(validator)).await;
    uncached.bearer(&token).await;
    uncached.bearer(&token).await;
    assert!(!uncached.last_two_shared(), "without a cache, each request is validated");
}

#[tokio::test]
async fn a_forged_token_never_hits_the_entry_of_the_token_it_copies() {
    let (key, validator) = hs256();
    let token = key.sign(&claims());
    let app = App::new(JwtAuthLayer::new(validator).cache(100)).await;
    assert_eq!(app.bearer(&token).await.status, 200);

    // The same header and claims under another signature, a truncated one, and with a byte appended.
    let (input, signature) = token.rsplit_once('.').unwrap();
    let other = TestKey::generate(Algorithm::HS256).sign(&claims());
    let (_, other_signature) = other.rsplit_once('.').unwrap();
    app.bearer(&format!("{input}.{other_signature}")).await.assert_invalid_token("the token's signature is invalid");
    app.bearer(&format!("{input}.{}", &signature[..signature.len() - 2]))
        .await
        .assert_invalid_token("the token's signature is invalid");
    app.bearer(&format!("{token}A")).await.assert_invalid_token("the token's signature is invalid");
    // The genuine token still hits.
    assert_eq!(app.bearer(&token).await.status, 200);
    assert!(app.last_two_shared());
}

#[tokio::test]
async fn revocation_takes_effect_on_a_cached_token_at_once() {
    let (key, validator) = hs256();
    let denylist = MemoryDenylist::new();
    let app = App::new(JwtAuthLayer::new(validator).denylist(denylist.clone()).cache(100)).await;
    let token = key.sign(&claims());
    assert_eq!(app.bearer(&token).await.status, 200);
    assert_eq!(app.bearer(&token).await.status, 200);
    assert!(app.last_two_shared(), "the token was not cached");

    denylist.revoke_now("jti-1", now() + 300).unwrap();
    app.bearer(&token).await.assert_invalid_token("the token has been revoked");
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let (key, validator) = hs256();
    let app = App::new(JwtAuthLayer::new(validator).cache(100)).await;
    // Expires at the start of the second after next: the cache serves it until then, and never after.
    let exp = now() + 2;
    let token = key.sign(&json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "exp": exp }));
    assert_eq!(app.bearer(&token).await.status, 200);
    assert_eq!(app.bearer(&token).await.status, 200);
    assert!(app.last_two_shared(), "the token was not cached");

    while now() < exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.bearer(&token).await.assert_invalid_token("the token has expired");
}

/// A cached app trusting a provider's JWK Set, which publishes the key `old` and later `new`, and a token of
/// `old` already cached.
async fn remote_app(alg: Algorithm) -> (TestKey, JwksServer, App, String) {
    let old = TestKey::generate(alg).with_kid("old");
    let server = JwksServer::start(json!({ "keys": [old.jwk()] })).await;
    let keys = RemoteKeySet::jwks(&server.jwks_url()).build_eager().await.unwrap();
    let app = App::new(JwtAuthLayer::new(validator(keys)).cache(100)).await;
    let token = old.sign(&claims());
    assert_eq!(app.bearer(&token).await.status, 200);
    assert_eq!(app.bearer(&token).await.status, 200);
    assert!(app.last_two_shared(), "the token was not cached");
    (old, server, app, token)
}

#[tokio::test]
async fn a_token_whose_key_was_withdrawn_is_refused_even_if_cached() {
    let (_, server, app, token) = remote_app(Algorithm::RS256).await;
    let new = TestKey::generate(Algorithm::RS256).with_kid("new");

    // The provider withdraws the old key. A token naming the new one makes the layer fetch the new set.
    server.set_keys(json!({ "keys": [new.jwk()] }));
    assert_eq!(app.bearer(&new.sign(&claims())).await.status, 200);
    app.bearer(&token).await.assert_invalid_token("the token's signing key is unknown");
}

#[tokio::test]
async fn a_rotation_that_keeps_the_old_key_validates_cached_tokens_again() {
    let (old, server, app, token) = remote_app(Algorithm::ES256).await;
    let new = TestKey::generate(Algorithm::ES256).with_kid("new");

    server.set_keys(json!({ "keys": [old.jwk(), new.jwk()] }));
    assert_eq!(app.bearer(&new.sign(&claims())).await.status, 200);
    assert_eq!(app.bearer(&token).await.status, 200);
    assert_eq!(app.bearer(&token).await.status, 200);
    let seen = app.seen.lock().unwrap();
    let [.., before, _new_token, after, again] = seen.as_slice() else { panic!("too few requests") };
    assert!(!Arc::ptr_eq(before, after), "the entry of the old key set was served after the keys changed");
    assert!(Arc::ptr_eq(after, again), "the token was not cached again under the new key set");
}

#[tokio::test]
async fn the_cache_holds_no_more_tokens_than_its_capacity() {
    let (key, validator) = hs256();
    let layer = JwtAuthLayer::new(validator).cache(16);
    let app = App::new(layer.clone()).await;
    for i in 0..100 {
        let mut claims = claims();
        claims["jti"] = json!(format!("jti-{i}"));
        assert_eq!(app.bearer(&key.sign(&claims)).await.status, 200);
        let cache = layer.validated_cache().unwrap();
        assert!(cache.len() <= 16, "{} tokens cached with a capacity of 16", cache.len());
    }
    assert!(!layer.validated_cache().unwrap().is_empty());
}

#[tokio::test]
async fn refused_tokens_are_never_cached() {
    let (key, validator) = hs256();
    let layer = JwtAuthLayer::new(validator).require_jti().cache(16);
    let app = App::new(layer.clone()).await;
    let mut no_jti = claims();
    no_jti.as_object_mut().unwrap().remove("jti");
    let token = key.sign(&no_jti);
    for _ in 0..2 {
        app.bearer(&token).await.assert_invalid_token("the token has no jti claim");
    }
    app.bearer(&TestKey::generate(Algorithm::HS256).sign(&claims()))
        .await
        .assert_invalid_token("the token's signature is invalid");
    assert!(layer.validated_cache().unwrap().is_empty());
}

#[tokio::test]
async fn a_clone_of_the_layer_with_stricter_rules_applies_them_to_a_hit() {
    let (key, validator) = hs256();
    let open = JwtAuthLayer::new(validator).cache(100);
    let strict = open.clone().require_jti();
    let (open, strict) = (App::new(open).await, App::new(strict).await);
    let mut no_jti = claims();
    no_jti.as_object_mut().unwrap().remove("jti");
    let token = key.sign(&no_jti);
    assert_eq!(open.bearer(&token).await.status, 200);
    assert_eq!(open.bearer(&token).await.status, 200);
    assert!(open.last_two_shared(), "the token was not cached");
    // The clone shares the cache, and the token is in it; its own rule still refuses the token.
    strict.bearer(&token).await.assert_invalid_token("the token has no jti claim");
}

#[tokio::test]
async fn a_refresh_that_brings_the_same_document_keeps_the_cache() {
    // The server sends no `ETag` or `Last-Modified`, so each refresh gets the whole document again.
    let (_, server, app, token) = remote_app(Algorithm::EdDSA).await;
    let fetches = server.fetches();
    let ghost = TestKey::generate(Algorithm::EdDSA).with_kid("ghost");
    app.bearer(&ghost.sign(&claims())).await.assert_invalid_token("the token's signing key is unknown");
    assert_eq!(server.fetches(), fetches + 1, "the unknown kid did not trigger a refresh");
    assert_eq!(app.bearer(&token).await.status, 200);
    assert!(app.last_two_shared(), "an unchanged document emptied the cache");
}
