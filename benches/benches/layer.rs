//! Per-request cost of authentication, in process, side by side in one run:
//!
//! - `no_auth`: axum with no authentication;
//! - `naive`: an axum middleware calling `jsonwebtoken::decode` with a `Validation` built per request, as
//!   most peers do (the decoding key is built once);
//! - `jwt_authorizer`: jwt-authorizer 0.15 (on axum 0.7), and `no_auth_axum07`, axum 0.7 alone, its baseline;
//! - `jwtgate`: `JwtAuthLayer`;
//! - `jwtgate_cached`: `JwtAuthLayer` with a validated-token cache, which the same token hits every time.
//!
//! A second group, `denylist/HS256`, adds the revocation check: none, `MemoryDenylist`, `ReplicatedDenylist`
//! and `RedisDenylist` against a `redis-server` it starts on loopback, each also with the cache; and
//! `denylist/lookup` measures the three lookups alone, each denylist holding the same 10,000 revocations.
//!
//! A third group, `keys/<alg>`, compares a static key with a `RemoteKeySet` whose keys were fetched from a
//! JWKS server (on its own thread, on loopback) and are cached.
//!
//! A fourth group, `floor/HS256`, takes the router away and splits a validation into its parts: the HMAC
//! alone; the least any validator must do (decode the claims set and the signature, deserialize the claims
//! type, check the HMAC); jwtgate's `Validator::validate`; and `jsonwebtoken::decode` with a prebuilt
//! `Validation`. Run it with `request/HS256` to see, in one run, what the router and the layer add.
//!
//! Every case runs the same handler behind a router, for the same request with the same token, and
//! deserializes the same claims type. Run with `cargo bench -p jwtgate-benches`.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout, reason = "benchmark code")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_tests::bench::{BenchClaims, bench_claims};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, now};
use serde_json::json;
use tower::ServiceExt;

async fn handler() -> &'static str {
    "ok"
}

fn request(token: &str) -> Request<Body> {
    Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
}

fn no_auth() -> Router {
    Router::new().route("/", get(handler))
}

fn jwtgate_validator(key: &TestKey) -> Validator {
    Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build()
}

fn jwtgate_layer(key: &TestKey) -> JwtAuthLayer<BenchClaims> {
    JwtAuthLayer::new(jwtgate_validator(key))
}

fn with_layer(layer: JwtAuthLayer<BenchClaims>) -> Router {
    Router::new().route("/", get(handler)).layer(layer)
}

/// What most peers do: `jsonwebtoken::decode`, with the `Validation` built for every request.
fn naive(key: &TestKey) -> Router {
    let alg: jsonwebtoken::Algorithm = key.alg().as_str().parse().unwrap();
    let decoding = Arc::new(match key.secret() {
        Some(secret) => jsonwebtoken::DecodingKey::from_secret(secret),
        None => {
            let pem = key.public_pem().unwrap();
            match key.alg() {
                Algorithm::ES256 | Algorithm::ES384 => jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()),
                Algorithm::EdDSA => jsonwebtoken::DecodingKey::from_ed_pem(pem.as_bytes()),
                _ => jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()),
            }
            .unwrap()
        }
    });
    let middleware = move |mut request: Request<Body>, next: axum::middleware::Next| {
        let decoding = decoding.clone();
        async move {
            let token = request
                .headers()
                .get("authorization")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            let mut validation = jsonwebtoken::Validation::new(alg);
            validation.set_issuer(&[ISSUER]);
            validation.set_audience(&[AUDIENCE]);
            match token.map(|token| jsonwebtoken::decode::<BenchClaims>(token, &decoding, &validation)) {
                Some(Ok(data)) => {
                    request.extensions_mut().insert(Arc::new(data.claims));
                    next.run(request).await
                }
                _ => axum::response::IntoResponse::into_response(http::StatusCode::UNAUTHORIZED),
            }
        }
    };
    Router::new().route("/", get(handler)).layer(axum::middleware::from_fn(middleware))
}

async fn jwt_authorizer(key: &TestKey, secret_text: &str) -> axum07::Router {
    use jwt_authorizer::{IntoLayer, JwtAuthorizer, Validation};
    let builder = match key.alg() {
        Algorithm::HS256 => JwtAuthorizer::<BenchClaims>::from_secret(secret_text),
        Algorithm::ES256 => JwtAuthorizer::from_ec_pem_text(&key.public_pem().unwrap()),
        Algorithm::EdDSA => JwtAuthorizer::from_ed_pem_text(&key.public_pem().unwrap()),
        _ => JwtAuthorizer::from_rsa_pem_text(&key.public_pem().unwrap()),
    };
    let authorizer = builder.validation(Validation::new().iss(&[ISSUER]).aud(&[AUDIENCE])).build().await.unwrap();
    axum07::Router::new().route("/", axum07::routing::get(handler)).layer(authorizer.into_layer())
}

fn bench(c: &mut Criterion) {
    // This build enables jsonwebtoken's two backends (through the test helpers), so the naive case names
    // its provider, as a user in that situation must. jwtgate never needs to.
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let secret_text = "bench-only secret: 0123456789abcdef0123456789abcdef";

    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key = match alg {
            Algorithm::HS256 => TestKey::hmac_with_secret(alg, secret_text.as_bytes()),
            _ => TestKey::generate(alg),
        };
        let token = key.sign(&bench_claims());
        let mut group = c.benchmark_group(format!("request/{alg}"));
        group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));

        let cases: [(&str, Router); 4] = [
            ("no_auth", no_auth()),
            ("naive", naive(&key)),
            ("jwtgate", with_layer(jwtgate_layer(&key))),
            ("jwtgate_cached", with_layer(jwtgate_layer(&key).cache(10_000))),
        ];
        for (name, router) in cases {
            let response = runtime.block_on(router.clone().oneshot(request(&token))).unwrap();
            assert_eq!(response.status(), 200, "{name} refused the token");
            group.bench_function(name, |b| b.to_async(&runtime).iter(|| router.clone().oneshot(request(&token))));
        }
        let peer = runtime.block_on(jwt_authorizer(&key, secret_text));
        let peer_request = || {
            Request::get("/")
                .header("authorization", format!("Bearer {token}"))
                .body(axum07::body::Body::empty())
                .unwrap()
        };
        let response = runtime.block_on(peer.clone().oneshot(peer_request())).unwrap();
        assert_eq!(response.status(), 200, "jwt-authorizer refused the token");
        group.bench_function("jwt_authorizer", |b| b.to_async(&runtime).iter(|| peer.clone().oneshot(peer_request())));
        // jwt-authorizer's framework alone: axum 0.7 with no authentication, for its baseline.
        let bare07 = axum07::Router::new().route("/", axum07::routing::get(handler));
        group
            .bench_function("no_auth_axum07", |b| b.to_async(&runtime).iter(|| bare07.clone().oneshot(peer_request())));
        group.finish();
        if alg == Algorithm::HS256 {
            println!("HS256 token length: {} bytes", token.len());
        }
    }
}

/// A validation in parts, without a router: how far jwtgate's is from the work no validator can skip.
fn bench_floor(c: &mut Criterion) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let secret_text = "bench-only secret: 0123456789abcdef0123456789abcdef";
    let key = TestKey::hmac_with_secret(Algorithm::HS256, secret_text.as_bytes());
    let token = key.sign(&bench_claims());
    let hmac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret_text.as_bytes());
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let validator = jwtgate_validator(&key);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    let decoding = jsonwebtoken::DecodingKey::from_secret(secret_text.as_bytes());

    // The least any validator does: the same parts, no checks beyond the signature, no registered claims.
    let floor = |token: &str| {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let payload = signing_input.split_once('.')?.1;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        aws_lc_rs::hmac::verify(&hmac, signing_input.as_bytes(), &signature).ok()?;
        serde_json::from_slice::<BenchClaims>(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    };
    assert!(floor(&token).is_some());
    assert!(validator.validate::<BenchClaims>(&token).is_ok());
    assert!(jsonwebtoken::decode::<BenchClaims>(&token, &decoding, &validation).is_ok());

    let mut group = c.benchmark_group("floor/HS256");
    group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
    group.bench_function("hmac", |b| {
        b.iter(|| aws_lc_rs::hmac::verify(&hmac, signing_input.as_bytes(), &signature).is_ok())
    });
    group.bench_function("floor", |b| b.iter(|| floor(&token)));
    group.bench_function("jwtgate_validate", |b| b.iter(|| validator.validate::<BenchClaims>(&token)));
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<BenchClaims>(&token, &decoding, &validation))
    });
    group.finish();
}

/// The per-request cost of revocation checks: no denylist, the in-memory one (holding 10,000 live
/// revocations), and Redis on loopback, for the same HS256 token.
fn bench_denylists(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let key = TestKey::generate(Algorithm::HS256);
    let token = key.sign(&bench_claims());
    let redis = jwtgate_tests::RedisServer::start();
    let until = now() + 3600;

    let memory = jwtgate::revocation::MemoryDenylist::new();
    for i in 0..10_000 {
        memory.revoke_now(&format!("revoked-{i}"), until).unwrap();
    }
    let redis_denylist = {
        let _runtime = runtime.enter();
        jwtgate::redis::RedisDenylist::new(&redis.url()).unwrap()
    };
    // The replica holds the same 10,000 revocations, revoked through it (so Redis has them too). Its staleness
    // bound is an hour here: between groups nothing drives its sync task, and the bound does not change what a
    // lookup costs.
    let replicated = runtime.block_on(async {
        let replicated = jwtgate::redis::ReplicatedDenylist::builder(&redis.url())
            .staleness(Duration::from_secs(3600))
            .start()
            .unwrap();
        replicated.ready().await;
        for i in 0..10_000 {
            jwtgate::revocation::Denylist::revoke(&replicated, &format!("revoked-{i}"), until).await.unwrap();
        }
        replicated
    });
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();

    // The lookup alone, without the request around it: what each denylist adds.
    let claims = validator.validate::<BenchClaims>(&token).unwrap().registered().clone();
    let mut group = c.benchmark_group("denylist/lookup");
    group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
    let lookups: [(&str, &dyn jwtgate::revocation::Denylist); 3] =
        [("memory", &memory), ("replicated", &replicated), ("redis", &redis_denylist)];
    for (name, denylist) in lookups {
        let status = runtime.block_on(lookup(denylist, &claims));
        assert_eq!(status, jwtgate::revocation::TokenStatus::Active, "{name}");
        group.bench_function(name, |b| b.to_async(&runtime).iter(|| lookup(denylist, &claims)));
    }
    group.finish();

    let base = JwtAuthLayer::<BenchClaims>::new(validator);
    let cases: [(&str, Router); 7] = [
        ("none", with_layer(base.clone())),
        ("memory", with_layer(base.clone().denylist(memory.clone()))),
        ("memory_cached", with_layer(base.clone().denylist(memory).cache(10_000))),
        ("replicated", with_layer(base.clone().denylist(replicated.clone()))),
        ("replicated_cached", with_layer(base.clone().denylist(replicated).cache(10_000))),
        ("redis", with_layer(base.clone().denylist(redis_denylist.clone()))),
        ("redis_cached", with_layer(base.denylist(redis_denylist).cache(10_000))),
    ];
    run_group(c, &runtime, "denylist/HS256", cases, &token);
}

/// Measures each router for the same token, side by side in one group, after checking it accepts the token.
fn run_group<const N: usize>(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    group: &str,
    cases: [(&str, Router); N],
    token: &str,
) {
    let mut group = c.benchmark_group(group);
    group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
    for (name, router) in cases {
        let response = runtime.block_on(router.clone().oneshot(request(token))).unwrap();
        assert_eq!(response.status(), 200, "{name} refused the token");
        group.bench_function(name, |b| b.to_async(runtime).iter(|| router.clone().oneshot(request(token))));
    }
    group.finish();
}

/// One denylist lookup, waiting for it when it goes to the network.
async fn lookup(
    denylist: &dyn jwtgate::revocation::Denylist,
    claims: &jwtgate::validation::RegisteredClaims,
) -> jwtgate::revocation::TokenStatus {
    match denylist.check(claims) {
        jwtgate::revocation::Lookup::Ready(result) => result.unwrap(),
        jwtgate::revocation::Lookup::Pending(pending) => pending.await.unwrap(),
    }
}

/// A static key against a remote JWK Set once its keys are cached: the same token, the same rules.
fn bench_remote_keys(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key = TestKey::generate(alg).with_kid("bench");
        let token = key.sign(&bench_claims());
        let url = jwks_server(json!({ "keys": [key.jwk()] }));
        // Eager: the keys are fetched before the measurement, and the 5-minute refresh never comes during it.
        let remote = runtime.block_on(jwtgate::jwks::RemoteKeySet::jwks(&url).build_eager()).unwrap();
        let rules = |builder: jwtgate::validation::ValidatorBuilder| builder.issuer(ISSUER).audience(AUDIENCE).build();
        let static_validator = rules(Validator::builder(KeySet::new([key.verification_key()]).unwrap()));
        let remote_validator = rules(Validator::builder(remote));
        let layer = |validator: &Validator| {
            Router::new().route("/", get(handler)).layer(JwtAuthLayer::<BenchClaims>::new(validator.clone()))
        };
        let cases: [(&str, Router); 2] = [("static", layer(&static_validator)), ("remote", layer(&remote_validator))];
        run_group(c, &runtime, &format!("keys/{alg}"), cases, &token);

        // The signature check dwarfs the key lookup above. Without it: a token whose `alg` differs from its
        // key's is refused right after the lookup, so this measures the parse plus the lookup alone.
        if alg == Algorithm::RS256 {
            let mismatched = key.sign_raw(r#"{"alg":"RS384","kid":"bench"}"#, &bench_claims().to_string());
            let mut group = c.benchmark_group("keys/lookup");
            group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
            for (name, validator) in [("static", &static_validator), ("remote", &remote_validator)] {
                let err = validator.validate::<BenchClaims>(&mismatched).unwrap_err();
                assert_eq!(err.to_string(), "the token's algorithm does not match its key", "{name}");
                group.bench_function(name, |b| b.iter(|| validator.validate::<BenchClaims>(&mismatched)));
            }
            group.finish();
        }
    }
}

/// Serves `jwks` from a thread of its own, as a provider would, and returns its URL.
fn jwks_server(jwks: serde_json::Value) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let server = jwtgate_test::JwksServer::start(jwks).await;
            sender.send(server.jwks_url()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    receiver.recv().unwrap()
}

criterion_group!(benches, bench, bench_floor, bench_denylists, bench_remote_keys);
criterion_main!(benches);
