//! The metrics the `metrics` feature records, read back through a `DebuggingRecorder` installed for the test's
//! thread: a `#[tokio::test]` runs its tasks on that thread.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use jwtgate::metric_names;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator, revocation::MemoryDenylist};
use jwtgate_test::{Fault, IntrospectionServer, JwksServer};
use jwtgate_tests::{AUDIENCE, DownDenylist, ISSUER, TestKey, claims, now};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Every name in `jwtgate::metric_names`: each metric recorded must have its name there.
const NAMES: [&str; 12] = [
    metric_names::REQUESTS_TOTAL,
    metric_names::VALIDATION_SECONDS,
    metric_names::CACHE_LOOKUPS_TOTAL,
    metric_names::DENYLIST_ERRORS_TOTAL,
    metric_names::FETCHES_TOTAL,
    metric_names::REPLICA_SNAPSHOTS_TOTAL,
    metric_names::REPLICA_IN_SYNC,
    metric_names::REPLICA_LOST_TOTAL,
    metric_names::REPLICA_FALLBACKS_TOTAL,
    metric_names::INTROSPECTION_CALLS_TOTAL,
    metric_names::INTROSPECTION_CALL_SECONDS,
    metric_names::INTROSPECTION_CACHE_TOTAL,
];

/// Each metric as `name{label=value,...}`, labels sorted, with its value: a count since the last read, a
/// gauge's value, or a histogram's number of samples since the last read. Fails for a metric whose name is
/// not in `jwtgate::metric_names`.
fn read(snapshotter: &Snapshotter) -> HashMap<String, u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            assert!(NAMES.contains(&key.name()), "{} is not in jwtgate::metric_names", key.name());
            let mut labels: Vec<String> =
                key.labels().map(|label| format!("{}={}", label.key(), label.value())).collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(count) => count,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(gauge) => gauge.into_inner() as u64,
            };
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

async fn send(app: &Router, token: Option<&str>) -> u16 {
    let mut request = http::Request::get("/");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn requests_are_counted_by_outcome_and_reason_with_validation_time_and_cache_lookups() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let key = TestKey::generate(Algorithm::HS256);
    let denylist = MemoryDenylist::new();
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let layer = JwtAuthLayer::<Value>::new(validator).optional().denylist(denylist.clone()).cache(100);
    let app = Router::new().route("/", get(|| async { "ok" })).layer(layer);

    let good = key.sign(&claims());
    let mut revoked = claims();
    revoked["jti"] = json!("gone");
    denylist.revoke_now("gone", now() + 600).unwrap();
    let revoked = key.sign(&revoked);
    let mut expired = claims();
    expired["exp"] = json!(now() - 3600);
    let expired = key.sign(&expired);

    assert_eq!(send(&app, Some(&good)).await, 200); // a miss, validated and cached
    assert_eq!(send(&app, Some(&good)).await, 200); // a hit
    assert_eq!(send(&app, Some(&revoked)).await, 401);
    assert_eq!(send(&app, Some(&expired)).await, 401);
    assert_eq!(send(&app, Some("garbage")).await, 401);
    assert_eq!(send(&app, None).await, 200);

    let metrics = read(&snapshotter);
    let expected = [
        ("jwtgate_requests_total{outcome=authenticated,reason=}", 2),
        ("jwtgate_requests_total{outcome=refused,reason=revoked}", 1),
        ("jwtgate_requests_total{outcome=refused,reason=expired}", 1),
        ("jwtgate_requests_total{outcome=refused,reason=malformed}", 1),
        ("jwtgate_requests_total{outcome=anonymous,reason=}", 1),
        ("jwtgate_cache_lookups_total{result=hit}", 1),
        ("jwtgate_cache_lookups_total{result=miss}", 4),
        // Every token that was not a cache hit was validated, and timed.
        ("jwtgate_validation_seconds{}", 4),
    ];
    for (name, value) in expected {
        assert_eq!(metrics.get(name), Some(&value), "{name} in {metrics:#?}");
    }
    assert!(!metrics.contains_key("jwtgate_denylist_errors_total{}"), "{metrics:#?}");
}

#[tokio::test]
async fn denylist_errors_are_counted_whether_the_layer_fails_closed_or_open() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let key = TestKey::generate(Algorithm::HS256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let closed = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(JwtAuthLayer::<Value>::new(validator.clone()).denylist(DownDenylist));
    let open = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(JwtAuthLayer::<Value>::new(validator).denylist(DownDenylist).denylist_fail_open());
    let token = key.sign(&claims());
    assert_eq!(send(&closed, Some(&token)).await, 503);
    assert_eq!(send(&open, Some(&token)).await, 200);

    let metrics = read(&snapshotter);
    assert_eq!(metrics.get("jwtgate_denylist_errors_total{}"), Some(&2), "{metrics:#?}");
    assert_eq!(metrics.get("jwtgate_requests_total{outcome=refused,reason=denylist_unavailable}"), Some(&1));
    assert_eq!(metrics.get("jwtgate_requests_total{outcome=fail_open,reason=}"), Some(&1));
}

#[tokio::test]
async fn jwks_fetches_are_counted_by_result() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let key = TestKey::generate(Algorithm::RS256).with_kid("a");
    let server = JwksServer::start(json!({ "keys": [key.jwk()] })).await;
    let remote = jwtgate::jwks::RemoteKeySet::jwks(&server.jwks_url()).build_eager().await.unwrap();
    server.set_fault(Fault::Status(500));
    // An unknown kid asks for a refresh, which fails.
    let validator = Validator::builder(remote.clone()).issuer(ISSUER).audience(AUDIENCE).build();
    let other = TestKey::generate(Algorithm::RS256).with_kid("b");
    assert!(validator.validate_async::<Value>(&other.sign(&claims())).await.is_err());

    let metrics = read(&snapshotter);
    assert_eq!(metrics.get("jwtgate_jwks_fetches_total{result=ok}"), Some(&1), "{metrics:#?}");
    assert_eq!(metrics.get("jwtgate_jwks_fetches_total{result=error}"), Some(&1), "{metrics:#?}");
}

#[tokio::test]
async fn the_replicated_denylist_counts_losing_redis_its_snapshots_and_its_fallbacks() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let mut redis = jwtgate_tests::RedisServer::start();
    let port = redis.port();
    let denylist = jwtgate::redis::ReplicatedDenylist::builder(&redis.url())
        .staleness(std::time::Duration::from_millis(300))
        .start()
        .unwrap();
    denylist.ready().await;
    let metrics = read(&snapshotter);
    assert_eq!(metrics.get("jwtgate_denylist_replica_snapshots_total{}"), Some(&1), "{metrics:#?}");
    assert_eq!(metrics.get("jwtgate_denylist_replica_in_sync{}"), Some(&1));

    // Redis goes away: the sync task loses it, and past the bound lookups take the (closed) fallback.
    redis.stop();
    let key = TestKey::generate(Algorithm::HS256);
    let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let token = key.token().issuer(ISSUER).audience(AUDIENCE).token_id("t").build();
    let claims = validator.validate::<Value>(&token).unwrap().registered().clone();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while denylist.in_sync() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(matches!(
        jwtgate::revocation::Denylist::check(&denylist, &claims),
        jwtgate::revocation::Lookup::Ready(Err(_))
    ));
    let metrics = read(&snapshotter);
    assert_eq!(metrics.get("jwtgate_denylist_replica_lost_total{}"), Some(&1), "{metrics:#?}");
    assert_eq!(metrics.get("jwtgate_denylist_replica_in_sync{}"), Some(&0));
    assert_eq!(metrics.get("jwtgate_denylist_replica_fallbacks_total{fallback=closed}"), Some(&1));

    // A new, empty Redis on the same port: the stream is gone, so the replica loads a snapshot again.
    let _redis = jwtgate_tests::RedisServer::start_with(port, &["--save", "", "--appendonly", "no"]);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while !denylist.in_sync() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(denylist.in_sync(), "the replica did not recover");
    let metrics = read(&snapshotter);
    // The debugging recorder's counters count from the last read: one more snapshot.
    assert_eq!(metrics.get("jwtgate_denylist_replica_snapshots_total{}"), Some(&1), "{metrics:#?}");
    assert_eq!(metrics.get("jwtgate_denylist_replica_lost_total{}"), Some(&0));
    assert_eq!(metrics.get("jwtgate_denylist_replica_in_sync{}"), Some(&1));
}

#[tokio::test]
async fn introspection_calls_and_cache_lookups_are_counted_by_outcome() {
    use jwtgate::introspection::{AnswerRules, Introspector};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let endpoint = IntrospectionServer::start().await;
    endpoint.activate("good", json!({ "sub": "alice", "exp": now() + 300 }));
    endpoint.activate("expired", json!({ "sub": "alice", "exp": now() - 3600, "iat": now() - 7200 }));
    let introspector = Introspector::<Value>::builder(endpoint.url())
        .rules(AnswerRules::new().issuer(ISSUER).audience(AUDIENCE))
        .build()
        .unwrap();
    let app = Router::new().route("/", get(|| async { "ok" })).layer(JwtAuthLayer::introspected(introspector));
    for (token, status) in [("good", 200), ("good", 200), ("unknown", 401), ("unknown", 401), ("expired", 401)] {
        assert_eq!(send(&app, Some(token)).await, status, "{token}");
    }
    endpoint.set_fault(Fault::Status(500));
    assert_eq!(send(&app, Some("fresh")).await, 503);

    let metrics = read(&snapshotter);
    for (metric, count) in [
        ("jwtgate_introspection_calls_total{outcome=active}", 1),
        ("jwtgate_introspection_calls_total{outcome=inactive}", 1),
        ("jwtgate_introspection_calls_total{outcome=refused}", 1),
        ("jwtgate_introspection_calls_total{outcome=error}", 1),
        ("jwtgate_introspection_call_seconds{outcome=active}", 1),
        ("jwtgate_introspection_call_seconds{outcome=error}", 1),
        ("jwtgate_introspection_cache_total{result=miss}", 4),
        ("jwtgate_introspection_cache_total{result=hit}", 1),
        ("jwtgate_introspection_cache_total{result=negative_hit}", 1),
        ("jwtgate_requests_total{outcome=refused,reason=inactive}", 2),
        ("jwtgate_requests_total{outcome=refused,reason=introspection_unavailable}", 1),
    ] {
        assert_eq!(metrics.get(metric), Some(&count), "{metric}: {metrics:#?}");
    }
}
