//! What opaque tokens (RFC 7662) cost per request, side by side in one run.
//!
//! `introspection/hit`: the same handler behind a router, every request a cache hit:
//! - `jwt_cached`: HS256 JWTs (256 in turn) through `JwtAuthLayer::cache`;
//! - `introspected_cached`: opaque tokens (256 in turn) whose answers the `Introspector` holds.
//!
//!   The goal: `introspected_cached` ≤ 1.2 × `jwt_cached`.
//! - `sha256_keyed`: the cache key a hit computes, alone; `hmac_sha256`: HMAC-SHA-256 of the same tokens, for
//!   comparison.
//!
//! `introspection/miss`: one request whose answer is not cached (a cache TTL of zero), against an endpoint on
//! loopback, beside `round_trip`, a bare reqwest POST of the same form to the same endpoint: a miss costs one
//! round trip.
//!
//! `introspection/cycle`: 1,000 distinct opaque tokens cycling through a cache of 10,000, per request; the
//! endpoint's call count is printed at the end: 1,000, one per token.
//!
//! Run with `cargo bench -p jwtgate-benches --bench introspection`.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout, reason = "benchmark code")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http::Request;
use jwtgate::introspection::{AnswerRules, Introspector};
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_tests::bench::{BenchClaims, bench_claims};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey};
use serde_json::json;
use tower::ServiceExt;

fn app(layer: JwtAuthLayer<BenchClaims>) -> Router {
    Router::new().route("/", get(|| async { "ok" })).layer(layer)
}

fn bearer(token: &str) -> Request<Body> {
    Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
}

/// An introspection endpoint on loopback that vouches for every token, and counts its calls.
async fn endpoint(calls: Arc<AtomicUsize>) -> String {
    let mut answer = bench_claims();
    answer["active"] = json!(true);
    let body = answer.to_string();
    let app = Router::new().route(
        "/introspect",
        post(move || {
            calls.fetch_add(1, Ordering::Relaxed);
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/introspect")
}

fn introspector(url: &str, ttl: Duration, capacity: usize) -> Introspector<BenchClaims> {
    Introspector::builder(url)
        .rules(AnswerRules::new().issuer(ISSUER).audience(AUDIENCE))
        .cache_ttl(ttl)
        .capacity(capacity)
        .build()
        .unwrap()
}

fn bench_introspection(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let url = runtime.block_on(endpoint(calls.clone()));
    let key = TestKey::generate(Algorithm::HS256);
    let jwts: Vec<String> = (0..256)
        .map(|i| {
            let mut claims = bench_claims();
            claims["jti"] = json!(format!("bench-{i}"));
            key.sign(&claims)
        })
        .collect();
    // Opaque tokens as providers make them: 32 random bytes, base64url.
    let opaque = |n: usize| -> Vec<String> { (0..n).map(|i| format!("{i:08}-opaque-{:0>35}", i * 7919)).collect() };
    let ring = opaque(256);
    let turn = std::cell::Cell::new(0usize);
    let next = |ring: &[String]| {
        turn.set((turn.get() + 1) % ring.len());
        bearer(&ring[turn.get()])
    };

    let mut group = c.benchmark_group("introspection/hit");
    group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let jwt_app = app(JwtAuthLayer::new(validator).cache(10_000));
    let introspected_app = app(JwtAuthLayer::introspected(introspector(&url, Duration::from_secs(3600), 10_000)));
    for (name, router, tokens) in [("jwt_cached", &jwt_app, &jwts), ("introspected_cached", &introspected_app, &ring)] {
        // Every token once first: every measured request then hits.
        for token in tokens {
            let response = runtime.block_on(router.clone().oneshot(bearer(token))).unwrap();
            assert_eq!(response.status(), 200, "{name} was refused");
        }
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_batched(
                || next(tokens),
                |request| router.clone().oneshot(request),
                BatchSize::SmallInput,
            );
        });
    }
    // The cache key a hit computes, alone: SHA-256 of an opaque token from a state that absorbed a secret block;
    // beside it, HMAC-SHA-256, the construction it replaces.
    let mut keyed = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    keyed.update(&[7; 64]);
    group.bench_function("sha256_keyed", |b| {
        b.iter(|| {
            turn.set((turn.get() + 1) % ring.len());
            let mut context = keyed.clone();
            context.update(ring[turn.get()].as_bytes());
            context.finish()
        });
    });
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[7; 32]);
    group.bench_function("hmac_sha256", |b| {
        b.iter(|| {
            turn.set((turn.get() + 1) % ring.len());
            aws_lc_rs::hmac::sign(&hmac_key, ring[turn.get()].as_bytes())
        });
    });
    group.finish();

    let mut group = c.benchmark_group("introspection/miss");
    group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
    let uncached = app(JwtAuthLayer::introspected(introspector(&url, Duration::ZERO, 10_000)));
    let response = runtime.block_on(uncached.clone().oneshot(bearer(&ring[0]))).unwrap();
    assert_eq!(response.status(), 200);
    group.bench_function("introspected", |b| {
        b.to_async(&runtime).iter_batched(
            || next(&ring),
            |request| uncached.clone().oneshot(request),
            BatchSize::SmallInput,
        );
    });
    let client = reqwest::Client::new();
    group.bench_function("round_trip", |b| {
        b.to_async(&runtime).iter(|| async {
            let form = format!("token={}&token_type_hint=access_token", ring[0]);
            let response = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap();
            response.bytes().await.unwrap()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("introspection/cycle");
    group
        .measurement_time(Duration::from_secs(6))
        .warm_up_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    let thousand = opaque(1_000);
    let cycling = app(JwtAuthLayer::introspected(introspector(&url, Duration::from_secs(3600), 10_000)));
    let before = calls.load(Ordering::Relaxed);
    group.bench_function("1000_tokens_cache_10000", |b| {
        b.to_async(&runtime).iter_batched(
            || next(&thousand),
            |request| cycling.clone().oneshot(request),
            BatchSize::SmallInput,
        );
    });
    group.finish();
    println!(
        "introspection/cycle: {} calls to the endpoint for 1,000 distinct tokens",
        calls.load(Ordering::Relaxed) - before
    );
}

criterion_group!(benches, bench_introspection);
criterion_main!(benches);
