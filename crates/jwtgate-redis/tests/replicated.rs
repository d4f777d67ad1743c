//! `ReplicatedDenylist` against a real `redis-server`: propagation between instances (with its latency), a new
//! instance after many revocations, a Redis restart, and an instance cut off from the stream. The tests in
//! `single` and `cluster` are the same tests, on one server and on a real Redis Cluster; a failover and a whole
//! cluster restarting are in `tests/cluster.rs`.

#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "test code, which prints its measurements")]

use std::time::{Duration, Instant};

use jwtgate::{
    Validator,
    revocation::{Denylist, Lookup, TokenStatus},
    validation::RegisteredClaims,
};
use jwtgate_redis::{DEFAULT_PREFIX, Fallback, ReplicatedDenylist, ReplicatedDenylistBuilder};
use jwtgate_test::TestKey;
use jwtgate_tests::{AUDIENCE, ISSUER, RedisCluster, RedisServer, now};

/// The registered claims of a token with this `jti` (and `sub`, issued now).
fn claims_of(key: &TestKey, validator: &Validator, jti: &str) -> RegisteredClaims {
    let token = key.token().issuer(ISSUER).audience(AUDIENCE).subject("user-1").token_id(jti).build();
    validator.validate::<serde_json::Value>(&token).unwrap().registered().clone()
}

/// The answer of a lookup that must not wait.
fn status(denylist: &ReplicatedDenylist, claims: &RegisteredClaims) -> Result<TokenStatus, String> {
    match denylist.check(claims) {
        Lookup::Ready(result) => result.map_err(|error| error.to_string()),
        Lookup::Pending(_) => Err("the lookup went to the network".to_owned()),
    }
}

struct Fleet {
    key: TestKey,
    validator: Validator,
}

impl Fleet {
    fn new() -> Self {
        let key = TestKey::generate(jwtgate::Algorithm::HS256);
        let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
        Self { key, validator }
    }

    fn claims(&self, jti: &str) -> RegisteredClaims {
        claims_of(&self.key, &self.validator, jti)
    }
}

/// Where the denylists run: one server, or a cluster.
enum Backend {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Backend {
    fn single() -> Self {
        Self::Single(RedisServer::start())
    }

    fn cluster() -> Self {
        Self::Cluster(RedisCluster::start())
    }

    fn builder(&self) -> ReplicatedDenylistBuilder {
        match self {
            Self::Single(redis) => ReplicatedDenylist::builder(&redis.url()),
            Self::Cluster(cluster) => ReplicatedDenylist::cluster(cluster.urls()),
        }
    }

    /// The prefix the denylist's keys get from `prefix`: on a cluster it is wrapped in a hash tag.
    fn prefix(&self, prefix: &str) -> String {
        match self {
            Self::Single(_) => prefix.to_owned(),
            Self::Cluster(_) => format!("{{{prefix}}}"),
        }
    }

    /// A plain connection to the node that holds `key`.
    fn admin(&self, key: &str) -> redis::Connection {
        match self {
            Self::Single(redis) => redis.connection().unwrap(),
            Self::Cluster(cluster) => cluster.connection(cluster.primary_of(key)).unwrap(),
        }
    }

    /// The node of `key`, as a port: on one server, always the same.
    fn node_of(&self, key: &str) -> u16 {
        match self {
            Self::Single(redis) => redis.port(),
            Self::Cluster(cluster) => cluster.primary_of(key),
        }
    }

    /// The default prefix's stream.
    fn stream(&self) -> String {
        format!("{}stream", self.prefix(DEFAULT_PREFIX))
    }
}

/// The same tests on one server and on a cluster.
macro_rules! on_one_server_and_on_a_cluster {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::Backend::single()).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::Backend::cluster()).await;
                }
            )*
        }
    };
}

on_one_server_and_on_a_cluster!(
    a_revocation_through_one_instance_reaches_the_others_within_100_ms,
    a_new_instance_refuses_every_earlier_revocation_from_its_first_answer,
    subject_cutoffs_replicate_too,
    an_instance_cut_off_from_the_stream_falls_back_after_the_bound_and_recovers,
    three_apps_over_http_refuse_a_token_revoked_through_one_of_them_within_100_ms,
    foreign_keys_of_any_type_under_the_prefix_do_not_stop_the_snapshot,
    a_prefix_with_glob_characters_is_matched_literally,
    events_trimmed_before_an_instance_reads_them_are_caught_up_by_a_snapshot,
);

async fn instance(backend: &Backend) -> ReplicatedDenylist {
    ready(backend.builder()).await
}

/// An instance on `redis`, for the tests that restart it.
async fn instance_on(redis: &RedisServer) -> ReplicatedDenylist {
    ready(ReplicatedDenylist::builder(&redis.url())).await
}

async fn ready(builder: ReplicatedDenylistBuilder) -> ReplicatedDenylist {
    let denylist = builder.start().unwrap();
    tokio::time::timeout(Duration::from_secs(10), denylist.ready()).await.expect("the snapshot loads");
    denylist
}

/// Waits until `check` holds, polling every millisecond, and returns how long it took.
async fn until(limit: Duration, check: impl Fn() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

async fn a_revocation_through_one_instance_reaches_the_others_within_100_ms(backend: &Backend) {
    let fleet = Fleet::new();
    let (a, b, c) = (instance(backend).await, instance(backend).await, instance(backend).await);
    let mut latencies = Vec::new();
    for i in 0..1_000 {
        let claims = fleet.claims(&format!("jti-{i}"));
        assert_eq!(status(&b, &claims), Ok(TokenStatus::Active));
        let started = Instant::now();
        a.revoke(&format!("jti-{i}"), now() + 600).await.unwrap();
        // The revoking instance knows at once.
        assert_eq!(status(&a, &claims), Ok(TokenStatus::Revoked));
        let reached = until(Duration::from_millis(100), || {
            status(&b, &claims) == Ok(TokenStatus::Revoked) && status(&c, &claims) == Ok(TokenStatus::Revoked)
        })
        .await;
        assert!(reached.is_some(), "revocation {i} did not reach B and C within 100 ms");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (latencies[latencies.len() / 2], latencies[latencies.len() * 99 / 100]);
    println!("propagation over 1,000 revocations: p50 {p50:?}, p99 {p99:?}, max {:?}", latencies[999]);
    assert_eq!((a.len(), b.len(), c.len()), (1_000, 1_000, 1_000));
}

async fn a_new_instance_refuses_every_earlier_revocation_from_its_first_answer(backend: &Backend) {
    let fleet = Fleet::new();
    let a = instance(backend).await;
    for i in 0..10_000 {
        a.revoke(&format!("early-{i}"), now() + 600).await.unwrap();
    }
    a.revoke_subject("user-2", now(), now() + 600).await.unwrap();
    let late = backend.builder().start().unwrap();
    // Before its snapshot (which a task just spawned cannot have loaded: it needs a connection and a scan of
    // 10,001 keys) it is not in sync, and fails closed rather than answer.
    assert!(!late.in_sync());
    assert!(status(&late, &fleet.claims("early-0")).is_err());
    tokio::time::timeout(Duration::from_secs(30), late.ready()).await.unwrap();
    for i in 0..10_000 {
        assert_eq!(status(&late, &fleet.claims(&format!("early-{i}"))), Ok(TokenStatus::Revoked), "early-{i}");
    }
    assert_eq!(status(&late, &fleet.claims("never-revoked")), Ok(TokenStatus::Active));
    assert_eq!(late.len(), 10_001);
}

async fn subject_cutoffs_replicate_too(backend: &Backend) {
    let fleet = Fleet::new();
    let (a, b) = (instance(backend).await, instance(backend).await);
    let before = fleet.claims("before-logout");
    a.revoke_subject("user-1", now() + 1, now() + 600).await.unwrap();
    let reached = until(Duration::from_secs(1), || status(&b, &before) == Ok(TokenStatus::Revoked)).await;
    assert!(reached.is_some(), "the cutoff did not reach B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_nothing_is_lost_and_the_instances_resync() {
    let dir = std::env::temp_dir().join(format!("jwtgate-replicated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = RedisServer::start().port();
    let mut redis = RedisServer::start_persistent(port, &dir);
    let fleet = Fleet::new();
    let (a, b) = (instance_on(&redis).await, instance_on(&redis).await);
    a.revoke("before-restart", now() + 600).await.unwrap();
    until(Duration::from_secs(1), || b.len() == 1).await.unwrap();

    redis.stop();
    redis = RedisServer::start_persistent(port, &dir);
    // The instances reconnect and read on; a revocation after the restart reaches both.
    let after = fleet.claims("after-restart");
    let revoked = async {
        loop {
            if a.revoke("after-restart", now() + 600).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), revoked).await.unwrap();
    let reached = until(Duration::from_secs(10), || {
        status(&b, &after) == Ok(TokenStatus::Revoked) && status(&a, &after) == Ok(TokenStatus::Revoked)
    })
    .await;
    assert!(reached.is_some(), "the instances did not resync after the restart");
    assert_eq!(status(&b, &fleet.claims("before-restart")), Ok(TokenStatus::Revoked));
    // A new instance loads both from the restarted server.
    let late = instance_on(&redis).await;
    assert_eq!(status(&late, &fleet.claims("before-restart")), Ok(TokenStatus::Revoked));
    assert_eq!(status(&late, &after), Ok(TokenStatus::Revoked));
    drop(redis);
    let _ = std::fs::remove_dir_all(dir);
}

async fn an_instance_cut_off_from_the_stream_falls_back_after_the_bound_and_recovers(backend: &Backend) {
    let fleet = Fleet::new();
    let staleness = Duration::from_secs(2);
    let closed = backend.builder().staleness(staleness).start().unwrap();
    let via_redis = backend.builder().staleness(staleness).fallback(Fallback::Redis).start().unwrap();
    closed.ready().await;
    via_redis.ready().await;
    closed.revoke("paused-1", now() + 600).await.unwrap();
    until(Duration::from_secs(1), || via_redis.len() == 1).await.unwrap();

    // Redis (on a cluster, the node of the denylist's slot) stops answering every client for 6 s: the stream
    // reads block.
    let mut admin = backend.admin(&backend.stream());
    redis::cmd("CLIENT").arg("PAUSE").arg(6_000).arg("ALL").exec(&mut admin).unwrap();
    let paused = Instant::now();
    let revoked = fleet.claims("paused-1");
    let fresh = fleet.claims("paused-2");
    // Within the bound, the replica answers.
    assert_eq!(status(&closed, &revoked), Ok(TokenStatus::Revoked));
    // Past it, the closed one refuses to decide, and the other asks Redis (which, paused, cannot answer).
    // Each instance's bound runs from its own last read: wait for both to pass it.
    let fell_back = until(Duration::from_secs(5), || !closed.in_sync() && !via_redis.in_sync()).await.unwrap();
    assert!(paused.elapsed() >= staleness - Duration::from_millis(600), "fell back after only {fell_back:?}");
    assert!(status(&closed, &revoked).is_err());
    assert!(status(&closed, &fresh).is_err(), "a token was let through while out of sync");
    assert!(matches!(via_redis.check(&revoked), Lookup::Pending(_)), "the Redis fallback asks Redis");

    // When Redis answers again, both recover by themselves.
    let recovered = until(Duration::from_secs(15), || closed.in_sync() && via_redis.in_sync()).await;
    assert!(recovered.is_some(), "the instances did not recover");
    assert_eq!(status(&closed, &revoked), Ok(TokenStatus::Revoked));
    assert_eq!(status(&via_redis, &fresh), Ok(TokenStatus::Active));
}

/// Three apps, each a router with `JwtAuthLayer` and its own `ReplicatedDenylist`, on one Redis: a token
/// revoked through A is refused by B and C over HTTP.
async fn three_apps_over_http_refuse_a_token_revoked_through_one_of_them_within_100_ms(backend: &Backend) {
    use axum::Router;
    use axum::routing::get;
    use jwtgate::JwtAuthLayer;

    let fleet = Fleet::new();
    let mut apps = Vec::new();
    for _ in 0..3 {
        let denylist = instance(backend).await;
        let layer = JwtAuthLayer::<serde_json::Value>::new(fleet.validator.clone()).denylist(denylist.clone());
        let addr = jwtgate_tests::serve(Router::new().route("/", get(|| async { "ok" })).layer(layer)).await;
        apps.push((denylist, format!("http://{addr}/")));
    }
    let http = reqwest::Client::new();
    let status_of = |url: &str, token: &str| {
        let request = http.get(url).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let mut latencies = Vec::new();
    for i in 0..1_000 {
        let jti = format!("http-{i}");
        let token = fleet.key.token().issuer(ISSUER).audience(AUDIENCE).token_id(&jti).build();
        assert_eq!(status_of(&apps[1].1, &token).await, 200);
        let started = Instant::now();
        // As A's logout handler would.
        apps[0].0.revoke(&jti, now() + 600).await.unwrap();
        loop {
            let (b, c) = tokio::join!(status_of(&apps[1].1, &token), status_of(&apps[2].1, &token));
            if (b, c) == (401, 401) {
                break;
            }
            assert!([b, c].iter().all(|status| [200, 401].contains(status)), "only 200 or 401: {b} {c}");
            assert!(started.elapsed() < Duration::from_millis(100), "revocation {i} took over 100 ms to reach B and C");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (latencies[500], latencies[990]);
    println!(
        "over HTTP, 1,000 revocations through A refused by B and C: p50 {p50:?}, p99 {p99:?}, max {:?}",
        latencies[999]
    );
}

async fn foreign_keys_of_any_type_under_the_prefix_do_not_stop_the_snapshot(backend: &Backend) {
    let fleet = Fleet::new();
    let a = instance(backend).await;
    a.revoke("kept", now() + 600).await.unwrap();
    // On a cluster, under the prefix's hash tag: on the node the snapshot scans.
    let prefix = backend.prefix(DEFAULT_PREFIX);
    let mut admin = backend.admin(&backend.stream());
    redis::cmd("SET").arg(format!("{prefix}sub:someone")).arg("not a number").exec(&mut admin).unwrap();
    redis::cmd("SET").arg(format!("{prefix}notes")).arg("anything").exec(&mut admin).unwrap();
    // Regression (issue 17): a key that is not a string (a nested prefix's stream, another store's hash)
    // failed the snapshot for good, and the replica never became ready.
    redis::cmd("HSET").arg(format!("{prefix}refresh:record")).arg("user").arg("ada").exec(&mut admin).unwrap();
    redis::cmd("XADD").arg(format!("{prefix}nested:stream")).arg("*").arg("k").arg("v").exec(&mut admin).unwrap();
    redis::cmd("SADD").arg(format!("{prefix}jti:a-set")).arg("x").exec(&mut admin).unwrap();
    let late = instance(backend).await;
    assert_eq!(status(&late, &fleet.claims("kept")), Ok(TokenStatus::Revoked));
    assert_eq!(late.len(), 1);
}

async fn events_trimmed_before_an_instance_reads_them_are_caught_up_by_a_snapshot(backend: &Backend) {
    // Regression (issue 17): an XREAD from a trimmed id returns what is left, and the events in between were
    // lost for good while the instance still said it was in sync.
    let fleet = Fleet::new();
    let (writer, follower) = (instance(backend).await, instance(backend).await);
    writer.revoke("seen", now() + 600).await.unwrap();
    // The follower has read the stream up to that event.
    let read = until(Duration::from_secs(2), || status(&follower, &fleet.claims("seen")) == Ok(TokenStatus::Revoked));
    assert!(read.await.is_some());
    // Between two of its reads, a revocation is written (its key and its event, as `revoke` does) and the
    // stream is trimmed past it, in one transaction (on a cluster, on the node of the denylist's slot): the
    // follower's next read finds nothing.
    let prefix = backend.prefix(DEFAULT_PREFIX);
    let mut admin = backend.admin(&backend.stream());
    let expires = now() + 600;
    redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(format!("{prefix}jti:trimmed"))
        .arg(1)
        .arg("EX")
        .arg(600)
        .ignore()
        .cmd("XADD")
        .arg(backend.stream())
        .arg("*")
        .arg("k")
        .arg("jti")
        .arg("v")
        .arg("trimmed")
        .arg("until")
        .arg(expires)
        .ignore()
        .cmd("XTRIM")
        .arg(backend.stream())
        .arg("MAXLEN")
        .arg(0)
        .ignore()
        .exec(&mut admin)
        .unwrap();
    let caught_up =
        until(Duration::from_secs(5), || status(&follower, &fleet.claims("trimmed")) == Ok(TokenStatus::Revoked));
    assert!(caught_up.await.is_some(), "the trimmed revocation reached the replica through a snapshot");
    assert_eq!(status(&follower, &fleet.claims("seen")), Ok(TokenStatus::Revoked));
    assert!(follower.in_sync());
    // Following goes on after the snapshot.
    writer.revoke("later", now() + 600).await.unwrap();
    let followed =
        until(Duration::from_secs(2), || status(&follower, &fleet.claims("later")) == Ok(TokenStatus::Revoked));
    assert!(followed.await.is_some());
}

async fn a_prefix_with_glob_characters_is_matched_literally(backend: &Backend) {
    // Regression (issue 17): `[`, `*` and `?` in the prefix made `SCAN MATCH` a pattern, and the snapshot
    // loaded nothing (or another prefix's keys).
    let fleet = Fleet::new();
    let prefix = "app[1]*?:";
    let start = || async {
        let denylist = backend.builder().prefix(prefix).start().unwrap();
        tokio::time::timeout(Duration::from_secs(10), denylist.ready()).await.expect("the snapshot loads");
        denylist
    };
    let a = start().await;
    a.revoke("kept", now() + 600).await.unwrap();
    // A key that the prefix, read as a pattern, would match; on a cluster, one on the node the snapshot scans
    // (the hash tag, read as a pattern, matches other tags, whose slots may be elsewhere).
    let stream = format!("{}stream", backend.prefix(prefix));
    let intruder = (0..)
        .map(|i| format!("{}jti:intruder", backend.prefix(&format!("app1x{i}:"))))
        .find(|key| backend.node_of(key) == backend.node_of(&stream))
        .unwrap();
    let mut admin = backend.admin(&stream);
    redis::cmd("SET").arg(&intruder).arg(1).arg("EX").arg(600).exec(&mut admin).unwrap();
    let late = start().await;
    assert_eq!(status(&late, &fleet.claims("kept")), Ok(TokenStatus::Revoked));
    assert_eq!(status(&late, &fleet.claims("intruder")), Ok(TokenStatus::Active));
    assert_eq!(late.len(), 1);
}
