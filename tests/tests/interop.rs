//! Interop with implementations nobody here wrote: tokens minted by PyJWT and by `jose` (npm) with every
//! supported algorithm, and the npm `oidc-provider` as a real OpenID provider on loopback, followed through
//! discovery, key rotation, an outage and a restart.
//!
//! `tests/interop/setup.sh` installs the packages (`scripts/test.sh` runs it first).

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use jwtgate::jwks::RemoteKeySet;
use jwtgate::{Claims, JwtAuthLayer, KeySet, Validator, keys::AlgorithmMapping};
use jwtgate_tests::interop::{Minter, OidcProvider};
use jwtgate_tests::{AUDIENCE, Answer, ISSUER, b64, claims, now, serve};
use serde_json::{Value, json};

const ALGORITHMS: [&str; 12] =
    ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// The resource (and so the `aud`) the provider's access tokens are for.
const RESOURCE: &str = "https://api.example";

/// An app behind `JwtAuthLayer` on loopback; `/me` answers the token's `sub`.
struct App {
    base: String,
    http: reqwest::Client,
}

impl App {
    async fn new(validator: Validator) -> Self {
        let router = Router::new()
            .route(
                "/me",
                get(
                    |claims: Claims<Value>| async move { claims.registered().subject().unwrap_or_default().to_owned() },
                ),
            )
            .layer(JwtAuthLayer::<Value>::new(validator));
        Self { base: format!("http://{}", serve(router).await), http: reqwest::Client::new() }
    }

    async fn bearer(&self, token: &str) -> Answer {
        let auth = format!("Bearer {token}");
        jwtgate_tests::get(&self.http, &format!("{}/me", self.base), &[("authorization", &auth)]).await
    }
}

#[track_caller]
fn assert_accepted(answer: &Answer, sub: &str, what: &str) {
    assert_eq!(answer.status, 200, "{what}: body {}", answer.body);
    assert_eq!(answer.body, Value::String(sub.to_owned()), "{what}");
}

#[track_caller]
fn assert_invalid_token(answer: &Answer, description: &str, what: &str) {
    assert_eq!(answer.status, 401, "{what}: body {}", answer.body);
    answer.assert_invalid_token(description);
}

fn case(alg: &str, claims: Value) -> Value {
    let mut case = json!({ "alg": alg });
    case["claims"] = claims;
    case
}

/// Every algorithm, valid claims: each token must verify against the library's published keys.
async fn every_algorithm_verifies(minter: Minter) {
    let cases = ALGORITHMS.iter().map(|alg| case(alg, claims())).collect::<Vec<_>>();
    let minted = minter.mint(&cases).await;
    assert_eq!(minted.jwks["keys"].as_array().unwrap().len(), ALGORITHMS.len());
    let keys = KeySet::from_jwks(&minted.jwks.to_string(), &AlgorithmMapping::new()).unwrap();
    let app = App::new(Validator::builder(keys).issuer(ISSUER).audience(AUDIENCE).build()).await;
    for (alg, token) in ALGORITHMS.iter().zip(&minted.tokens) {
        assert_accepted(&app.bearer(token).await, "user-1", &format!("{minter:?} {alg}"));
    }
}

#[tokio::test]
async fn pyjwt_tokens_of_every_algorithm_verify() {
    every_algorithm_verifies(Minter::PyJwt).await;
}

#[tokio::test]
async fn jose_tokens_of_every_algorithm_verify() {
    every_algorithm_verifies(Minter::Jose).await;
}

/// Tokens the library signs without complaint, which jwtgate must refuse: one case per rule, with the
/// answer each must get.
async fn refusals_are_refused(minter: Minter) {
    let with = |changes: Value| {
        let mut claims = claims();
        claims.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
        claims
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("expired", case("RS256", with(json!({ "exp": now() - 3600 }))), "the token has expired"),
        ("not yet valid", case("ES256", with(json!({ "nbf": now() + 3600 }))), "the token is not valid yet"),
        (
            "issued in the future",
            case("EdDSA", with(json!({ "iat": now() + 3600 }))),
            "the token was issued in the future",
        ),
        (
            "no exp",
            case("PS256", {
                let mut claims = claims();
                claims.as_object_mut().unwrap().remove("exp");
                claims
            }),
            "the token has no exp claim",
        ),
        (
            "exp as a string",
            case("HS256", with(json!({ "exp": (now() + 300).to_string() }))),
            "the token's exp claim is not a number",
        ),
        (
            "another audience",
            case("ES384", with(json!({ "aud": "another-api" }))),
            "the token's audience is not accepted",
        ),
        (
            "another issuer",
            case("RS384", with(json!({ "iss": "https://evil.test" }))),
            "the token's issuer is not accepted",
        ),
        (
            "signed by another key under a trusted kid",
            json!({ "alg": "RS256", "key": "other", "kid": "RS256-main", "claims": claims() }),
            "the token's signature is invalid",
        ),
        (
            "another HMAC secret under a trusted kid",
            json!({ "alg": "HS512", "key": "other", "kid": "HS512-main", "claims": claims() }),
            "the token's signature is invalid",
        ),
        (
            "an unknown kid",
            json!({ "alg": "ES256", "key": "other", "claims": claims() }),
            "the token's signing key is unknown",
        ),
        (
            "a kid of another algorithm",
            json!({ "alg": "ES384", "kid": "ES256-main", "claims": claims() }),
            "the token's algorithm does not match its key",
        ),
        ("alg none", case("none", claims()), "the token's algorithm is not supported"),
        (
            "a crit header",
            json!({ "alg": "ES256", "header": { "crit": ["b64"], "b64": true }, "claims": claims() }),
            "the token has a critical header that is not supported",
        ),
        ("larger than 8 KiB", case("RS256", with(json!({ "pad": "x".repeat(9000) }))), "the token is too large"),
    ];
    let minted = minter.mint(&cases.iter().map(|(_, case, _)| case.clone()).collect::<Vec<_>>()).await;
    let keys = KeySet::from_jwks(&minted.jwks.to_string(), &AlgorithmMapping::new()).unwrap();
    let app = App::new(Validator::builder(keys).issuer(ISSUER).audience(AUDIENCE).build()).await;
    for ((what, _, description), token) in cases.iter().zip(&minted.tokens) {
        assert_invalid_token(&app.bearer(token).await, description, &format!("{minter:?}: {what}"));
    }
}

#[tokio::test]
async fn pyjwt_tokens_that_break_a_rule_are_refused() {
    refusals_are_refused(Minter::PyJwt).await;
}

#[tokio::test]
async fn jose_tokens_that_break_a_rule_are_refused() {
    refusals_are_refused(Minter::Jose).await;
}

/// A state directory for one provider, removed when the test ends.
struct StateDir(PathBuf);

impl StateDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "jwtgate-oidc-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The app a user builds from the provider's issuer URL alone: discovery finds the JWKS.
async fn discovered(provider: &OidcProvider, audience: &str) -> (RemoteKeySet, App) {
    let keys = RemoteKeySet::discover(provider.issuer()).build_eager().await.unwrap();
    let validator = Validator::builder(keys.clone()).issuer(provider.issuer()).audience(audience).build();
    (keys, App::new(validator).await)
}

fn kid_of(token: &str) -> String {
    jwtgate::__private::unverified_kid(token).unwrap()
}

#[tokio::test]
async fn access_tokens_from_a_real_provider_are_accepted_by_discovery_alone() {
    let state = StateDir::new("access");
    let mut provider = OidcProvider::start(&state.0).await;
    let (_keys, app) = discovered(&provider, RESOURCE).await;

    let token = provider.access_token(RESOURCE).await;
    assert_accepted(&app.bearer(&token).await, "test-client", "a client-credentials access token");

    let other_audience = provider.access_token("https://other.example").await;
    assert_invalid_token(
        &app.bearer(&other_audience).await,
        "the token's audience is not accepted",
        "another resource",
    );
}

#[tokio::test]
async fn tokens_of_another_issuer_are_refused_even_with_the_same_keys() {
    let state = StateDir::new("issuer");
    let mut provider = OidcProvider::start(&state.0).await;
    // A second provider with the same keys: its tokens verify, but they name another issuer.
    let twin_state = StateDir::new("twin");
    std::fs::copy(state.0.join("keys.json"), twin_state.0.join("keys.json")).unwrap();
    let mut twin = OidcProvider::start(&twin_state.0).await;
    assert_ne!(provider.issuer(), twin.issuer());
    let (_keys, app) = discovered(&provider, RESOURCE).await;

    let mine = provider.access_token(RESOURCE).await;
    let theirs = twin.access_token(RESOURCE).await;
    assert_eq!(kid_of(&mine), kid_of(&theirs), "both providers sign with the same key");
    assert_accepted(&app.bearer(&mine).await, "test-client", "the configured issuer");
    assert_invalid_token(&app.bearer(&theirs).await, "the token's issuer is not accepted", "another issuer");
}

#[tokio::test]
async fn id_tokens_from_a_real_provider_are_accepted_for_the_client() {
    let state = StateDir::new("id");
    let mut provider = OidcProvider::start(&state.0).await;
    let (_keys, app) = discovered(&provider, "test-client").await;

    let id_token = provider.id_token().await;
    assert_accepted(&app.bearer(&id_token).await, "alice", "an ID token");
    // An access token is for the resource, not the client.
    let access = provider.access_token(RESOURCE).await;
    assert_invalid_token(&app.bearer(&access).await, "the token's audience is not accepted", "an access token");
}

#[tokio::test]
async fn a_rotated_provider_key_is_accepted_on_first_sight_with_one_fetch() {
    let state = StateDir::new("rotate");
    let mut provider = OidcProvider::start(&state.0).await;
    let (_keys, app) = discovered(&provider, RESOURCE).await;
    let old = provider.access_token(RESOURCE).await;
    assert_accepted(&app.bearer(&old).await, "test-client", "before rotation");
    let fetches = provider.jwks_fetches().await;

    let kid = provider.rotate().await;
    let new = provider.access_token(RESOURCE).await;
    assert_eq!(kid_of(&new), kid, "the new key signs");
    assert_ne!(kid_of(&new), kid_of(&old));
    assert_accepted(&app.bearer(&new).await, "test-client", "the new kid, on first sight");
    assert_eq!(provider.jwks_fetches().await, fetches + 1, "exactly one fetch for the new kid");

    // The old key is still published, and still trusted, with no further fetch.
    assert_accepted(&app.bearer(&old).await, "test-client", "the old kid, after rotation");
    assert_accepted(&app.bearer(&new).await, "test-client", "the new kid, again");
    assert_eq!(provider.jwks_fetches().await, fetches + 1);
}

#[tokio::test]
async fn cached_keys_serve_through_an_outage_and_refresh_resumes_after_it() {
    let state = StateDir::new("outage");
    let mut provider = OidcProvider::start(&state.0).await;
    let keys = RemoteKeySet::discover(provider.issuer())
        .refresh_interval(Duration::from_millis(200))
        .cooldown(Duration::from_millis(200))
        .timeout(Duration::from_secs(2))
        .build_eager()
        .await
        .unwrap();
    let app = App::new(Validator::builder(keys.clone()).issuer(provider.issuer()).audience(RESOURCE).build()).await;
    let token = provider.access_token(RESOURCE).await;
    assert_accepted(&app.bearer(&token).await, "test-client", "before the outage");

    provider.stop().await;
    // Three fetches end: the first may have started before the stop, the other two fail on the closed port.
    for _ in 0..3 {
        keys.wait_for_fetch().await;
    }
    assert_accepted(&app.bearer(&token).await, "test-client", "during the outage");
    // A token with an unknown kid during the outage is refused, never a 5xx.
    let header = b64(json!({ "alg": "RS256", "kid": "unknown" }).to_string());
    let forged = format!("{header}.{}.{}", b64(b"{}"), b64(b"sig"));
    assert_invalid_token(
        &app.bearer(&forged).await,
        "the token's signing key is unknown",
        "an unknown kid in the outage",
    );

    let before = provider.jwks_fetches().await;
    provider.restart().await;
    tokio::time::timeout(Duration::from_secs(20), async {
        while provider.jwks_fetches().await == before {
            keys.wait_for_fetch().await;
        }
    })
    .await
    .expect("the background refresh reached the restarted provider within 20 s");
    assert_accepted(&app.bearer(&token).await, "test-client", "after the restart");

    // Refresh really resumed: a key rotated in after the restart is followed.
    let kid = provider.rotate().await;
    let new = provider.access_token(RESOURCE).await;
    assert_eq!(kid_of(&new), kid);
    assert_accepted(&app.bearer(&new).await, "test-client", "a key rotated in after the restart");
}

/// DPoP end to end with nobody's code but the layer's: a DPoP-bound token from `oidc-provider` (its `dPoP`
/// feature), and proofs from panva's npm `dpop`; then every refusal the issue names.
#[tokio::test]
async fn dpop_bound_tokens_from_oidc_provider_with_proofs_from_the_dpop_package() {
    use jwtgate::dpop::Dpop;

    let state = StateDir::new("dpop");
    let mut provider = OidcProvider::start(&state.0).await;
    let keys = RemoteKeySet::discover(provider.issuer()).build_eager().await.unwrap();
    let validator = Validator::builder(keys).issuer(provider.issuer()).audience(RESOURCE).build();
    let layer = JwtAuthLayer::<Value>::new(validator).dpop(Dpop::allowed(RESOURCE).unwrap());
    let subject = |claims: Claims<Value>| async move { claims.registered().subject().unwrap_or_default().to_owned() };
    let router = Router::new().route("/me", get(subject)).route("/admin", get(subject)).layer(layer);
    let base = format!("http://{}", serve(router).await);
    let http = reqwest::Client::new();
    let send = async |token: &str, proof: &str| {
        let auth = format!("DPoP {token}");
        jwtgate_tests::get(&http, &format!("{base}/me"), &[("authorization", &auth), ("dpop", proof)]).await
    };

    let token = provider.dpop_token(RESOURCE).await;
    let url = format!("{RESOURCE}/me");
    let proof = provider.dpop_proof("GET", &url, &token, false).await;
    assert_accepted(&send(&token, &proof).await, "test-client", "a DPoP-bound token and a proof of its key");

    let dpop_challenge = |answer: &Answer| answer.header("www-authenticate").unwrap_or_default().to_owned();
    // The same proof again.
    let replayed = send(&token, &proof).await;
    assert_eq!((replayed.status, &replayed.body["error_description"]), (401, &json!("the DPoP proof was used before")));
    assert!(dpop_challenge(&replayed).starts_with(r#"DPoP error="invalid_dpop_proof""#));
    // A proof of another key.
    let other = provider.dpop_proof("GET", &url, &token, true).await;
    let answer = send(&token, &other).await;
    assert_eq!(
        (answer.status, &answer.body["error_description"]),
        (401, &json!("the token is not bound to the DPoP proof's key"))
    );
    assert!(dpop_challenge(&answer).starts_with(r#"DPoP error="invalid_token""#));
    // A proof for another route.
    let admin = provider.dpop_proof("GET", &format!("{RESOURCE}/admin"), &token, false).await;
    let answer = send(&token, &admin).await;
    assert_eq!(
        (answer.status, &answer.body["error_description"]),
        (401, &json!("the DPoP proof's htu does not match the request"))
    );
    // The token as a bearer token.
    let auth = format!("Bearer {token}");
    let answer = jwtgate_tests::get(&http, &format!("{base}/me"), &[("authorization", &auth)]).await;
    assert_invalid_token(
        &answer,
        "the token is sender-constrained and cannot be used as a bearer token",
        "a DPoP-bound token as a bearer token",
    );
}

/// The resource the provider issues opaque tokens for.
const OPAQUE_RESOURCE: &str = "https://api.example/opaque";

/// An app that introspects opaque tokens at `provider`, as its client `api-introspector`, reusing active answers
/// for `cache`; `/me` answers the introspected `sub` (the client's id for client credentials).
async fn introspecting(provider: &OidcProvider, cache: Duration) -> App {
    use jwtgate::introspection::{AnswerRules, Introspector};

    let introspector = Introspector::<Value>::builder(provider.introspection_url())
        .client_secret_basic("api-introspector", &jwtgate::Secret::new("api-introspector-secret"))
        .rules(
            AnswerRules::new().issuer(provider.issuer()).audience(OPAQUE_RESOURCE).require_issuer().require_audience(),
        )
        .cache_ttl(cache)
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/me",
            get(|claims: Claims<Value>| async move {
                assert!(claims.validated().is_introspected());
                assert_eq!(claims["scope"], "read");
                claims["client_id"].as_str().unwrap_or_default().to_owned()
            }),
        )
        .layer(JwtAuthLayer::<Value>::introspected(introspector));
    App { base: format!("http://{}", serve(router).await), http: reqwest::Client::new() }
}

/// RFC 7662 against oidc-provider: its opaque tokens, its introspection endpoint with client_secret_basic, its
/// revocation endpoint, and an outage.
#[tokio::test]
async fn opaque_tokens_from_oidc_provider_are_introspected_and_revocation_takes_effect_after_the_cache() {
    let state = StateDir::new("opaque");
    let mut provider = OidcProvider::start(&state.0).await;
    let token = provider.opaque_token(OPAQUE_RESOURCE).await;
    assert_eq!(token.matches('.').count(), 0, "an opaque token, not a JWT: {}", token.len());
    let app = introspecting(&provider, Duration::from_secs(1)).await;
    assert_accepted(&app.bearer(&token).await, "test-client", "an opaque token");

    // Revoked at the provider: refused once the cached answer (1 s) is over.
    provider.revoke(&token).await;
    let started = std::time::Instant::now();
    loop {
        let answer = app.bearer(&token).await;
        if answer.status == 401 {
            assert_invalid_token(&answer, "the token is not active", "a revoked token");
            break;
        }
        assert_accepted(&answer, "test-client", "the cached answer, before it ends");
        assert!(started.elapsed() < Duration::from_secs(3), "still accepted after the cache's 1 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Tampered and unknown tokens.
    let fresh = provider.opaque_token(OPAQUE_RESOURCE).await;
    let mut tampered = fresh.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_invalid_token(&app.bearer(&tampered).await, "the token is not active", "a tampered token");
    assert_invalid_token(&app.bearer("never-issued-token").await, "the token is not active", "an unknown token");
    // A token for another resource is active at the provider, but names another audience.
    let elsewhere = provider.opaque_token("https://api.example/opaque-billing").await;
    assert_invalid_token(&app.bearer(&elsewhere).await, "the token's audience is not accepted", "another resource");

    // The provider stopped: a cached answer is served within its TTL, a new token gets 503.
    let cached_app = introspecting(&provider, Duration::from_secs(600)).await;
    let cached = provider.opaque_token(OPAQUE_RESOURCE).await;
    let uncached = provider.opaque_token(OPAQUE_RESOURCE).await;
    assert_accepted(&cached_app.bearer(&cached).await, "test-client", "before the outage");
    provider.stop().await;
    assert_accepted(&cached_app.bearer(&cached).await, "test-client", "cached, during the outage");
    let answer = cached_app.bearer(&uncached).await;
    answer.assert_unavailable("the token could not be introspected; try again later");
}
