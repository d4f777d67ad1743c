//! DPoP (RFC 9449) over real HTTP: every check of §4.3 refused with its status, challenge and body; the key
//! binding and the bearer downgrade of §7; nonces (§8); replay (§11.1), across two instances sharing a real
//! `redis-server` too; the cache; the URL behind a trusted and an untrusted proxy; and the metadata.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use jwtgate::dpop::{Dpop, DpopNonces, MemoryReplayStore, PendingReplayCheck, ReplayCheck, ReplayError, ReplayStore};
use jwtgate::proxy::TrustedProxies;
use jwtgate::resource::ResourceUri;
use jwtgate::{Algorithm, Claims, JwtAuthLayer, KeySet, Policy, RequireLayer, Secret, Validator};
use jwtgate_test::DpopKey;
use jwtgate_tests::{Answer, ISSUER, RedisServer, TestKey, claims, now};
use serde_json::{Value, json};

const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/orders";
const METADATA: &str = "https://api.example.com/.well-known/oauth-protected-resource";
const ALGS: &str = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA";

/// An app behind a DPoP layer: `/orders` for any valid token, `/scoped` needing `orders:write`.
struct App {
    base: String,
    http: reqwest::Client,
}

impl App {
    async fn start(
        issuer: &TestKey,
        dpop: Dpop,
        configure: impl FnOnce(JwtAuthLayer<Value>) -> JwtAuthLayer<Value>,
    ) -> Self {
        let resource = ResourceUri::parse(ORIGIN).unwrap();
        let validator = Validator::builder(KeySet::new([issuer.verification_key()]).unwrap())
            .issuer(ISSUER)
            .audience(resource.clone())
            .build();
        let layer = configure(JwtAuthLayer::<Value>::new(validator).resource(resource).dpop(dpop));
        let metadata = layer.metadata().unwrap().into_service().unwrap();
        let mut app = Router::new()
            .route("/orders", get(subject).post(subject))
            .route("/scoped", get(subject).route_layer(RequireLayer::new(Policy::scope("orders:write"))))
            .layer(layer);
        for path in metadata.paths() {
            app = app.route_service(path, metadata.clone());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base: format!("http://{addr}"), http: reqwest::Client::new() }
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, headers, body }
    }

    /// `GET /orders` with `token` under the `DPoP` scheme and `proof`.
    async fn dpop(&self, token: &str, proof: &str) -> Answer {
        self.send("GET", "/orders", &[("authorization", &format!("DPoP {token}")), ("dpop", proof)]).await
    }

    async fn bearer(&self, token: &str) -> Answer {
        self.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await
    }
}

async fn subject(claims: Claims<Value>) -> String {
    claims.registered().subject().unwrap_or_default().to_owned()
}

fn token(issuer: &TestKey, client: Option<&DpopKey>, scope: &str) -> String {
    let mut claims = claims();
    claims["aud"] = json!(ORIGIN);
    claims["scope"] = json!(scope);
    if let Some(client) = client {
        claims["cnf"] = json!({ "jkt": client.thumbprint() });
    }
    issuer.sign(&claims)
}

fn all_values(answer: &Answer, name: &str) -> Vec<String> {
    answer.headers.get_all(name).iter().map(|value| value.to_str().unwrap().to_owned()).collect()
}

/// 401 with `DPoP error="<error>"`, `description` in the challenge and the JSON body, `algs`, and the
/// metadata URL.
#[track_caller]
fn assert_dpop_refusal(answer: &Answer, error: &str, description: &str) {
    assert_eq!(answer.status, 401, "{description}: {}", answer.body);
    assert_eq!(
        all_values(answer, "www-authenticate"),
        [format!(
            r#"DPoP error="{error}", error_description="{description}", algs="{ALGS}", resource_metadata="{METADATA}""#
        )],
    );
    assert_eq!(answer.body, json!({ "error": error, "error_description": description }));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

#[track_caller]
fn assert_bad_proof(answer: &Answer, description: &str) {
    assert_dpop_refusal(answer, "invalid_dpop_proof", description);
}

async fn allowed(issuer: &TestKey) -> App {
    App::start(issuer, Dpop::allowed(ORIGIN).unwrap(), |layer| layer).await
}

#[tokio::test]
async fn a_bound_token_with_a_fresh_proof_is_accepted_for_every_method() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let app = allowed(&issuer).await;
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let client = DpopKey::generate(alg);
        let token = token(&issuer, Some(&client), "");
        let proof = client.proof("GET", URL).access_token(&token).build();
        let answer = app.dpop(&token, &proof).await;
        assert_eq!((answer.status, answer.body.clone()), (200, json!("user-1")), "{alg:?}");
        // htu is compared without query, scheme and host without case, the default port elided.
        let proof = client.proof("POST", "HTTPS://API.example.com:443/orders?page=2").access_token(&token).build();
        let answer =
            app.send("POST", "/orders?page=3", &[("authorization", &format!("dpop {token}")), ("dpop", &proof)]).await;
        assert_eq!(answer.status, 200, "{alg:?}: {}", answer.body);
    }
}

#[tokio::test]
async fn every_check_of_the_proof_is_refused_with_invalid_dpop_proof() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let app = allowed(&issuer).await;
    let client = DpopKey::generate(Algorithm::ES256);
    let other = DpopKey::generate(Algorithm::ES256);
    let token = token(&issuer, Some(&client), "");
    let good = || client.proof("GET", URL).access_token(&token);
    let hs256 = TestKey::generate(Algorithm::HS256);
    let mut private_jwk = client.public_jwk().clone();
    private_jwk["d"] = json!("AAAA");
    let foreign_signature = {
        // The header names the client's key; the signature is another key's.
        let proof = good().build();
        let forged = other.proof("GET", URL).access_token(&token).header("jwk", client.public_jwk().clone()).build();
        let (input, _) = proof.rsplit_once('.').unwrap();
        let (_, signature) = forged.rsplit_once('.').unwrap();
        format!("{input}.{signature}")
    };
    let unsigned = {
        let proof = good().header("alg", "none").build();
        let (input, _) = proof.rsplit_once('.').unwrap();
        format!("{input}.")
    };
    let cases: Vec<(&str, String)> = vec![
        ("the DPoP proof is malformed", "not-a-jws".to_owned()),
        ("the DPoP proof is malformed", format!("{}.extra", good().build())),
        ("the DPoP proof's typ is not dpop+jwt", good().header("typ", "JWT").build()),
        ("the DPoP proof's typ is not dpop+jwt", good().without_header("typ").build()),
        ("the DPoP proof's algorithm is not accepted", unsigned),
        (
            "the DPoP proof's algorithm is not accepted",
            hs256.sign_raw(
                &json!({ "typ": "dpop+jwt", "alg": "HS256", "jwk": client.public_jwk() }).to_string(),
                &json!({ "jti": "x", "htm": "GET", "htu": URL, "iat": now() }).to_string(),
            ),
        ),
        ("the DPoP proof's jwk is not an acceptable public key", good().without_header("jwk").build()),
        ("the DPoP proof's jwk is not an acceptable public key", good().header("jwk", private_jwk).build()),
        ("the DPoP proof's signature is invalid", foreign_signature),
        ("the DPoP proof lacks a required claim", good().without("jti").build()),
        ("the DPoP proof lacks a required claim", good().without("htm").build()),
        ("the DPoP proof lacks a required claim", good().without("htu").build()),
        ("the DPoP proof lacks a required claim", good().without("iat").build()),
        ("the DPoP proof's htm does not match the request", client.proof("POST", URL).access_token(&token).build()),
        ("the DPoP proof's htm does not match the request", client.proof("get", URL).access_token(&token).build()),
        (
            "the DPoP proof's htu does not match the request",
            client.proof("GET", "https://api.example.com/scoped").access_token(&token).build(),
        ),
        (
            "the DPoP proof's htu does not match the request",
            client.proof("GET", "https://other.example.com/orders").access_token(&token).build(),
        ),
        ("the DPoP proof's iat is outside the accepted window", good().issued_at(now() - 120).build()),
        ("the DPoP proof's iat is outside the accepted window", good().issued_at(now() + 120).build()),
        ("the DPoP proof's ath does not match the access token", client.proof("GET", URL).build()),
        (
            "the DPoP proof's ath does not match the access token",
            client.proof("GET", URL).access_token("another.access.token").build(),
        ),
    ];
    for (description, proof) in &cases {
        assert_bad_proof(&app.dpop(&token, proof).await, description);
    }
    // No proof, and two.
    let answer = app.send("GET", "/orders", &[("authorization", &format!("DPoP {token}"))]).await;
    assert_bad_proof(&answer, "the request has no DPoP proof");
    let (a, b) = (good().build(), good().build());
    let answer =
        app.send("GET", "/orders", &[("authorization", &format!("DPoP {token}")), ("dpop", &a), ("dpop", &b)]).await;
    assert_bad_proof(&answer, "the request has more than one DPoP proof");
    // After all those refusals, a good proof still passes.
    assert_eq!(app.dpop(&token, &good().build()).await.status, 200);
}

#[tokio::test]
async fn a_proof_is_accepted_once() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let app = allowed(&issuer).await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = token(&issuer, Some(&client), "");
    let proof = client.proof("GET", URL).access_token(&token).build();
    assert_eq!(app.dpop(&token, &proof).await.status, 200);
    assert_bad_proof(&app.dpop(&token, &proof).await, "the DPoP proof was used before");
}

#[tokio::test]
async fn the_token_must_be_bound_to_the_proofs_key() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let app = allowed(&issuer).await;
    let client = DpopKey::generate(Algorithm::ES256);
    let other = DpopKey::generate(Algorithm::ES256);
    for token in [token(&issuer, None, ""), token(&issuer, Some(&other), "")] {
        let proof = client.proof("GET", URL).access_token(&token).build();
        assert_dpop_refusal(
            &app.dpop(&token, &proof).await,
            "invalid_token",
            "the token is not bound to the DPoP proof's key",
        );
    }
    // A bad token under the DPoP scheme is an invalid_token of that scheme.
    let forged = format!("{}x", token(&issuer, Some(&client), ""));
    let proof = client.proof("GET", URL).access_token(&forged).build();
    assert_dpop_refusal(&app.dpop(&forged, &proof).await, "invalid_token", "the token's signature is invalid");
}

#[tokio::test]
async fn a_bound_token_is_never_accepted_as_a_bearer_token() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let client = DpopKey::generate(Algorithm::ES256);
    let bound = token(&issuer, Some(&client), "");
    let description = "the token is sender-constrained and cannot be used as a bearer token";
    let expected =
        format!(r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{METADATA}""#);
    let app = allowed(&issuer).await;
    let answer = app.bearer(&bound).await;
    assert_eq!(answer.status, 401);
    assert_eq!(all_values(&answer, "www-authenticate"), std::slice::from_ref(&expected));
    assert_eq!(answer.body, json!({ "error": "invalid_token", "error_description": description }));
    // An unbound token as a bearer token is fine in allowed mode.
    assert_eq!(app.bearer(&token(&issuer, None, "")).await.status, 200);
    // Bound by a method nothing here checks (a `jwk`), or an empty `cnf`: no bearer token either, and no DPoP one.
    for cnf in [json!({ "jwk": client.public_jwk() }), json!({})] {
        let mut claims = claims();
        claims["aud"] = json!(ORIGIN);
        claims["cnf"] = cnf.clone();
        let other = issuer.sign(&claims);
        let answer = app.bearer(&other).await;
        assert_eq!((answer.status, &answer.body["error_description"]), (401, &json!(description)), "{cnf}");
        let proof = client.proof("GET", URL).access_token(&other).build();
        assert_dpop_refusal(
            &app.dpop(&other, &proof).await,
            "invalid_token",
            "the token is not bound to the DPoP proof's key",
        );
    }

    // With DPoP off, too.
    let resource = ResourceUri::parse(ORIGIN).unwrap();
    let validator = Validator::builder(KeySet::new([issuer.verification_key()]).unwrap())
        .issuer(ISSUER)
        .audience(resource.clone())
        .build();
    let app =
        Router::new().route("/orders", get(subject)).layer(JwtAuthLayer::<Value>::new(validator).resource(resource));
    let base = format!("http://{}", jwtgate_tests::serve(app).await);
    let http = reqwest::Client::new();
    let auth = format!("Bearer {bound}");
    let answer = jwtgate_tests::get(&http, &format!("{base}/orders"), &[("authorization", &auth)]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(all_values(&answer, "www-authenticate"), [expected]);
    // And the DPoP scheme is then just another scheme: no credentials.
    let proof = client.proof("GET", URL).access_token(&bound).build();
    let auth = format!("DPoP {bound}");
    let answer =
        jwtgate_tests::get(&http, &format!("{base}/orders"), &[("authorization", &auth), ("dpop", &proof)]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(all_values(&answer, "www-authenticate"), [format!(r#"Bearer resource_metadata="{METADATA}""#)]);
}

#[tokio::test]
async fn without_credentials_both_schemes_are_offered_unless_dpop_is_required() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let app = allowed(&issuer).await;
    let answer = app.send("GET", "/orders", &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        all_values(&answer, "www-authenticate"),
        [
            format!(r#"Bearer resource_metadata="{METADATA}""#),
            format!(r#"DPoP algs="{ALGS}", resource_metadata="{METADATA}""#),
        ]
    );
    assert_eq!(answer.body, json!({ "error": "unauthorized", "error_description": "no bearer token was sent" }));

    let dpop = Dpop::required(ORIGIN).unwrap().algorithms([Algorithm::ES256, Algorithm::EdDSA]).unwrap();
    let app = App::start(&issuer, dpop, |layer| layer).await;
    let answer = app.send("GET", "/orders", &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        all_values(&answer, "www-authenticate"),
        [format!(r#"DPoP algs="ES256 EdDSA", resource_metadata="{METADATA}""#)]
    );
}

#[tokio::test]
async fn required_mode_refuses_bearer_tokens_and_unbound_tokens_with_a_dpop_challenge() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let app = App::start(&issuer, Dpop::required(ORIGIN).unwrap(), |layer| layer).await;
    let client = DpopKey::generate(Algorithm::ES256);
    let answer = app.bearer(&token(&issuer, None, "")).await;
    assert_dpop_refusal(&answer, "invalid_token", "the resource accepts DPoP-bound tokens only");
    let unbound = token(&issuer, None, "");
    let proof = client.proof("GET", URL).access_token(&unbound).build();
    assert_dpop_refusal(
        &app.dpop(&unbound, &proof).await,
        "invalid_token",
        "the token is not bound to the DPoP proof's key",
    );
    let bound = token(&issuer, Some(&client), "");
    let proof = client.proof("GET", URL).access_token(&bound).build();
    assert_eq!(app.dpop(&bound, &proof).await.status, 200);
}

#[tokio::test]
async fn a_missing_scope_under_dpop_is_a_dpop_insufficient_scope() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let app = allowed(&issuer).await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = token(&issuer, Some(&client), "orders:read");
    let proof = client.proof("GET", "https://api.example.com/scoped").access_token(&token).build();
    let answer = app.send("GET", "/scoped", &[("authorization", &format!("DPoP {token}")), ("dpop", &proof)]).await;
    assert_eq!(answer.status, 403);
    let description = "the token does not grant access to this resource";
    assert_eq!(
        all_values(&answer, "www-authenticate"),
        [format!(
            r#"DPoP error="insufficient_scope", error_description="{description}", scope="orders:write", algs="{ALGS}", resource_metadata="{METADATA}""#
        )]
    );
    assert_eq!(answer.body, json!({ "error": "insufficient_scope", "error_description": description }));
}

#[tokio::test]
async fn a_missing_or_stale_nonce_gets_a_fresh_one_and_the_retry_passes() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let nonces = DpopNonces::new(&Secret::new(vec![9; 32])).unwrap();
    let app = App::start(&issuer, Dpop::allowed(ORIGIN).unwrap().nonces(nonces.clone()), |layer| layer).await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = token(&issuer, Some(&client), "");
    let description = "the DPoP proof must carry a nonce this server issued";
    let mut stale = nonces.issue_at(now() - 120);
    for proof in [
        client.proof("GET", URL).access_token(&token).build(),
        client.proof("GET", URL).access_token(&token).nonce(&stale).build(),
        client.proof("GET", URL).access_token(&token).nonce("made-up").build(),
    ] {
        let answer = app.dpop(&token, &proof).await;
        assert_dpop_refusal(&answer, "use_dpop_nonce", description);
        stale = answer.header("dpop-nonce").expect("a fresh nonce").to_owned();
        assert!(nonces.accepts_at(&stale, now()));
    }
    let proof = client.proof("GET", URL).access_token(&token).nonce(&stale).build();
    let answer = app.dpop(&token, &proof).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // A nonce of the current period is not renewed; one of the previous period, still good, is.
    let current = nonces.issue_at(now());
    let proof = client.proof("GET", URL).access_token(&token).nonce(&current).build();
    let answer = app.dpop(&token, &proof).await;
    assert_eq!((answer.status, answer.header("dpop-nonce")), (200, None));
    let previous = nonces.issue_at(now() - 30);
    assert!(nonces.accepts_at(&previous, now()) && previous != current, "the previous period's nonce");
    let proof = client.proof("GET", URL).access_token(&token).nonce(&previous).build();
    let answer = app.dpop(&token, &proof).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("dpop-nonce"), Some(nonces.issue_at(now()).as_str()));
}

#[tokio::test]
async fn a_cache_hit_still_needs_a_fresh_bound_proof() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let app = App::start(&issuer, Dpop::allowed(ORIGIN).unwrap(), |layer| layer.cache(100)).await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = token(&issuer, Some(&client), "");
    let first = client.proof("GET", URL).access_token(&token).build();
    assert_eq!(app.dpop(&token, &first).await.status, 200);
    let second = client.proof("GET", URL).access_token(&token).build();
    assert_eq!(app.dpop(&token, &second).await.status, 200, "cached, with a new proof");
    assert_bad_proof(&app.dpop(&token, &second).await, "the DPoP proof was used before");
    let thief = DpopKey::generate(Algorithm::ES256);
    let stolen = thief.proof("GET", URL).access_token(&token).build();
    assert_dpop_refusal(
        &app.dpop(&token, &stolen).await,
        "invalid_token",
        "the token is not bound to the DPoP proof's key",
    );
    let answer = app.bearer(&token).await;
    assert_eq!(answer.status, 401, "a cached bound token is still no bearer token");
}

/// A replay store that cannot answer, as a Redis that is down.
struct DownStore;

impl ReplayStore for DownStore {
    fn record(&self, _jkt: &str, _jti: &str, _until: i64) -> ReplayCheck {
        let pending: PendingReplayCheck = Box::pin(async { Err(ReplayError::unavailable("connection refused")) });
        ReplayCheck::Pending(pending)
    }
}

#[tokio::test]
async fn a_replay_store_that_is_down_or_full_refuses_with_503_never_200() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let client = DpopKey::generate(Algorithm::ES256);
    let token = token(&issuer, Some(&client), "");
    let description = "the DPoP proof could not be checked for replay; try again later";
    let app = App::start(&issuer, Dpop::allowed(ORIGIN).unwrap().replay_store(DownStore), |layer| layer).await;
    let proof = client.proof("GET", URL).access_token(&token).build();
    app.dpop(&token, &proof).await.assert_unavailable(description);

    let full = MemoryReplayStore::with_limits(1, 1);
    let app = App::start(&issuer, Dpop::allowed(ORIGIN).unwrap().replay_store(full), |layer| layer).await;
    let proof = client.proof("GET", URL).access_token(&token).build();
    assert_eq!(app.dpop(&token, &proof).await.status, 200);
    let proof = client.proof("GET", URL).access_token(&token).build();
    app.dpop(&token, &proof).await.assert_unavailable(description);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proof_used_on_one_instance_is_refused_by_another_sharing_redis() {
    let redis = RedisServer::start();
    let issuer = TestKey::generate(Algorithm::ES256);
    let store = || jwtgate::redis::RedisReplayStore::new(&redis.url()).unwrap();
    let a = App::start(&issuer, Dpop::allowed(ORIGIN).unwrap().replay_store(store()), |layer| layer).await;
    let b = App::start(&issuer, Dpop::allowed(ORIGIN).unwrap().replay_store(store()), |layer| layer).await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = token(&issuer, Some(&client), "");
    let proof = client.proof("GET", URL).access_token(&token).build();
    assert_eq!(a.dpop(&token, &proof).await.status, 200);
    assert_bad_proof(&b.dpop(&token, &proof).await, "the DPoP proof was used before");
    let fresh = client.proof("GET", URL).access_token(&token).build();
    assert_eq!(b.dpop(&token, &fresh).await.status, 200);
    assert_bad_proof(&a.dpop(&token, &fresh).await, "the DPoP proof was used before");
    // Redis gone: 503, never a proof accepted unchecked.
    drop(redis);
    let proof = client.proof("GET", URL).access_token(&token).build();
    a.dpop(&token, &proof).await.assert_unavailable("the DPoP proof could not be checked for replay; try again later");
}

fn proxies(networks: &[&str]) -> TrustedProxies {
    TrustedProxies::new(networks, |extensions| extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()))
        .unwrap()
}

#[tokio::test]
async fn the_url_comes_from_a_trusted_proxy_only() {
    let issuer = TestKey::generate(Algorithm::ES256);
    let client = DpopKey::generate(Algorithm::ES256);
    let token = token(&issuer, Some(&client), "");
    let forwarded = "https://edge.example.net/orders";
    let headers = |proof: &str| {
        [
            ("authorization", format!("DPoP {token}")),
            ("dpop", proof.to_owned()),
            ("x-forwarded-proto", "https".to_owned()),
            ("x-forwarded-host", "edge.example.net".to_owned()),
        ]
    };
    let send = async |app: &App, proof: &str| {
        let headers = headers(proof);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
        app.send("GET", "/orders", &headers).await
    };
    // The test client connects from 127.0.0.1.
    let trusted =
        App::start(&issuer, Dpop::allowed(ORIGIN).unwrap().trusted_proxies(proxies(&["127.0.0.0/8"])), |l| l).await;
    let proof = client.proof("GET", forwarded).access_token(&token).build();
    assert_eq!(send(&trusted, &proof).await.status, 200);
    let proof = client.proof("GET", URL).access_token(&token).build();
    assert_bad_proof(&send(&trusted, &proof).await, "the DPoP proof's htu does not match the request");

    let untrusted =
        App::start(&issuer, Dpop::allowed(ORIGIN).unwrap().trusted_proxies(proxies(&["10.0.0.0/8"])), |l| l).await;
    let proof = client.proof("GET", forwarded).access_token(&token).build();
    assert_bad_proof(&send(&untrusted, &proof).await, "the DPoP proof's htu does not match the request");
    let proof = client.proof("GET", URL).access_token(&token).build();
    assert_eq!(send(&untrusted, &proof).await.status, 200, "the configured origin");
}

#[tokio::test]
async fn the_metadata_advertises_dpop() {
    let issuer = TestKey::generate(Algorithm::ES256);
    for (dpop, required) in [(Dpop::allowed(ORIGIN).unwrap(), false), (Dpop::required(ORIGIN).unwrap(), true)] {
        let app = App::start(&issuer, dpop.algorithms([Algorithm::ES256]).unwrap(), |layer| layer).await;
        let answer = app.send("GET", "/.well-known/oauth-protected-resource", &[]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["dpop_signing_alg_values_supported"], json!(["ES256"]));
        assert_eq!(answer.body["dpop_bound_access_tokens_required"], json!(required));
    }
}

#[test]
fn dpop_settings_refuse_what_cannot_work() {
    assert!(Dpop::allowed("https://api.example.com/path").is_err());
    assert!(Dpop::allowed(ORIGIN).unwrap().algorithms([Algorithm::HS256]).is_err());
    assert!(DpopNonces::new(&Secret::new(vec![1; 16])).is_err());
}

/// A tonic health service behind a DPoP layer, and a client that calls it with a token and a proof.
mod grpc {
    use tonic::metadata::MetadataValue;
    use tonic::transport::server::TcpIncoming;
    use tonic::transport::{Channel, Server};
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;

    const METHOD_URL: &str = "https://api.example.com/grpc.health.v1.Health/Check";

    async fn check(addr: SocketAddr, token: &str, proof: &str) -> Result<(), tonic::Status> {
        let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
        let metadata = request.metadata_mut();
        metadata.insert("authorization", MetadataValue::try_from(format!("DPoP {token}")).unwrap());
        metadata.insert("dpop", MetadataValue::try_from(proof).unwrap());
        HealthClient::new(channel).check(request).await.map(|_| ())
    }

    #[tokio::test]
    async fn a_grpc_call_is_proved_with_htu_the_methods_url() {
        let issuer = TestKey::generate(Algorithm::ES256);
        let resource = ResourceUri::parse(ORIGIN).unwrap();
        let validator = Validator::builder(KeySet::new([issuer.verification_key()]).unwrap())
            .issuer(ISSUER)
            .audience(resource)
            .build();
        let layer = JwtAuthLayer::<Value>::new(validator).dpop(Dpop::required(ORIGIN).unwrap());
        let (_reporter, health) = tonic_health::server::health_reporter();
        let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        tokio::spawn(Server::builder().layer(layer).add_service(health).serve_with_incoming(incoming));

        let client = DpopKey::generate(Algorithm::ES256);
        let token = token(&issuer, Some(&client), "");
        let proof = client.proof("POST", METHOD_URL).access_token(&token).build();
        check(addr, &token, &proof).await.unwrap();
        let status = check(addr, &token, &proof).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (tonic::Code::Unauthenticated, "the DPoP proof was used before"));
        let www_authenticate = status.metadata().get("www-authenticate").unwrap().to_str().unwrap();
        assert!(www_authenticate.starts_with(r#"DPoP error="invalid_dpop_proof""#), "{www_authenticate}");
        let proof =
            client.proof("POST", "https://api.example.com/grpc.health.v1.Health/Watch").access_token(&token).build();
        let status = check(addr, &token, &proof).await.unwrap_err();
        assert_eq!(status.message(), "the DPoP proof's htu does not match the request");
    }
}

/// jwtgate as its own authorization server: a token endpoint that binds tokens to the key of the proof that
/// came with the request (RFC 9449 §5), and an API behind the same `Dpop`.
mod issuer {
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use jwtgate::keys::SigningKey;
    use jwtgate::session::{MemoryRefreshStore, Sessions, TokenIssuer};
    use jwtgate::sources::RequestHead;
    use std::sync::Arc;

    use axum::http::Request;
    use jwtgate::ErrorKind;

    use super::*;

    type Shared = Arc<(Dpop, Sessions<MemoryRefreshStore>)>;

    fn refusal(kind: ErrorKind, description: &str) -> Response {
        let error = match kind {
            ErrorKind::UseDpopNonce => "use_dpop_nonce",
            ErrorKind::ReplayUnavailable => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
            _ => "invalid_dpop_proof",
        };
        (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": error, "error_description": description })))
            .into_response()
    }

    /// `POST /token`: signs alice in, binding her tokens to the proof's key if a proof came.
    async fn token(state: axum::extract::State<Shared>, request: Request<Body>) -> Response {
        let (dpop, sessions) = &**state;
        let jkt = match dpop.check_token_request(&RequestHead::new(&request)).await {
            Ok(jkt) => jkt,
            Err(error) => return refusal(error.kind(), error.description()),
        };
        let pair = match &jkt {
            Some(jkt) => sessions.login_bound("alice", &json!({}), jkt).await,
            None => sessions.login("alice", &json!({})).await,
        }
        .unwrap();
        let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
        axum::Json(json!({
            "access_token": pair.access.token(),
            "refresh_token": pair.refresh.as_str(),
            "token_type": token_type,
        }))
        .into_response()
    }

    /// `POST /refresh` with the refresh token as the body.
    async fn refresh(state: axum::extract::State<Shared>, request: Request<Body>) -> Response {
        let (dpop, sessions) = &**state;
        let jkt = match dpop.check_token_request(&RequestHead::new(&request)).await {
            Ok(jkt) => jkt,
            Err(error) => return refusal(error.kind(), error.description()),
        };
        let body = axum::body::to_bytes(request.into_body(), 1024).await.unwrap();
        let presented = String::from_utf8(body.to_vec()).unwrap();
        match sessions.refresh_bound(&presented, jkt.as_deref(), |_| Some(json!({}))).await {
            Ok(pair) => axum::Json(json!({
                "access_token": pair.access.token(),
                "refresh_token": pair.refresh.as_str(),
            }))
            .into_response(),
            Err(error) => (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "error": "invalid_grant", "error_description": error.to_string() })),
            )
                .into_response(),
        }
    }

    async fn start() -> String {
        let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "k").unwrap())
            .audience(ORIGIN)
            .build()
            .unwrap();
        let validator = Validator::builder(issuer.clone()).issuer(ISSUER).audience(ORIGIN).build();
        let dpop = Dpop::allowed(ORIGIN).unwrap();
        let layer = JwtAuthLayer::<Value>::new(validator).dpop(dpop.clone());
        let shared: Shared = Arc::new((dpop, Sessions::new(issuer, MemoryRefreshStore::new())));
        let app = Router::new()
            .route("/orders", get(subject).layer(layer))
            .route("/token", post(token))
            .route("/refresh", post(refresh))
            .with_state(shared);
        format!("http://{}", jwtgate_tests::serve(app).await)
    }

    async fn post_with(base: &str, path: &str, proof: Option<&str>, body: &str) -> (u16, Value) {
        let mut request = reqwest::Client::new().post(format!("{base}{path}")).body(body.to_owned());
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().await.unwrap()).unwrap())
    }

    async fn orders(base: &str, client: &DpopKey, token: &str) -> u16 {
        let proof = client.proof("GET", URL).access_token(token).build();
        let auth = format!("DPoP {token}");
        jwtgate_tests::get(
            &reqwest::Client::new(),
            &format!("{base}/orders"),
            &[("authorization", &auth), ("dpop", &proof)],
        )
        .await
        .status
    }

    #[tokio::test]
    async fn the_token_endpoint_binds_both_tokens_to_the_proofs_key() {
        let base = start().await;
        let client = DpopKey::generate(Algorithm::ES256);
        let proof = client.proof("POST", "https://api.example.com/token").build();
        let (status, pair) = post_with(&base, "/token", Some(&proof), "").await;
        assert_eq!((status, &pair["token_type"]), (200, &json!("DPoP")), "{pair}");
        let access = pair["access_token"].as_str().unwrap();
        assert_eq!(orders(&base, &client, access).await, 200);
        let thief = DpopKey::generate(Algorithm::ES256);
        assert_eq!(orders(&base, &thief, access).await, 401);
        // The proof of the token request is used up.
        let (status, body) = post_with(&base, "/token", Some(&proof), "").await;
        assert_eq!((status, &body["error"]), (400, &json!("invalid_dpop_proof")));
        // A proof for another endpoint.
        let wrong = client.proof("POST", "https://api.example.com/refresh").build();
        assert_eq!(post_with(&base, "/token", Some(&wrong), "").await.0, 400);

        // Refresh with a proof of the same key: a new pair, still bound.
        let refresh_url = "https://api.example.com/refresh";
        let refresh_token = pair["refresh_token"].as_str().unwrap();
        let proof = client.proof("POST", refresh_url).build();
        let (status, next) = post_with(&base, "/refresh", Some(&proof), refresh_token).await;
        assert_eq!(status, 200, "{next}");
        assert_eq!(orders(&base, &client, next["access_token"].as_str().unwrap()).await, 200);
        // With the thief's key: refused, and the whole session ends.
        let stolen = next["refresh_token"].as_str().unwrap();
        let (status, body) =
            post_with(&base, "/refresh", Some(&thief.proof("POST", refresh_url).build()), stolen).await;
        assert_eq!(status, 401, "{body}");
        let (status, _) = post_with(&base, "/refresh", Some(&client.proof("POST", refresh_url).build()), stolen).await;
        assert_eq!(status, 401, "the family is revoked");

        // Without a proof, the tokens are plain bearer tokens.
        let (status, pair) = post_with(&base, "/token", None, "").await;
        assert_eq!((status, &pair["token_type"]), (200, &json!("Bearer")));
    }
}
