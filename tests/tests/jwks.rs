//! Remote JWK Sets against a server under the test's control: fetching, refresh, rotation, single flight
//! and cooldown, failures (slow, 500, malformed, huge, HTML), conditional GETs, discovery, and several
//! issuers.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use jwtgate::jwks::{RemoteKeySet, RemoteKeySetBuilder};
use jwtgate::{
    Algorithm, ErrorKind, JwtAuthLayer, KeySet, Validator,
    keys::{KeySource, TrustedKeys},
};
use jwtgate_test::{Fault, JwksServer, body_json};
use jwtgate_tests::logs::capture;
use jwtgate_tests::{AUDIENCE, Answer, ISSUER, TestKey, claims, serve};
use serde_json::{Value, json};
use tower::ServiceExt;

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() })
}

fn rs256(kid: &str) -> TestKey {
    TestKey::generate(Algorithm::RS256).with_kid(kid)
}

fn es256(kid: &str) -> TestKey {
    TestKey::generate(Algorithm::ES256).with_kid(kid)
}

/// Fast settings, so that tests do not wait on production defaults.
fn remote(server: &JwksServer) -> RemoteKeySetBuilder {
    RemoteKeySet::jwks(&server.jwks_url()).timeout(Duration::from_secs(2))
}

fn validator(keys: impl Into<TrustedKeys>) -> Validator {
    Validator::builder(keys).issuer(ISSUER).audience(AUDIENCE).build()
}

/// An app behind `JwtAuthLayer`, served on loopback.
struct App {
    base: String,
    http: reqwest::Client,
}

impl App {
    async fn new(validator: Validator) -> Self {
        let router = Router::new().route("/me", get(|| async { "ok" })).layer(JwtAuthLayer::<Value>::new(validator));
        Self { base: format!("http://{}", serve(router).await), http: reqwest::Client::new() }
    }

    async fn bearer(&self, token: &str) -> Answer {
        let auth = format!("Bearer {token}");
        jwtgate_tests::get(&self.http, &format!("{}/me", self.base), &[("authorization", &auth)]).await
    }
}

#[track_caller]
fn assert_ok(answer: &Answer) {
    assert_eq!(answer.status, 200, "body {}", answer.body);
}

#[track_caller]
fn assert_invalid_token(answer: &Answer, description: &str) {
    answer.assert_invalid_token(description);
}

#[track_caller]
fn assert_keys_unavailable(answer: &Answer) {
    answer.assert_unavailable("the signing keys are unavailable; try again later");
}

/// Waits for the set's fetches until `done` holds, for at most 10 s (a hung test fails, it never passes).
async fn until(keys: &RemoteKeySet, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            keys.wait_for_fetch().await;
        }
    })
    .await
    .expect("the condition held within 10 s");
}

#[tokio::test]
async fn keys_are_fetched_in_the_background_and_verify_tokens() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let keys = remote(&server).build().unwrap();
    until(&keys, || keys.is_ready()).await;
    let app = App::new(validator(keys.clone())).await;

    assert_ok(&app.bearer(&key.sign(&claims())).await);
    let stranger = rs256("k1");
    assert_invalid_token(&app.bearer(&stranger.sign(&claims())).await, "the token's signature is invalid");
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn a_cold_start_waits_for_the_first_fetch_and_poll_ready_never_waits() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    // A provider that takes about a second: the first requests arrive while the first fetch runs.
    server.set_fault(Fault::Delay(Duration::from_secs(1)));
    let keys = remote(&server).build().unwrap();
    assert!(!keys.is_ready());
    let mut service = tower::Layer::layer(
        &JwtAuthLayer::<Value>::new(validator(keys.clone())),
        tower::service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        }),
    );

    // The layer's `poll_ready` answers at once: the wait is in the response future, pending on the fetch.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(tower::Service::<Request<Body>>::poll_ready(&mut service, &mut cx).is_ready());
    let request = |token: &str| {
        Request::get("/me").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
    };
    let pending = tower::Service::call(&mut service, request(&key.sign(&claims())));
    let mut pending = std::pin::pin!(pending);
    assert!(pending.as_mut().poll(&mut cx).is_pending(), "the request waits for the fetch");

    // Sent at once after the start, every request is served with the keys the first fetch brings.
    let app = App::new(validator(keys.clone())).await;
    let mut answers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (base, token) = (app.base.clone(), key.sign(&claims()));
        answers.spawn(async move {
            let auth = format!("Bearer {token}");
            jwtgate_tests::get(&reqwest::Client::new(), &format!("{base}/me"), &[("authorization", &auth)]).await
        });
    }
    while let Some(answer) = answers.join_next().await {
        assert_ok(&answer.unwrap());
    }
    assert_eq!(pending.await.unwrap().status(), 200);
    assert_eq!(server.fetches(), 1, "they all joined the first fetch");
    // A request that needs no keys is not held behind a fetch.
    assert_invalid_token(&app.bearer("a.b.c").await, "the token is malformed");
}

#[tokio::test]
async fn a_cold_start_answers_503_when_the_first_fetch_fails() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_fault(Fault::Status(500));
    let keys = remote(&server).cooldown(Duration::from_secs(600)).build().unwrap();
    let app = App::new(validator(keys.clone())).await;

    // The request joins the first fetch, which fails: 503, as soon as the fetch has failed.
    assert_keys_unavailable(&app.bearer(&key.sign(&claims())).await);
    assert!(server.fetches() >= 1);
    assert_keys_unavailable(&app.bearer(&key.sign(&claims())).await);

    server.set_fault(Fault::None);
    until(&keys, || keys.is_ready()).await;
    assert_ok(&app.bearer(&key.sign(&claims())).await);
}

/// A key source of your own with no keys, which offers no wait for them (`wait_for_keys`'s default).
#[derive(Debug)]
struct NoKeys;

impl KeySource for NoKeys {
    fn current(&self) -> Result<Arc<KeySet>, jwtgate::keys::KeysUnavailable> {
        Err(jwtgate::keys::KeysUnavailable)
    }

    fn refresh_for(&self, _kid: &str) -> Option<jwtgate::keys::PendingRefresh> {
        None
    }
}

#[tokio::test]
async fn a_source_that_offers_no_wait_answers_503_at_once() {
    let app = App::new(validator(TrustedKeys::from_source(NoKeys))).await;
    assert_keys_unavailable(&app.bearer(&rs256("k1").sign(&claims())).await);
    assert_keys_unavailable(&app.bearer(&es256("e1").sign(&claims())).await);
}

/// Bounds a test's wait for an answer that must come within `max_wait`, with room for a loaded machine.
async fn within<T>(bound: Duration, answer: impl Future<Output = T>) -> (T, Duration) {
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(bound, answer).await.expect("the answer came within the bound");
    (answer, started.elapsed())
}

#[tokio::test]
async fn a_hanging_provider_holds_a_cold_request_for_max_wait_then_answers_503() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_fault(Fault::Delay(Duration::from_secs(30)));
    let max_wait = Duration::from_millis(400);
    let keys = remote(&server).timeout(Duration::from_secs(20)).max_wait(max_wait).build().unwrap();
    let app = App::new(validator(keys.clone())).await;

    let (answer, waited) = within(Duration::from_secs(4), app.bearer(&key.sign(&claims()))).await;
    assert_keys_unavailable(&answer);
    assert!(waited >= max_wait, "it waited for the fetch, up to the bound ({waited:?})");
    assert_eq!(server.in_flight(), 1, "the fetch goes on after the request has its answer");
}

#[tokio::test]
async fn an_unknown_kid_waits_for_a_hanging_provider_for_max_wait_then_gets_503() {
    let (old, new) = (rs256("old"), rs256("new"));
    let server = JwksServer::start(jwks(&[&old])).await;
    let max_wait = Duration::from_millis(400);
    let keys = remote(&server).timeout(Duration::from_secs(20)).max_wait(max_wait).build().unwrap();
    until(&keys, || keys.is_ready()).await;
    let app = App::new(validator(keys.clone())).await;
    assert_ok(&app.bearer(&old.sign(&claims())).await);

    server.set_keys(jwks(&[&new, &old]));
    server.set_fault(Fault::Delay(Duration::from_secs(30)));
    let (answer, waited) = within(Duration::from_secs(4), app.bearer(&new.sign(&claims()))).await;
    // The new key may be on its way: try again later, rather than "unknown key".
    assert_keys_unavailable(&answer);
    assert!(waited >= max_wait, "it waited for the fetch, up to the bound ({waited:?})");
    // Tokens whose keys are at hand never wait.
    let (answer, _) = within(Duration::from_secs(2), app.bearer(&old.sign(&claims()))).await;
    assert_ok(&answer);
}

#[tokio::test]
async fn an_eager_start_fails_fast_and_names_the_problem() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_fault(Fault::Status(500));
    let err = remote(&server).build_eager().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("the first fetch of the keys failed: {}: HTTP 500 Internal Server Error", server.jwks_url())
    );

    server.set_fault(Fault::None);
    let keys = remote(&server).build_eager().await.unwrap();
    assert!(keys.is_ready());
    assert!(validator(keys).validate::<Value>(&key.sign(&claims())).is_ok());
}

#[tokio::test]
async fn a_rotated_in_key_is_accepted_on_first_sight_with_one_fetch() {
    let (old, new) = (rs256("2026-10"), es256("2026-11"));
    let server = JwksServer::start(jwks(&[&old])).await;
    let keys = remote(&server).build().unwrap();
    until(&keys, || keys.is_ready()).await;
    let app = App::new(validator(keys.clone())).await;
    assert_ok(&app.bearer(&old.sign(&claims())).await);

    server.set_keys(jwks(&[&new, &old]));
    assert_ok(&app.bearer(&new.sign(&claims())).await);
    assert_eq!(server.fetches(), 2, "one fetch at start, one for the new kid");
    // The old key keeps working while it is still published.
    assert_ok(&app.bearer(&old.sign(&claims())).await);
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn a_flood_of_random_kids_fetches_once_per_cooldown() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let keys = remote(&server).cooldown(Duration::from_secs(600)).build().unwrap();
    until(&keys, || keys.is_ready()).await;
    let service =
        Router::new().route("/me", get(|| async { "ok" })).layer(JwtAuthLayer::<Value>::new(validator(keys.clone())));

    let attacker = rs256("unused");
    let mut refused = 0;
    let mut requests = tokio::task::JoinSet::new();
    for round in 0..10_000 {
        let token = attacker
            .sign_raw(&json!({ "alg": "RS256", "kid": format!("random-{round}") }).to_string(), &claims().to_string());
        let request =
            Request::get("/me").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
        requests.spawn(service.clone().oneshot(request));
    }
    while let Some(response) = requests.join_next().await {
        let response = response.unwrap().unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer error="invalid_token", error_description="the token's signing key is unknown""#
        );
        assert_eq!(
            body_json(response.into_body()).await,
            json!({ "error": "invalid_token", "error_description": "the token's signing key is unknown" })
        );
        refused += 1;
    }
    assert_eq!(refused, 10_000);
    assert_eq!(server.fetches(), 2, "one fetch at start, and one for the whole flood");
    // Good tokens were never affected.
    assert!(validator(keys).validate::<Value>(&key.sign(&claims())).is_ok());
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_fetch() {
    let (old, new) = (rs256("old"), rs256("new"));
    let server = JwksServer::start(jwks(&[&old])).await;
    let keys = remote(&server).build().unwrap();
    until(&keys, || keys.is_ready()).await;
    server.set_keys(jwks(&[&new, &old]));
    server.set_fault(Fault::Delay(Duration::from_millis(300)));
    let validator = validator(keys);

    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (validator, token) = (validator.clone(), new.sign(&claims()));
        checks.spawn(async move { validator.validate_async::<Value>(&token).await.map(|_| ()) });
    }
    while let Some(result) = checks.join_next().await {
        assert_eq!(result.unwrap(), Ok(()), "every token with the new kid is accepted");
    }
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn a_failing_provider_keeps_the_last_good_keys() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let keys = remote(&server)
        .refresh_interval(Duration::from_millis(50))
        .cooldown(Duration::from_millis(50))
        .max_body_bytes(4096)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    until(&keys, || keys.is_ready()).await;
    let validator = validator(keys.clone());
    let token = key.sign(&claims());

    let faults = [
        Fault::Status(500),
        Fault::Status(404),
        Fault::Body("{\"keys\": [".to_owned()),
        Fault::Body("{\"keys\": []}".to_owned()),
        Fault::Body("<html>login</html>".to_owned()),
        Fault::Html,
        Fault::Huge(8192),
        Fault::HugeChunked(8192),
        Fault::Delay(Duration::from_secs(2)),
    ];
    for fault in faults {
        server.set_fault(fault.clone());
        let before = server.fetches();
        // Two failed refreshes, so the second retry has passed too.
        until(&keys, || server.fetches() >= before + 2).await;
        assert!(validator.validate::<Value>(&token).is_ok(), "{fault:?}: the last good key still verifies");
    }
}

#[tokio::test]
async fn keys_older_than_the_maximum_staleness_are_not_trusted() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let keys = remote(&server)
        .refresh_interval(Duration::from_millis(100))
        .cooldown(Duration::from_millis(100))
        .timeout(Duration::from_millis(200))
        .max_staleness(Duration::from_millis(400))
        .build()
        .unwrap();
    until(&keys, || keys.is_ready()).await;
    let app = App::new(validator(keys.clone())).await;
    assert_ok(&app.bearer(&key.sign(&claims())).await);

    server.set_fault(Fault::Status(503));
    until(&keys, || !keys.is_ready()).await;
    assert_keys_unavailable(&app.bearer(&key.sign(&claims())).await);

    server.set_fault(Fault::None);
    until(&keys, || keys.is_ready()).await;
    assert_ok(&app.bearer(&key.sign(&claims())).await);
}

#[tokio::test]
async fn refreshes_are_conditional_with_etag_and_last_modified() {
    let key = rs256("k1");
    for validator_header in ["etag", "last-modified"] {
        let server = JwksServer::start(jwks(&[&key])).await;
        match validator_header {
            "etag" => server.set_etag("\"v1\""),
            _ => server.set_last_modified("Mon, 23 Nov 2026 09:00:00 GMT"),
        }
        let keys = remote(&server)
            .refresh_interval(Duration::from_millis(50))
            .cooldown(Duration::from_millis(50))
            .build()
            .unwrap();
        until(&keys, || server.not_modified() >= 2).await;
        assert!(server.conditional() >= 2, "{validator_header}");
        assert!(
            validator(keys.clone()).validate::<Value>(&key.sign(&claims())).is_ok(),
            "{validator_header}: 304 keeps the keys"
        );

        // A changed document replaces the keys.
        let rotated = rs256("k2");
        server.set_keys(jwks(&[&rotated]));
        match validator_header {
            "etag" => server.set_etag("\"v2\""),
            _ => server.set_last_modified("Mon, 23 Nov 2026 10:00:00 GMT"),
        }
        until(&keys, || keys.current().is_ok_and(|set| set.contains_kid("k2"))).await;
        assert!(!keys.current().unwrap().contains_kid("k1"));
    }
}

#[tokio::test]
async fn cache_control_max_age_shortens_the_refresh_down_to_the_cooldown() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_cache_control("public, max-age=0");
    // An hour between refreshes, but the provider says its keys stay fresh for 0 s: the cooldown (100 ms) is
    // the floor.
    let start = std::time::Instant::now();
    let keys = remote(&server)
        .refresh_interval(Duration::from_secs(3600))
        .cooldown(Duration::from_millis(100))
        .build()
        .unwrap();
    until(&keys, || server.fetches() >= 3).await;
    // The floor holds: three fetches need at least two cooldowns between them.
    assert!(start.elapsed() >= Duration::from_millis(200), "{:?} for 3 fetches", start.elapsed());
}

#[tokio::test]
async fn a_rejected_document_is_never_confirmed_by_a_later_304() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_etag("\"v1\"");
    let keys = remote(&server)
        .refresh_interval(Duration::from_millis(100))
        .cooldown(Duration::from_millis(100))
        .timeout(Duration::from_millis(200))
        .max_staleness(Duration::from_millis(400))
        .build()
        .unwrap();
    until(&keys, || keys.is_ready()).await;
    until(&keys, || server.not_modified() >= 1).await;
    let confirmed = server.not_modified();

    // The provider drops the key and publishes a set with no key jwtgate can use, under a new tag. Had its
    // tag been kept, the next refresh would get 304 and the dropped key would stay fresh for ever.
    server.set_keys(json!({ "keys": [{ "kty": "RSA", "kid": "no-alg", "n": "AQAB", "e": "AQAB" }] }));
    server.set_etag("\"v2\"");
    until(&keys, || !keys.is_ready()).await;
    assert_eq!(server.not_modified(), confirmed, "no 304 confirms the rejected document");
    let app = App::new(validator(keys.clone())).await;
    assert_keys_unavailable(&app.bearer(&key.sign(&claims())).await);
}

#[tokio::test]
async fn redirects_are_followed_only_to_urls_keys_may_come_from() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let target = server.jwks_url();
    let redirects = Router::new()
        .route("/to-loopback", get(move || async move { axum::response::Redirect::temporary(&target) }))
        .route("/to-http", get(|| async { axum::response::Redirect::temporary("http://idp.example/jwks") }));
    let base = format!("http://{}", serve(redirects).await);

    let keys = RemoteKeySet::jwks(&format!("{base}/to-loopback")).build_eager().await.unwrap();
    assert!(validator(keys).validate::<Value>(&key.sign(&claims())).is_ok(), "a loopback redirect is followed");

    let err = RemoteKeySet::jwks(&format!("{base}/to-http")).build_eager().await.unwrap_err();
    assert!(err.to_string().contains("too many or refused redirects"), "{err}");
}

#[tokio::test]
async fn a_panic_inside_a_fetch_ends_that_fetch_not_the_refresh_task() {
    // Regression (issue 17): a panic in a fetch ended the background task for good; the keys were never
    // fetched again, and requests waited on fetches nobody ran. A client's redirect policy panics here.
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let target = server.jwks_url();
    let redirects =
        Router::new().route("/jwks", get(move || async move { axum::response::Redirect::temporary(&target) }));
    let base = format!("http://{}", serve(redirects).await);
    let panicking = Arc::new(AtomicBool::new(true));
    let policy = {
        let panicking = panicking.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            assert!(!panicking.load(Ordering::SeqCst), "a client callback that panics");
            attempt.follow()
        })
    };
    let client = reqwest::Client::builder().redirect(policy).build().unwrap();
    let keys = RemoteKeySet::jwks(&format!("{base}/jwks")).client(client).build().unwrap();
    keys.wait_for_fetch().await;
    assert!(!keys.is_ready(), "the first fetch panicked");
    panicking.store(false, Ordering::SeqCst);
    // The retry (1 s later) still runs, and brings the keys.
    until(&keys, || keys.is_ready()).await;
    assert!(validator(keys).validate::<Value>(&key.sign(&claims())).is_ok());
}

#[tokio::test]
async fn an_rsa_key_with_an_empty_modulus_is_skipped_and_the_refresh_goes_on() {
    // Regression (issue 17): such a key made the bit count underflow, a panic in the refresh task with
    // overflow checks on.
    let good = rs256("good");
    let mut set = jwks(&[&good]);
    let bad = json!({ "kty": "RSA", "kid": "bad", "alg": "RS256", "n": "", "e": "AQAB" });
    set["keys"].as_array_mut().unwrap().push(bad);
    let server = JwksServer::start(set).await;
    let keys = remote(&server).refresh_interval(Duration::from_millis(100)).cooldown(Duration::ZERO).build().unwrap();
    until(&keys, || server.fetches() >= 3).await;
    assert!(keys.is_ready());
    assert!(validator(keys).validate::<Value>(&good.sign(&claims())).is_ok());
}

#[tokio::test]
async fn bad_keys_are_skipped_and_logged_once_and_the_rest_are_used() {
    let good = es256("good");
    let mut set = jwks(&[&good]);
    let keys = set["keys"].as_array_mut().unwrap();
    let mut encryption = rs256("enc").jwk();
    encryption["use"] = json!("enc");
    let mut wrap_only = rs256("wrap").jwk();
    wrap_only["key_ops"] = json!(["wrapKey"]);
    let mut unsupported = rs256("rsa-oaep").jwk();
    unsupported["alg"] = json!("RSA-OAEP");
    let secret = TestKey::generate(Algorithm::HS256).with_kid("secret").jwk();
    keys.extend([encryption, wrap_only, unsupported, secret]);

    let (logs, _guard) = capture(tracing::Level::WARN);
    let server = JwksServer::start(set).await;
    let remote = remote(&server)
        .refresh_interval(Duration::from_millis(50))
        .cooldown(Duration::from_millis(50))
        .build()
        .unwrap();
    until(&remote, || server.fetches() >= 3).await;
    let validator = validator(remote.clone());
    assert!(validator.validate::<Value>(&good.sign(&claims())).is_ok());
    for kid in ["enc", "wrap", "rsa-oaep", "secret"] {
        assert!(!remote.current().unwrap().contains_kid(kid), "{kid}");
    }

    let logs = logs.text();
    let skipped: Vec<&str> = logs.lines().filter(|line| line.contains("skipping a key of the JWK Set")).collect();
    assert_eq!(skipped.len(), 4, "each skipped key is logged once over three fetches:\n{logs}");
    // The message is logged escaped (`?`): a provider's text never writes raw into the log.
    for (kid, reason) in [
        ("enc", r#"key use is \"enc\", not \"sig\""#),
        ("wrap", r#"key_ops does not allow \"verify\""#),
        ("rsa-oaep", r#"unsupported alg \"RSA-OAEP\""#),
        ("secret", "oct keys (shared secrets) are never trusted"),
    ] {
        assert!(skipped.iter().any(|line| line.contains(kid) && line.contains(reason)), "{kid}: {reason}\n{logs}");
    }
}

#[tokio::test]
async fn json_content_types_are_accepted_and_others_refused() {
    let key = rs256("k1");
    for (content_type, accepted) in [
        (Some("application/json"), true),
        (Some("application/jwk-set+json"), true),
        (Some("application/json; charset=utf-8"), true),
        (None, true),
        (Some("text/html"), false),
    ] {
        let server = JwksServer::start(jwks(&[&key])).await;
        server.set_content_type(content_type);
        let result = remote(&server).build_eager().await;
        assert_eq!(result.is_ok(), accepted, "{content_type:?}: {result:?}");
    }
}

#[tokio::test]
async fn no_request_ever_sees_a_half_updated_key_set() {
    let first: Vec<TestKey> = (0..4).map(|n| es256(&format!("first-{n}"))).collect();
    let second: Vec<TestKey> = (0..4).map(|n| es256(&format!("second-{n}"))).collect();
    let server = JwksServer::start(jwks(&first.iter().collect::<Vec<_>>())).await;
    let keys = remote(&server).refresh_interval(Duration::from_millis(1)).cooldown(Duration::ZERO).build().unwrap();
    until(&keys, || keys.is_ready()).await;

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (keys, stop) = (keys.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = [0usize; 2];
                while !stop.load(Ordering::Relaxed) {
                    let set = keys.current().unwrap();
                    let kids: Vec<&str> = set.keys().iter().map(|key| key.kid().unwrap()).collect();
                    let whole = |prefix: &str| kids.len() == 4 && kids.iter().all(|kid| kid.starts_with(prefix));
                    match (whole("first-"), whole("second-")) {
                        (true, false) => seen[0] += 1,
                        (false, true) => seen[1] += 1,
                        _ => panic!("a half-updated key set: {kids:?}"),
                    }
                }
                seen
            })
        })
        .collect();
    for round in 0..40 {
        let next = if round % 2 == 0 { &second } else { &first };
        server.set_keys(jwks(&next.iter().collect::<Vec<_>>()));
        let fetches = server.fetches();
        until(&keys, || server.fetches() > fetches + 1).await;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let seen = reader.join().expect("no reader saw a half-updated set");
        assert!(seen[0] > 0 && seen[1] > 0, "both sets were seen: {seen:?}");
    }
}

/// Starts a server, finds its keys with `discover` (one discovery, one fetch), and checks that a token of its
/// issuer validates with them.
async fn discovered_keys_validate(discover: fn(&str) -> RemoteKeySetBuilder) -> (JwksServer, String) {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let issuer = server.issuer();
    let keys = discover(&issuer).build_eager().await.unwrap();
    assert_eq!(keys.issuer(), Some(issuer.as_str()));
    assert_eq!((server.discoveries(), server.fetches()), (1, 1));
    let mut claims = claims();
    claims["iss"] = json!(issuer);
    let validator = Validator::builder(keys).issuer(&issuer).audience(AUDIENCE).build();
    assert!(validator.validate::<Value>(&key.sign(&claims)).is_ok());
    (server, issuer)
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_trusts_only_its_own_issuer() {
    let (server, issuer) = discovered_keys_validate(RemoteKeySet::discover).await;
    server.set_discovered_issuer("https://evil.example/tenant");
    let err = RemoteKeySet::discover(&issuer).build_eager().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the first fetch of the keys failed: {issuer}/.well-known/openid-configuration: the discovery document names the issuer \"https://evil.example/tenant\", not the configured \"{issuer}\""
        )
    );
    // A lazy start keeps trying, and never trusts the keys meanwhile.
    let keys = RemoteKeySet::discover(&issuer).build().unwrap();
    keys.wait_for_fetch().await;
    assert!(!keys.is_ready());
    assert_eq!(server.fetches(), 1, "the JWK Set of a mismatched issuer is never fetched");
}

#[tokio::test]
async fn rfc8414_discovery_reads_the_path_inserted_metadata_and_trusts_only_its_own_issuer() {
    let (server, issuer) = discovered_keys_validate(RemoteKeySet::discover_oauth).await;
    server.set_discovered_issuer(&format!("{issuer}/"));
    let err = RemoteKeySet::discover_oauth(&issuer).build_eager().await.unwrap_err();
    let document = issuer.replace("/tenant", "/.well-known/oauth-authorization-server/tenant");
    assert_eq!(
        err.to_string(),
        format!(
            "the first fetch of the keys failed: {document}: the discovery document names the issuer \"{issuer}/\", not the configured \"{issuer}\""
        )
    );
    assert_eq!(server.fetches(), 1, "the JWK Set of a mismatched issuer is never fetched");
}

#[tokio::test]
async fn urls_that_keys_are_never_fetched_from_are_refused_at_once() {
    for url in ["http://idp.example/jwks", "ftp://idp.example/jwks", "not a url"] {
        assert!(RemoteKeySet::jwks(url).build().is_err(), "{url}");
        assert!(RemoteKeySet::discover(url).build().is_err(), "{url}");
        assert!(RemoteKeySet::discover_oauth(url).build().is_err(), "{url}");
    }
    let err = RemoteKeySet::discover_oauth("https://as.example/t#fragment").build().unwrap_err();
    assert_eq!(err.to_string(), "the issuer https://as.example/t has a query or a fragment, which RFC 8414 §2 forbids");
    let err = RemoteKeySet::jwks("http://idp.example/jwks").build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "http://idp.example/jwks uses http; keys are fetched over https (plain http only to loopback)"
    );
    // A URL may carry credentials or a token in its query: an error never repeats them.
    for url in ["http://user:s3cret@idp.example/jwks?token=s3cret", "ftp://user:s3cret@idp.example/?s3cret", "s3cret"] {
        let err = RemoteKeySet::jwks(url).build().unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}

#[tokio::test]
async fn a_maximum_staleness_shorter_than_a_healthy_refresh_is_refused() {
    let err = RemoteKeySet::jwks("https://idp.example/jwks")
        .refresh_interval(Duration::from_secs(300))
        .max_staleness(Duration::from_secs(60))
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "max_staleness (60s) must be longer than the refresh interval plus the timeout (310s)");
    assert!(
        RemoteKeySet::jwks("https://idp.example/jwks").max_staleness(Duration::from_secs(311)).build().is_ok(),
        "a bound past one healthy refresh is accepted"
    );
}

#[test]
fn a_remote_key_set_needs_a_tokio_runtime() {
    let err = RemoteKeySet::jwks("https://idp.example/jwks").build().unwrap_err();
    assert_eq!(err.to_string(), "a RemoteKeySet needs a Tokio runtime for its background refresh");
}

#[tokio::test]
async fn each_issuer_is_checked_against_its_own_keys_and_rules() {
    let (key_a, key_b) = (rs256("shared-kid"), es256("shared-kid"));
    let (server_a, server_b) = (JwksServer::start(jwks(&[&key_a])).await, JwksServer::start(jwks(&[&key_b])).await);
    let local = TestKey::generate(Algorithm::HS256).with_kid("local");
    let tenant = |server: &JwksServer, audience: &str| {
        let keys = remote(server).build().unwrap();
        (keys.clone(), Validator::builder(keys).issuer(server.issuer()).audience(audience).build())
    };
    let (keys_a, tenant_a) = tenant(&server_a, "api-a");
    let (keys_b, tenant_b) = tenant(&server_b, "api-b");
    let tenant_local = Validator::builder(KeySet::new([local.verification_key()]).unwrap())
        .issuer("local")
        .audience("api-local")
        .leeway(Duration::ZERO)
        .build();
    until(&keys_a, || keys_a.is_ready()).await;
    until(&keys_b, || keys_b.is_ready()).await;
    let app = App::new(Validator::by_issuer([tenant_a, tenant_b, tenant_local]).unwrap()).await;

    let token = |key: &TestKey, iss: &str, aud: &str| {
        let mut claims = claims();
        claims["iss"] = json!(iss);
        claims["aud"] = json!(aud);
        key.sign(&claims)
    };
    let (iss_a, iss_b) = (server_a.issuer(), server_b.issuer());
    assert_ok(&app.bearer(&token(&key_a, &iss_a, "api-a")).await);
    assert_ok(&app.bearer(&token(&key_b, &iss_b, "api-b")).await);
    assert_ok(&app.bearer(&token(&local, "local", "api-local")).await);

    // Tenant B's key, with tenant A's issuer: checked against A's keys only, where the kid names an RS256 key.
    assert_invalid_token(
        &app.bearer(&token(&key_b, &iss_a, "api-a")).await,
        "the token's algorithm does not match its key",
    );
    // Each tenant has its own audience.
    assert_invalid_token(&app.bearer(&token(&key_a, &iss_a, "api-b")).await, "the token's audience is not accepted");
    // Each tenant has its own leeway: tenant "local" has none.
    let mut expired = claims();
    expired["iss"] = json!("local");
    expired["aud"] = json!("api-local");
    expired["exp"] = json!(jwtgate_tests::now() - 5);
    expired["iat"] = json!(jwtgate_tests::now() - 65);
    assert_invalid_token(&app.bearer(&local.sign(&expired)).await, "the token has expired");
    expired["iss"] = json!(iss_a);
    expired["aud"] = json!("api-a");
    assert_ok(&app.bearer(&key_a.sign(&expired)).await);
    // Unknown and missing issuers.
    assert_invalid_token(
        &app.bearer(&token(&key_a, "https://other.example", "api-a")).await,
        "the token's issuer is not accepted",
    );
    let mut no_iss = claims();
    no_iss.as_object_mut().unwrap().remove("iss");
    assert_invalid_token(&app.bearer(&key_a.sign(&no_iss)).await, "the token has no iss claim");
    let mut null_iss = claims();
    null_iss["iss"] = Value::Null;
    assert_invalid_token(&app.bearer(&key_a.sign(&null_iss)).await, "the token's iss claim is not a string");
    assert_eq!(server_a.fetches() + server_b.fetches(), 2, "no token made a tenant fetch");
}

#[test]
fn issuers_must_be_one_per_validator_and_distinct() {
    let key = TestKey::generate(Algorithm::HS256);
    let set = || KeySet::new([key.verification_key()]).unwrap();
    let one = |issuer: &str| Validator::builder(set()).issuer(issuer).build();
    let err = Validator::by_issuer([one("a"), one("a")]).unwrap_err();
    assert_eq!(err.to_string(), r#"two validators accept the issuer "a""#);
    let err = Validator::by_issuer([Validator::builder(set()).build()]).unwrap_err();
    assert_eq!(err.to_string(), "each validator by issuer needs exactly one issuer; one has 0");
    let err = Validator::by_issuer([Validator::builder(set()).issuer("a").issuer("b").build()]).unwrap_err();
    assert_eq!(err.to_string(), "each validator by issuer needs exactly one issuer; one has 2");
    assert!(Validator::by_issuer([]).is_err());
}

#[tokio::test]
async fn fixed_and_remote_keys_combine() {
    let (local, remote_key) = (TestKey::generate(Algorithm::HS256).with_kid("local"), rs256("remote"));
    let server = JwksServer::start(jwks(&[&remote_key])).await;
    server.set_fault(Fault::Status(500));
    let keys = remote(&server).build().unwrap();
    let trusted = TrustedKeys::from(KeySet::new([local.verification_key()]).unwrap()).with_source(keys.clone());
    let app = App::new(validator(trusted)).await;

    // While the provider is down, tokens for the fixed keys still work; the others get 503.
    assert_ok(&app.bearer(&local.sign(&claims())).await);
    assert_keys_unavailable(&app.bearer(&remote_key.sign(&claims())).await);
    server.set_fault(Fault::None);
    until(&keys, || keys.is_ready()).await;
    assert_ok(&app.bearer(&remote_key.sign(&claims())).await);
    assert_ok(&app.bearer(&local.sign(&claims())).await);
}

#[tokio::test]
async fn the_background_task_stops_with_the_last_clone() {
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let keys = remote(&server).refresh_interval(Duration::from_millis(20)).cooldown(Duration::ZERO).build().unwrap();
    until(&keys, || server.fetches() >= 2).await;
    drop(keys);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after_drop = server.fetches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.fetches(), after_drop, "no fetch after the set was dropped");
}

#[tokio::test]
async fn discover_any_reads_rfc8414_metadata_first_and_falls_back_to_the_openid_configuration() {
    let (server, issuer) = discovered_keys_validate(RemoteKeySet::discover_any).await;
    drop(server);
    // A provider that publishes only its OpenID configuration: the RFC 8414 document is 404.
    let key = rs256("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    server.set_oauth_metadata(false);
    let issuer_only_openid = server.issuer();
    let keys = RemoteKeySet::discover_any(&issuer_only_openid).build_eager().await.unwrap();
    assert_eq!((server.discoveries(), server.fetches()), (1, 1));
    assert!(keys.is_ready());
    // Neither document names the issuer: both are named in the error, and no key is trusted.
    server.set_oauth_metadata(true);
    server.set_discovered_issuer("https://evil.example/tenant");
    let err = RemoteKeySet::discover_any(&issuer_only_openid).build_eager().await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("/.well-known/oauth-authorization-server/tenant"), "{message}");
    assert!(message.contains("/tenant/.well-known/openid-configuration"), "{message}");
    assert!(!issuer.is_empty());
}

#[tokio::test]
async fn on_demand_nothing_is_fetched_before_a_request_and_a_failure_does_not_hold_the_next_request_back() {
    let key = rs256("k1");
    // The issuer's address is chosen, and nothing listens there yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let issuer = format!("http://{addr}/tenant");
    let keys = RemoteKeySet::discover_any(&issuer).on_demand().build().unwrap();
    let mut claims = claims();
    claims["iss"] = json!(issuer);
    let token = key.sign(&claims);
    let validator = Validator::builder(keys.clone()).issuer(&issuer).audience(AUDIENCE).build();
    // The first request starts a fetch, which fails at once: 503.
    let error = validator.validate_async::<Value>(&token).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::KeysUnavailable);

    let server = JwksServer::start_at(addr, jwks(&[&key])).await;
    // Right after the failure, with no background retry due for a second or more, the next request starts
    // its own fetch and is served with its keys.
    assert!(validator.validate_async::<Value>(&token).await.is_ok());
    assert_eq!((server.discoveries(), server.fetches()), (1, 1));

    // With the server up from the start, building fetches nothing: the first request does, once.
    let keys = RemoteKeySet::discover_any(&issuer).on_demand().build().unwrap();
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!keys.is_ready());
    assert_eq!((server.discoveries(), server.fetches(), server.in_flight()), (1, 1, 0));
    let validator = Validator::builder(keys).issuer(&issuer).audience(AUDIENCE).build();
    let results = futures_join(&validator, &token).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!((server.discoveries(), server.fetches()), (2, 2), "one fetch for concurrent requests");
}

/// Four validations of `token` at once.
async fn futures_join(validator: &Validator, token: &str) -> Vec<Result<jwtgate::Validated<Value>, jwtgate::Error>> {
    let (a, b, c, d) = tokio::join!(
        validator.validate_async::<Value>(token),
        validator.validate_async::<Value>(token),
        validator.validate_async::<Value>(token),
        validator.validate_async::<Value>(token),
    );
    vec![a, b, c, d]
}
