//! Opaque tokens (RFC 7662) against a small introspection endpoint served in-process: what is accepted and
//! refused, what a failing endpoint gets (503, never 401 or 200), the cache's bounds, single flight, hybrid
//! layers, and client authentication. The interop test against oidc-provider is in `interop.rs`.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jwtgate::introspection::{AnswerRules, Introspect, Introspection, Introspector};
use jwtgate::keys::SigningKey;
use jwtgate::revocation::MemoryDenylist;
use jwtgate::service::Authenticated;
use jwtgate::{Algorithm, ErrorKind, JwtAuthLayer, KeySet, Policy, RequireLayer, Secret, Validator};
use jwtgate_test::TestKey;
use jwtgate_tests::logs::capture;
use jwtgate_tests::{AUDIENCE, Answer, ISSUER, claims, get as get_with, serve};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

const UNAVAILABLE: &str = "the token could not be introspected; try again later";
const SECRET: &str = "s3cr3t:with+reserved/chars";

/// What the endpoint answers.
#[derive(Clone)]
enum Behaviour {
    /// 200 with this body, as JSON.
    Json(Value),
    /// This status and body, `content-type: application/json`.
    Status(u16, &'static str),
    /// 200 with `text/html`.
    Html,
    /// 302 to another endpoint that would say active.
    Redirect,
}

/// The endpoint's state: its behaviour, the calls it took, and what the last one sent.
#[derive(Default)]
struct Endpoint {
    behaviour: Mutex<Option<Behaviour>>,
    calls: AtomicUsize,
    last_form: Mutex<Vec<(String, String)>>,
    last_authorization: Mutex<Option<String>>,
    last_content_type: Mutex<Option<String>>,
    /// Held: every call waits for a permit before answering.
    gate: Option<Arc<Semaphore>>,
}

impl Endpoint {
    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = Some(behaviour);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn form(&self, name: &str) -> Option<String> {
        self.last_form.lock().unwrap().iter().find(|(key, _)| key == name).map(|(_, value)| value.clone())
    }
}

async fn introspect(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap, body: String) -> Response {
    endpoint.calls.fetch_add(1, Ordering::SeqCst);
    *endpoint.last_form.lock().unwrap() = form_urlencoded_pairs(&body);
    let header = |name: &str| headers.get(name).map(|value| value.to_str().unwrap().to_owned());
    *endpoint.last_authorization.lock().unwrap() = header("authorization");
    *endpoint.last_content_type.lock().unwrap() = header("content-type");
    if let Some(gate) = &endpoint.gate {
        gate.acquire().await.unwrap().forget();
    }
    let behaviour = endpoint.behaviour.lock().unwrap().clone().expect("a behaviour was set");
    match behaviour {
        Behaviour::Json(body) => axum::Json(body).into_response(),
        Behaviour::Status(status, body) => {
            (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body).into_response()
        }
        Behaviour::Html => ([("content-type", "text/html")], "<html>active</html>").into_response(),
        Behaviour::Redirect => (StatusCode::FOUND, [("location", "/elsewhere")]).into_response(),
    }
}

fn form_urlencoded_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&').filter_map(|pair| pair.split_once('=')).map(|(name, value)| (decode(name), decode(value))).collect()
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8().unwrap().into_owned()
}

/// Serves the endpoint, and returns its state and URL.
async fn endpoint_with(gate: Option<Arc<Semaphore>>) -> (Arc<Endpoint>, String) {
    let state = Arc::new(Endpoint { gate, ..Endpoint::default() });
    let app = Router::new()
        .route("/introspect", post(introspect))
        .route("/elsewhere", post(|| async { axum::Json(json!({ "active": true })) }))
        .with_state(state.clone());
    let addr = serve(app).await;
    (state, format!("http://{addr}/introspect"))
}

async fn endpoint() -> (Arc<Endpoint>, String) {
    endpoint_with(None).await
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An active answer, valid five minutes, for the test issuer and audience.
fn active() -> Value {
    json!({
        "active": true,
        "sub": "alice",
        "scope": "orders:read orders:write",
        "client_id": "shop",
        "username": "alice@example.com",
        "token_type": "Bearer",
        "roles": ["admin"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 300,
        "iat": now(),
        "jti": "t-1",
    })
}

fn rules() -> AnswerRules {
    AnswerRules::new().issuer(ISSUER).audience(AUDIENCE)
}

fn introspector(url: &str) -> Introspector<Value> {
    Introspector::builder(url)
        .client_secret_basic("resource server", &Secret::new(SECRET))
        .rules(rules())
        .build()
        .unwrap()
}

/// What a handler sees of an authenticated request.
async fn me(authenticated: axum::Extension<Authenticated>) -> axum::Json<Value> {
    let principal = authenticated.principal();
    let validated = authenticated.validated::<Value>().unwrap();
    axum::Json(json!({
        "sub": principal.subject(),
        "scopes": principal.scopes(),
        "roles": principal.roles(),
        "client_id": principal.claim::<String>("client_id"),
        "username": principal.claim::<String>("username"),
        "token_type": principal.claim::<String>("token_type"),
        "introspected": validated.is_introspected(),
        "claims_sub": validated.claims()["sub"],
    }))
}

fn app(layer: JwtAuthLayer<Value>) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/write", get(|| async { "written" }).route_layer(RequireLayer::new(Policy::scope("orders:write"))))
        .route("/delete", get(|| async { "deleted" }).route_layer(RequireLayer::new(Policy::scope("orders:delete"))))
        .layer(layer)
}

/// Serves `layer` and returns a function that GETs a path with a bearer token.
async fn served(
    layer: JwtAuthLayer<Value>,
) -> impl Fn(&'static str, String) -> std::pin::Pin<Box<dyn Future<Output = Answer>>> {
    let addr = serve(app(layer)).await;
    let client = reqwest::Client::new();
    move |path: &'static str, token: String| {
        let client = client.clone();
        Box::pin(async move {
            get_with(&client, &format!("http://{addr}{path}"), &[("authorization", &format!("Bearer {token}"))]).await
        })
    }
}

#[tokio::test]
async fn an_active_token_reaches_the_handler_with_its_principal_and_guards_apply() {
    let (endpoint, url) = endpoint().await;
    endpoint.set(Behaviour::Json(active()));
    let call = served(JwtAuthLayer::introspected(introspector(&url))).await;

    let answer = call("/me", "opaque-token-1".to_owned()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body,
        json!({
            "sub": "alice",
            "scopes": ["orders:read", "orders:write"],
            "roles": ["admin"],
            "client_id": "shop",
            "username": "alice@example.com",
            "token_type": "Bearer",
            "introspected": true,
            "claims_sub": "alice",
        })
    );
    // RFC 7662 §2.1: a form POST with the token and its hint; RFC 6749 §2.3.1: id and secret form-encoded, then
    // Basic.
    assert_eq!(endpoint.form("token").as_deref(), Some("opaque-token-1"));
    assert_eq!(endpoint.form("token_type_hint").as_deref(), Some("access_token"));
    assert_eq!(endpoint.last_content_type.lock().unwrap().as_deref(), Some("application/x-www-form-urlencoded"));
    let basic = endpoint.last_authorization.lock().unwrap().clone().unwrap();
    let pair = String::from_utf8(STANDARD.decode(basic.strip_prefix("Basic ").unwrap()).unwrap()).unwrap();
    assert_eq!(pair, "resource+server:s3cr3t%3Awith%2Breserved%2Fchars");

    assert_eq!(call("/write", "opaque-token-1".to_owned()).await.status, 200);
    let forbidden = call("/delete", "opaque-token-1".to_owned()).await;
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.header("www-authenticate").unwrap().starts_with(r#"Bearer error="insufficient_scope""#));
    assert_eq!(endpoint.calls(), 1, "the answer was cached");
}

#[tokio::test]
async fn answers_that_are_not_active_or_fail_a_claim_check_are_refused_with_401() {
    let (endpoint, url) = endpoint().await;
    let call = served(JwtAuthLayer::introspected(
        Introspector::builder(&url)
            .rules(rules().require_audience())
            .negative_cache(Duration::ZERO, 1)
            .build()
            .unwrap(),
    ))
    .await;
    let with = |patch: Value| {
        let mut answer = active();
        for (name, value) in patch.as_object().unwrap() {
            match value {
                Value::Null => answer.as_object_mut().unwrap().remove(name),
                value => answer.as_object_mut().unwrap().insert(name.clone(), value.clone()),
            };
        }
        answer
    };
    let cases = [
        (json!({ "active": false }), "the token is not active"),
        (json!({ "active": "true" }), "the token is not active"),
        (json!({ "active": 1 }), "the token is not active"),
        (with(json!({ "active": null })), "the token is not active"),
        (with(json!({ "active": "true" })), "the token is not active"),
        (with(json!({ "exp": now() - 31 })), "the token has expired"),
        (with(json!({ "nbf": now() + 60 })), "the token is not valid yet"),
        (with(json!({ "iss": "https://other.test" })), "the token's issuer is not accepted"),
        (with(json!({ "aud": ["billing", "other"] })), "the token's audience is not accepted"),
        (with(json!({ "aud": null })), "the token has no aud claim"),
        (with(json!({ "exp": "tomorrow" })), "the token's exp claim is not a number"),
        // A refresh token, vouched for whatever the hint said, is no access token.
        (with(json!({ "token_type": "refresh_token" })), "the token's type is not accepted"),
        (with(json!({ "token_use": "refresh_token" })), "the token's type is not accepted"),
    ];
    for (body, description) in cases {
        endpoint.set(Behaviour::Json(body.clone()));
        let answer = call("/me", "opaque".to_owned()).await;
        assert_eq!(answer.status, 401, "{body}");
        answer.assert_invalid_token(description);
    }
    // Within the leeway, and an audience among several, pass.
    endpoint.set(Behaviour::Json(with(json!({ "exp": now() - 5, "iat": now() - 60, "aud": ["other", AUDIENCE] }))));
    assert_eq!(call("/me", "opaque".to_owned()).await.status, 200);
}

#[tokio::test]
async fn an_endpoint_that_fails_gets_503_never_401_or_200() {
    let (endpoint, url) = endpoint().await;
    let gate = Arc::new(Semaphore::new(0));
    let (slow, slow_url) = endpoint_with(Some(gate.clone())).await;
    slow.set(Behaviour::Json(active()));
    let refused_url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}/introspect")
    };
    let quick =
        |url: &str| Introspector::builder(url).rules(rules()).timeout(Duration::from_millis(300)).build().unwrap();
    let fails = served(JwtAuthLayer::introspected(quick(&url))).await;
    for behaviour in [
        Behaviour::Status(500, r#"{"error":"server_error"}"#),
        Behaviour::Status(401, r#"{"error":"invalid_client"}"#),
        Behaviour::Status(200, "not json"),
        Behaviour::Status(200, r#"["active", true]"#),
        Behaviour::Status(200, r#"{"active":true,"active":false}"#),
        Behaviour::Html,
        Behaviour::Redirect,
    ] {
        endpoint.set(behaviour);
        let answer = fails("/me", "opaque".to_owned()).await;
        answer.assert_unavailable(UNAVAILABLE);
    }
    let refused = served(JwtAuthLayer::introspected(quick(&refused_url))).await;
    refused("/me", "opaque".to_owned()).await.assert_unavailable(UNAVAILABLE);
    let timed_out = served(JwtAuthLayer::introspected(quick(&slow_url))).await;
    timed_out("/me", "opaque".to_owned()).await.assert_unavailable(UNAVAILABLE);
    assert_eq!(slow.calls(), 1, "the slow endpoint was asked, and its answer never came");
    // A failure is not cached: the endpoint back, the same token passes.
    endpoint.set(Behaviour::Json(active()));
    assert_eq!(fails("/me", "opaque".to_owned()).await.status, 200);
}

#[tokio::test]
async fn a_cached_answer_and_jwts_are_served_while_the_endpoint_fails() {
    let (endpoint, url) = endpoint().await;
    endpoint.set(Behaviour::Json(active()));
    let key = TestKey::generate(Algorithm::ES256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let call = served(JwtAuthLayer::new(validator).introspection(introspector(&url))).await;
    assert_eq!(call("/me", "cached-token".to_owned()).await.status, 200);

    endpoint.set(Behaviour::Status(500, "{}"));
    assert_eq!(call("/me", "cached-token".to_owned()).await.status, 200, "within its TTL");
    call("/me", "new-token".to_owned()).await.assert_unavailable(UNAVAILABLE);
    assert_eq!(call("/me", key.sign(&claims())).await.status, 200, "a JWT needs no endpoint");
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test]
async fn a_hybrid_layer_sends_jwts_to_the_validator_and_only_other_tokens_to_the_endpoint() {
    let (endpoint, url) = endpoint().await;
    // The endpoint would vouch for anything: a JWT that reached it would pass.
    endpoint.set(Behaviour::Json(active()));
    let key = TestKey::generate(Algorithm::ES256);
    let other = TestKey::generate(Algorithm::ES256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let hybrid = served(JwtAuthLayer::new(validator.clone()).introspection(introspector(&url))).await;

    let jwt = hybrid("/me", key.sign(&claims())).await;
    assert_eq!((jwt.status, &jwt.body["introspected"]), (200, &json!(false)));
    hybrid("/me", other.sign(&claims())).await.assert_invalid_token("the token's signature is invalid");
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    hybrid("/me", key.sign(&expired)).await.assert_invalid_token("the token has expired");
    assert_eq!(endpoint.calls(), 0, "no JWT reached the endpoint");

    let opaque = hybrid("/me", "opaque".to_owned()).await;
    assert_eq!((opaque.status, &opaque.body["introspected"]), (200, &json!(true)));
    assert_eq!(endpoint.calls(), 1);

    // A validator alone never takes an opaque token for anything but malformed.
    let local = served(JwtAuthLayer::new(validator)).await;
    local("/me", "opaque".to_owned()).await.assert_invalid_token("the token is malformed");
    // A layer that only introspects refuses JWTs unless told to send them.
    let only = served(JwtAuthLayer::introspected(introspector(&url))).await;
    only("/me", key.sign(&claims())).await.assert_invalid_token("the token's signing key is unknown");
    assert_eq!(endpoint.calls(), 1);
    let all = served(JwtAuthLayer::introspected(introspector(&url)).introspect_jwts()).await;
    assert_eq!(all("/me", other.sign(&claims())).await.status, 200, "the endpoint decides");
    assert_eq!(endpoint.calls(), 2);
}

#[tokio::test]
async fn the_denylist_is_asked_on_every_hit_and_bound_tokens_stay_bound() {
    let (endpoint, url) = endpoint().await;
    endpoint.set(Behaviour::Json(active()));
    let denylist = MemoryDenylist::new();
    let call = served(JwtAuthLayer::introspected(introspector(&url)).denylist(denylist.clone())).await;
    assert_eq!(call("/me", "opaque".to_owned()).await.status, 200);
    denylist.revoke_now("t-1", now() + 300).unwrap();
    call("/me", "opaque".to_owned()).await.assert_invalid_token("the token has been revoked");
    assert_eq!(endpoint.calls(), 1, "the revoked token's answer came from the cache");

    let mut bound = active();
    bound["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
    endpoint.set(Behaviour::Json(bound));
    call("/me", "bound".to_owned())
        .await
        .assert_invalid_token("the token is sender-constrained and cannot be used as a bearer token");
}

#[tokio::test]
async fn concurrent_requests_with_one_token_share_one_call() {
    let gate = Arc::new(Semaphore::new(0));
    let (endpoint, url) = endpoint_with(Some(gate.clone())).await;
    endpoint.set(Behaviour::Json(active()));
    let inner =
        tower::service_fn(|_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) });
    let mut service = tower::Layer::layer(&JwtAuthLayer::<Value>::introspected(introspector(&url)), inner);
    let mut pending = Vec::new();
    for _ in 0..100 {
        let request = http::Request::get("/me").header("authorization", "Bearer shared-token").body(()).unwrap();
        // The layer asks the introspector in `call`: each request has joined the call when this returns.
        pending.push(service.ready().await.unwrap().call(request));
    }
    gate.add_permits(100);
    for response in jwtgate_tests::join_all(pending).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test]
async fn the_cache_is_bounded_by_capacity_by_exp_and_by_the_negative_ttl() {
    let (endpoint, url) = endpoint().await;
    let introspector = Introspector::<Value>::builder(&url).rules(rules()).capacity(3).build().unwrap();
    endpoint.set(Behaviour::Json(active()));
    for n in 0..50 {
        let Introspection::Pending(pending) = introspector.introspect(&format!("token-{n}")) else { panic!() };
        pending.await.unwrap();
    }
    assert!(introspector.cached().0 <= 3, "{:?}", introspector.cached());

    // `exp` within the leeway but passed: accepted, never cached. No `exp`: not cached by default.
    let asked = |introspector: Introspector<Value>, token: &'static str| async move {
        for _ in 0..2 {
            match introspector.introspect(token) {
                Introspection::Pending(pending) => drop(pending.await.unwrap()),
                Introspection::Ready(answer) => drop(answer.unwrap()),
            }
        }
    };
    let mut answer = active();
    answer["exp"] = json!(now() - 5);
    answer["iat"] = json!(now() - 60);
    endpoint.set(Behaviour::Json(answer.clone()));
    let before = endpoint.calls();
    asked(introspector.clone(), "passed-exp").await;
    assert_eq!(endpoint.calls() - before, 2);
    answer.as_object_mut().unwrap().remove("exp");
    endpoint.set(Behaviour::Json(answer));
    asked(introspector.clone(), "no-exp").await;
    assert_eq!(endpoint.calls() - before, 4);
    let keeps = Introspector::<Value>::builder(&url).rules(rules()).cache_without_exp().build().unwrap();
    asked(keeps, "no-exp").await;
    assert_eq!(endpoint.calls() - before, 5, "cached once configured");

    // Refusals are cached apart, for the negative TTL, in a bounded cache of their own.
    endpoint.set(Behaviour::Json(json!({ "active": false })));
    let before = endpoint.calls();
    for n in 0..20 {
        let Introspection::Pending(pending) = introspector.introspect(&format!("garbage-{n}")) else { panic!() };
        assert_eq!(pending.await.unwrap_err().kind(), ErrorKind::Inactive);
    }
    let Introspection::Ready(Err(error)) = introspector.introspect("garbage-19") else { panic!("not cached") };
    assert_eq!(error.kind(), ErrorKind::Inactive);
    assert_eq!(endpoint.calls() - before, 20);
    assert!(introspector.cached().0 <= 3, "refusals do not push active answers out");
}

#[tokio::test]
async fn purge_forgets_a_token_so_that_a_revocation_takes_effect_at_once() {
    let (endpoint, url) = endpoint().await;
    endpoint.set(Behaviour::Json(active()));
    let introspector = introspector(&url);
    let call = served(JwtAuthLayer::introspected(introspector.clone())).await;
    assert_eq!(call("/me", "opaque".to_owned()).await.status, 200);
    endpoint.set(Behaviour::Json(json!({ "active": false })));
    assert_eq!(call("/me", "opaque".to_owned()).await.status, 200, "the cached answer, until its TTL ends");
    introspector.purge("opaque");
    call("/me", "opaque".to_owned()).await.assert_invalid_token("the token is not active");
}

#[tokio::test]
async fn a_purge_during_a_call_keeps_that_calls_answer_out_of_the_cache() {
    let gate = Arc::new(Semaphore::new(0));
    let (endpoint, url) = endpoint_with(Some(gate.clone())).await;
    endpoint.set(Behaviour::Json(active()));
    let introspector = introspector(&url);
    let Introspection::Pending(before) = introspector.introspect("revoked-meanwhile") else { panic!("a call") };
    until_calls(&endpoint, 1).await;
    // The authorization server revokes the token and says so while the call is under way (the endpoint's gate is
    // fair: the first call gets the first permit).
    introspector.purge("revoked-meanwhile");
    let Introspection::Pending(after) = introspector.introspect("revoked-meanwhile") else { panic!("a new call") };
    gate.add_permits(1);
    before.await.unwrap();
    assert_eq!(introspector.cached(), (0, 0), "the answer from before the purge is not kept");
    endpoint.set(Behaviour::Json(json!({ "active": false })));
    gate.add_permits(1);
    assert_eq!(after.await.unwrap_err().kind(), ErrorKind::Inactive, "the call after the purge asked anew");
    assert_eq!(endpoint.calls(), 2);
    let Introspection::Ready(Err(error)) = introspector.introspect("revoked-meanwhile") else { panic!("cached") };
    assert_eq!(error.kind(), ErrorKind::Inactive);
}

#[tokio::test]
async fn limits_refuse_before_any_call() {
    let gate = Arc::new(Semaphore::new(0));
    let (endpoint, url) = endpoint_with(Some(gate.clone())).await;
    endpoint.set(Behaviour::Json(active()));
    let introspector = Introspector::<Value>::builder(&url)
        .rules(rules())
        .max_concurrent_calls(1)
        .max_token_bytes(64)
        .build()
        .unwrap();
    let Introspection::Ready(Err(error)) = introspector.introspect(&"a".repeat(65)) else { panic!() };
    assert_eq!(error.kind(), ErrorKind::TooLarge);
    let Introspection::Pending(first) = introspector.introspect("first") else { panic!() };
    let Introspection::Ready(Err(error)) = introspector.introspect("second") else { panic!("over the limit") };
    assert_eq!(error.kind(), ErrorKind::IntrospectionUnavailable);
    gate.add_permits(1);
    first.await.unwrap();
    assert_eq!(endpoint.calls(), 1);
}

#[tokio::test]
async fn client_secret_post_private_key_jwt_and_bearer_authenticate_the_resource_server() {
    let (endpoint, url) = endpoint().await;
    endpoint.set(Behaviour::Json(active()));
    let ask = |introspector: Introspector<Value>| async move {
        let Introspection::Pending(pending) = introspector.introspect("opaque") else { panic!() };
        pending.await.unwrap();
    };

    ask(Introspector::builder(&url).client_secret_post("api", Secret::new(SECRET)).rules(rules()).build().unwrap())
        .await;
    assert_eq!(endpoint.form("client_id").as_deref(), Some("api"));
    assert_eq!(endpoint.form("client_secret").as_deref(), Some(SECRET));
    assert_eq!(*endpoint.last_authorization.lock().unwrap(), None);

    let key = SigningKey::generate(Algorithm::ES256, "client-key").unwrap();
    let verifier = Validator::builder(KeySet::new([key.verification_key().clone()]).unwrap())
        .issuer("api")
        .audience(url.as_str())
        .build();
    ask(Introspector::builder(&url).private_key_jwt("api", key).rules(rules()).build().unwrap()).await;
    assert_eq!(endpoint.form("client_id").as_deref(), Some("api"));
    assert_eq!(
        endpoint.form("client_assertion_type").as_deref(),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    let assertion = verifier.validate::<Value>(&endpoint.form("client_assertion").unwrap()).unwrap();
    let claims = assertion.claims();
    assert_eq!(
        (&claims["sub"], claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()),
        (&json!("api"), 60)
    );
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 16));

    ask(Introspector::builder(&url).bearer(&Secret::new("rs-token")).rules(rules()).build().unwrap()).await;
    assert_eq!(endpoint.last_authorization.lock().unwrap().as_deref(), Some("Bearer rs-token"));
    assert_eq!(endpoint.form("client_secret"), None);
}

#[tokio::test]
async fn neither_the_token_nor_the_secret_is_logged() {
    let (endpoint, url) = endpoint().await;
    let (logs, _guard) = capture(tracing::Level::TRACE);
    let call = served(JwtAuthLayer::introspected(introspector(&url))).await;
    for behaviour in
        [Behaviour::Json(active()), Behaviour::Status(500, "{}"), Behaviour::Json(json!({ "active": false }))]
    {
        endpoint.set(behaviour);
        call("/me", format!("opaque-secret-token-{}", endpoint.calls())).await;
    }
    let logs = logs.text();
    assert!(logs.contains("token introspection failed"), "{logs}");
    assert!(logs.contains("token introspected"), "{logs}");
    assert!(!logs.contains("opaque-secret-token"), "{logs}");
    assert!(!logs.contains("s3cr3t") && !logs.contains(&STANDARD.encode("resource+server")[..12]), "{logs}");
}

#[test]
fn endpoints_that_are_not_https_are_refused() {
    for (url, message) in [
        (
            "http://auth.example/introspect",
            "http://auth.example/introspect uses http; tokens are introspected over https (plain http only to loopback)",
        ),
        (
            "ftp://auth.example/introspect",
            r#"ftp://auth.example/introspect has the scheme "ftp"; tokens are introspected over https"#,
        ),
    ] {
        let error = Introspector::<Value>::builder(url).build().unwrap_err();
        assert_eq!(error.to_string(), message);
    }
    let debug = format!(
        "{:?}",
        Introspector::<Value>::builder("https://auth.example/introspect?key=abc")
            .client_secret_basic("id", &Secret::new(SECRET))
            .build()
            .unwrap()
    );
    assert!(debug.contains("client_secret_basic") && !debug.contains("s3cr3t") && !debug.contains("abc"), "{debug}");
}

#[tokio::test]
async fn an_endpoint_that_hangs_holds_only_the_requests_that_need_it() {
    let gate = Arc::new(Semaphore::new(1));
    let (endpoint, url) = endpoint_with(Some(gate.clone())).await;
    endpoint.set(Behaviour::Json(active()));
    let key = TestKey::generate(Algorithm::ES256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let introspector = introspector(&url);
    let call = served(JwtAuthLayer::new(validator).introspection(introspector.clone())).await;
    assert_eq!(call("/me", "cached".to_owned()).await.status, 200, "answered with the gate's one permit");

    // The endpoint now hangs: a call for a new token is under way and gets no answer.
    let Introspection::Pending(hanging) = introspector.introspect("hanging") else { panic!("a call") };
    until_calls(&endpoint, 2).await;
    assert_eq!(call("/me", key.sign(&claims())).await.status, 200, "a JWT does not wait for it");
    assert_eq!(call("/me", "cached".to_owned()).await.status, 200, "nor does a cached token");
    gate.add_permits(1);
    hanging.await.unwrap();
    assert_eq!(endpoint.calls(), 2, "no other call was made");
}

/// Waits until the endpoint has taken `calls` calls (at most 5 s).
async fn until_calls(endpoint: &Endpoint, calls: usize) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while endpoint.calls() < calls {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the calls reached the endpoint");
}
