//! What DPoP (RFC 9449) costs per request, side by side in one run.
//!
//! `dpop/ES256`: one layer (`Dpop::allowed`, ES256 tokens), the same handler behind a router:
//! - `bearer`: an unbound token as a bearer token (256 tokens in turn);
//! - `dpop`: a bound token (256 in turn) with a fresh ES256 proof (made outside the timing);
//! - `bearer_cached`, `dpop_cached`: the same with the validated-token cache, which every request hits;
//! - `es256_verify`: one ES256 signature verification alone, with aws-lc-rs: the cost a proof adds by nature.
//!
//! The goal: `dpop` − `bearer` − `es256_verify` ≤ 3 µs, with the cache off and on.
//!
//! `replay/memory`: `MemoryReplayStore::record_at` at a steady state of 60,000 live proofs.
//! `replay/redis`: `RedisReplayStore::record` against a `redis-server` on loopback, beside a bare `PING`: one
//! round trip each.
//!
//! Run with `cargo bench -p jwtgate-benches --bench dpop`.

#![allow(missing_docs, clippy::unwrap_used, reason = "benchmark code")]

use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::Request;
use jwtgate::Key;
use jwtgate::dpop::{
    DEFAULT_PROOF_ALGORITHMS, Dpop, MemoryReplayStore, ProofRequirements, ReplayCheck, ReplayStore, check_proof,
    jwk_thumbprint,
};
use jwtgate::keys::AlgorithmMapping;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_test::DpopKey;
use jwtgate_tests::bench::{BenchClaims, bench_claims};
use jwtgate_tests::{AUDIENCE, ISSUER, RedisServer, TestKey};
use serde_json::json;
use tower::ServiceExt;

const ORIGIN: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/";

fn router(key: &TestKey, cache: bool) -> Router {
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let mut layer = JwtAuthLayer::<BenchClaims>::new(validator).dpop(Dpop::allowed(ORIGIN).unwrap());
    if cache {
        layer = layer.cache(10_000);
    }
    Router::new().route("/", get(|| async { "ok" })).layer(layer)
}

fn bearer(token: &str) -> Request<Body> {
    Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap()
}

fn dpop(client: &DpopKey, token: &str) -> Request<Body> {
    let proof = client.proof("GET", URL).access_token(token).build();
    client.attach(Request::get("/").body(Body::empty()).unwrap(), token, &proof)
}

fn bench_requests(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let key = TestKey::generate(Algorithm::ES256);
    let client = DpopKey::generate(Algorithm::ES256);
    // 256 tokens of each kind, used in turn: every signature a request brings differs, as it does in life
    // (one verified again and again runs some 3 µs faster: the branch predictor learns its scalars).
    let tokens = |bound: bool| -> Vec<String> {
        (0..256)
            .map(|i| {
                let mut claims = bench_claims();
                claims["jti"] = json!(format!("bench-{i}"));
                if bound {
                    claims["cnf"] = json!({ "jkt": client.thumbprint() });
                }
                key.sign(&claims)
            })
            .collect()
    };
    let (unbound, bound) = (tokens(false), tokens(true));
    let turn = std::cell::Cell::new(0usize);
    let next = |ring: &[String]| {
        turn.set((turn.get() + 1) % ring.len());
        ring[turn.get()].clone()
    };

    let mut group = c.benchmark_group("dpop/ES256");
    group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
    for (suffix, cache) in [("", false), ("_cached", true)] {
        let router = router(&key, cache);
        let make_bearer = || bearer(&next(&unbound));
        let make_dpop = || dpop(&client, &next(&bound));
        for (name, make) in
            [("bearer", &make_bearer as &dyn Fn() -> Request<Body>), ("dpop", &make_dpop as &dyn Fn() -> Request<Body>)]
        {
            // Every token once first: the cached cases then hit on every request.
            for _ in 0..256 {
                let response = runtime.block_on(router.clone().oneshot(make())).unwrap();
                assert_eq!(response.status(), 200, "{name}{suffix} was refused");
            }
            // Both build their request outside the timing: the proof's signing is the client's cost.
            group.bench_function(format!("{name}{suffix}"), |b| {
                b.to_async(&runtime).iter_batched(
                    make,
                    |request| router.clone().oneshot(request),
                    BatchSize::SmallInput,
                );
            });
        }
    }
    let bound = bound[0].clone();
    // One ES256 verification, the cost a proof adds by nature: each of 256 proofs' signatures in turn.
    let jwk = client.public_jwk();
    let point = [
        &[4u8][..],
        &URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
        &URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap(),
    ]
    .concat();
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point);
    let signed: Vec<(String, Vec<u8>)> = (0..256)
        .map(|_| {
            let proof = client.proof("GET", URL).access_token(&bound).build();
            let (input, signature) = proof.rsplit_once('.').unwrap();
            (input.to_owned(), URL_SAFE_NO_PAD.decode(signature).unwrap())
        })
        .collect();
    assert!(signed.iter().all(|(input, signature)| public.verify(input.as_bytes(), signature).is_ok()));
    let parsed = aws_lc_rs::signature::ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public.as_ref()).unwrap();
    let mut turn = 0;
    group.bench_function("es256_verify_parsed", |b| {
        b.iter(|| {
            turn = (turn + 1) % signed.len();
            let (input, signature) = &signed[turn];
            parsed.verify_sig(input.as_bytes(), signature)
        });
    });
    let mut next = 0;
    group.bench_function("es256_verify", |b| {
        b.iter(|| {
            next = (next + 1) % signed.len();
            let (input, signature) = &signed[next];
            public.verify(input.as_bytes(), signature)
        });
    });
    let now = jwtgate::__private::unix_now();
    let checks = ProofRequirements {
        method: "GET",
        url: URL,
        access_token: Some(&bound),
        now,
        iat_window: 600,
        algorithms: DEFAULT_PROOF_ALGORITHMS,
        keys: None,
    };
    group.bench_function("check_proof", |b| {
        b.iter_batched(
            || client.proof("GET", URL).access_token(&bound).build(),
            |proof| check_proof(&proof, &checks).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.finish();

    // The proof's checks in parts, to see where a DPoP request's cost goes.
    let mut group = c.benchmark_group("proof/ES256");
    group.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    let requirements = |now| ProofRequirements {
        method: "GET",
        url: URL,
        access_token: Some(&bound),
        now,
        iat_window: 60,
        algorithms: DEFAULT_PROOF_ALGORITHMS,
        keys: None,
    };
    group.bench_function("check_proof", |b| {
        b.iter_batched(
            || client.proof("GET", URL).access_token(&bound).build(),
            |proof| check_proof(&proof, &requirements(jwtgate::__private::unix_now())).unwrap(),
            BatchSize::SmallInput,
        );
    });
    let mut jwk_with_alg = jwk.clone();
    jwk_with_alg["alg"] = json!("ES256");
    let jwk_text = jwk_with_alg.to_string();
    let mapping = AlgorithmMapping::new();
    group.bench_function("key_from_jwk", |b| b.iter(|| Key::from_jwk(&jwk_text, &mapping).unwrap()));
    group.bench_function("thumbprint", |b| b.iter(|| jwk_thumbprint(jwk).unwrap()));
    let fixed = client.proof("GET", URL).access_token(&bound).build();
    let wide = ProofRequirements { iat_window: 3_600, ..requirements(jwtgate::__private::unix_now()) };
    group.bench_function("check_proof_same", |b| b.iter(|| check_proof(&fixed, &wide).unwrap()));
    let ring: Vec<String> = (0..256).map(|_| client.proof("GET", URL).access_token(&bound).build()).collect();
    let mut next = 0;
    group.bench_function("check_proof_ring", |b| {
        b.iter(|| {
            next = (next + 1) % ring.len();
            check_proof(&ring[next], &wide).unwrap()
        });
    });
    group.finish();
}

fn bench_replay(c: &mut Criterion) {
    // 200,000 proofs of 1,000 keys, recorded in turn, 1,000 per second of a simulated clock, each remembered
    // for 60 s: at steady state the store holds 60,000 live proofs, as a busy instance would, and a proof comes
    // round again only after its entry has expired.
    let proofs: Vec<(String, String)> =
        (0..200_000).map(|i| (format!("{:0>43}", i % 1_000), format!("proof-{i}-{}", "x".repeat(16)))).collect();
    let store = MemoryReplayStore::new();
    let mut clock = 0u64;
    let mut record = |store: &MemoryReplayStore| {
        let (jkt, jti) = &proofs[(clock % 200_000) as usize];
        let now = 1_800_000_000 + i64::try_from(clock / 1_000).unwrap();
        clock += 1;
        store.record_at(jkt, jti, now + 60, now)
    };
    for _ in 0..200_000 {
        assert!(record(&store).is_ok());
    }
    assert!((59_000..=61_000).contains(&store.len()), "{}", store.len());
    let mut group = c.benchmark_group("replay");
    group.measurement_time(Duration::from_secs(6)).warm_up_time(Duration::from_secs(2));
    group.bench_function("memory", |b| b.iter(|| record(&store).unwrap()));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let redis = RedisServer::start();
    let store = runtime.block_on(async { jwtgate::redis::RedisReplayStore::new(&redis.url()).unwrap() });
    let counter = std::cell::Cell::new(0u64);
    let until = jwtgate::__private::unix_now() + 3_600;
    let redis_record = || {
        counter.set(counter.get() + 1);
        let check = store.record("bench-key", &format!("proof-{}", counter.get()), until);
        async move {
            match check {
                ReplayCheck::Ready(result) => result,
                ReplayCheck::Pending(pending) => pending.await,
            }
        }
    };
    runtime.block_on(redis_record()).unwrap();
    group.bench_function("redis", |b| b.to_async(&runtime).iter(|| async { redis_record().await.unwrap() }));
    let mut ping = runtime.block_on(async {
        redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
    });
    group.bench_function("redis_ping", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let mut ping = ping.clone();
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    redis::cmd("PING").query_async::<String>(&mut ping).await.unwrap();
                }
                start.elapsed()
            }
        });
    });
    runtime.block_on(async { redis::cmd("PING").query_async::<String>(&mut ping).await.unwrap() });
    group.finish();
}

criterion_group!(benches, bench_requests, bench_replay);
criterion_main!(benches);
