//! How many heap allocations the hot path makes, counted by dhat's global allocator: a bound that fails
//! when a change starts allocating where it did not, with the counts printed for `docs/benchmarks.md`.

#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "test helpers fail the test on unexpected errors")]

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_tests::bench::{BenchClaims, bench_claims};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey};
use tower::ServiceExt;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// The allocations `f` makes. The process has one test, so nothing else allocates meanwhile.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = dhat::HeapStats::get().total_blocks;
    let value = f();
    (dhat::HeapStats::get().total_blocks - before, value)
}

fn token(key: &TestKey) -> String {
    key.sign(&bench_claims())
}

/// One test in this file: dhat counts the allocations of the whole process.
#[test]
fn the_hot_path_allocates_little() {
    let _profiler = dhat::Profiler::builder().testing().build();
    validation_allocates_little_beyond_the_claims_it_returns();
    a_cache_hit_skips_the_allocations_of_a_validation();
}

fn validation_allocates_little_beyond_the_claims_it_returns() {
    let key = TestKey::generate(Algorithm::HS256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let token = token(&key);
    validator.validate::<BenchClaims>(&token).unwrap();

    let (n, validated) = allocations(|| validator.validate::<BenchClaims>(&token));
    validated.unwrap();
    println!("validate::<BenchClaims>: {n} allocations");
    // The claims type's own 6 (`sub`, `scope`, the roles and their vector), the claims set kept for the
    // principal, and the principal. The registered claims are spans of the claims set, and the member names
    // are checked for duplicates on the stack: neither allocates.
    assert!(n <= 8, "{n} allocations");

    let (n, refused) = allocations(|| validator.validate::<BenchClaims>(&format!("{token}x")));
    assert!(refused.is_err());
    println!("a refused signature: {n} allocations (the token's copy included)");
    assert!(n <= 2, "{n} allocations for a token refused at its signature");
}

fn a_cache_hit_skips_the_allocations_of_a_validation() {
    let key = TestKey::generate(Algorithm::HS256);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let token = token(&key);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let request = || Request::get("/").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let call = |router: &Router| {
        let router = router.clone();
        let request = request();
        allocations(|| runtime.block_on(router.oneshot(request)).unwrap().status())
    };

    let bare = Router::new().route("/", get(|| async { "ok" }));
    let cached = bare.clone().layer(JwtAuthLayer::<BenchClaims>::new(validator.clone()).cache(16));
    let uncached = bare.clone().layer(JwtAuthLayer::<BenchClaims>::new(validator));
    for router in [&bare, &cached, &uncached] {
        call(router);
    }
    let (bare_n, _) = call(&bare);
    let (cached_n, status) = call(&cached);
    assert_eq!(status, 200);
    let (uncached_n, _) = call(&uncached);
    println!("allocations per request: no auth {bare_n}, cached {cached_n}, uncached {uncached_n}");
    // A hit adds what any layer adds: the request's extensions (their map, its table and the one value handed
    // to handlers) and axum's boxing of a layer's response body. The validation's own allocations (the
    // claims, the claims set, the principal, the `Arc` that shares them) are skipped.
    assert!(cached_n <= bare_n + 6, "a cache hit made {} allocations more than no auth", cached_n - bare_n);
    assert!(uncached_n >= cached_n + 9, "a hit skipped only {} allocations of a validation", uncached_n - cached_n);
}
