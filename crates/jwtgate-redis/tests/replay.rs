//! `RedisReplayStore` against a real `redis-server`: a proof is new once for the whole fleet, it expires with
//! its window, and a Redis that does not answer is an error, never a pass.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::time::Duration;

use jwtgate::__private::unix_now;
use jwtgate_core::{ProofUse, ReplayCheck, ReplayErrorKind, ReplayStore};
use jwtgate_redis::RedisReplayStore;
use jwtgate_tests::{RedisCluster, RedisServer};

async fn record(store: &RedisReplayStore, jkt: &str, jti: &str, until: i64) -> Result<ProofUse, ReplayErrorKind> {
    match store.record(jkt, jti, until) {
        ReplayCheck::Ready(result) => result.map_err(|error| error.kind()),
        ReplayCheck::Pending(pending) => pending.await.map_err(|error| error.kind()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proof_is_new_once_across_the_fleet_and_expires_with_its_window() {
    let redis = RedisServer::start();
    let (a, b) = (RedisReplayStore::new(&redis.url()).unwrap(), RedisReplayStore::new(&redis.url()).unwrap());
    let until = unix_now() + 60;
    assert_eq!(record(&a, "jkt-1", "p1", until).await, Ok(ProofUse::First));
    assert_eq!(record(&b, "jkt-1", "p1", until).await, Ok(ProofUse::Replayed), "another instance");
    assert_eq!(record(&a, "jkt-1", "p1", until).await, Ok(ProofUse::Replayed));
    assert_eq!(record(&b, "jkt-2", "p1", until).await, Ok(ProofUse::First), "another key's proof");
    // Remembered for the rest of the window, no longer.
    let mut conn = redis.connection().unwrap();
    let ttl: i64 = redis::cmd("TTL").arg("jwtgate:dpop:jkt-1:p1").query(&mut conn).unwrap();
    assert!((55..=60).contains(&ttl), "{ttl}");
    // A proof at or past the end of its window is still never first without being remembered: for a second.
    assert_eq!(record(&a, "jkt-1", "old", unix_now() - 1).await, Ok(ProofUse::First));
    assert_eq!(record(&b, "jkt-1", "old", unix_now() - 1).await, Ok(ProofUse::Replayed));
    let ttl: i64 = redis::cmd("TTL").arg("jwtgate:dpop:jkt-1:old").query(&mut conn).unwrap();
    assert!((0..=1).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_uses_of_one_proof_on_two_instances_give_exactly_one_first() {
    let redis = RedisServer::start();
    concurrent_uses([RedisReplayStore::new(&redis.url()).unwrap(), RedisReplayStore::new(&redis.url()).unwrap()]).await;
}

/// On a real cluster: proofs of many keys land on every shard, each new once across two instances.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_cluster_each_proof_is_new_once_across_the_fleet() {
    let cluster = RedisCluster::start();
    let stores =
        [RedisReplayStore::cluster(cluster.urls()).unwrap(), RedisReplayStore::cluster(cluster.urls()).unwrap()];
    let until = unix_now() + 60;
    for i in 0..60 {
        let jkt = format!("jkt-{i}");
        assert_eq!(record(&stores[i % 2], &jkt, "p", until).await, Ok(ProofUse::First), "{jkt}");
        assert_eq!(record(&stores[(i + 1) % 2], &jkt, "p", until).await, Ok(ProofUse::Replayed), "{jkt}");
    }
    concurrent_uses(stores).await;
}

async fn concurrent_uses(stores: [RedisReplayStore; 2]) {
    let until = unix_now() + 60;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move { record(&store, "jkt", "raced", until).await })
        })
        .collect();
    let mut firsts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(ProofUse::First) => firsts += 1,
            Ok(ProofUse::Replayed) => {}
            Err(kind) => panic!("{kind:?}"),
        }
    }
    assert_eq!(firsts, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_that_is_down_is_an_error_within_the_timeout() {
    let mut redis = RedisServer::start();
    let store = RedisReplayStore::new(&redis.url()).unwrap().with_timeout(Duration::from_millis(500));
    assert_eq!(record(&store, "jkt", "before", unix_now() + 60).await, Ok(ProofUse::First));
    redis.stop();
    assert_eq!(record(&store, "jkt", "during", unix_now() + 60).await, Err(ReplayErrorKind::Unavailable));
}

/// The server's count of commands processed, from `INFO stats`.
fn commands_processed(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
    let line = info.lines().find(|line| line.starts_with("total_commands_processed:")).unwrap();
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_check_is_one_command_one_round_trip() {
    let redis = RedisServer::start();
    let store = RedisReplayStore::new(&redis.url()).unwrap();
    // The first check also opens the connection (and asks for the eviction policy): not counted.
    assert_eq!(record(&store, "jkt", "warm-up", unix_now() + 60).await, Ok(ProofUse::First));
    let mut conn = redis.connection().unwrap();
    let before = commands_processed(&mut conn);
    for i in 0..10 {
        assert_eq!(record(&store, "jkt", &format!("p{i}"), unix_now() + 60).await, Ok(ProofUse::First));
    }
    assert_eq!(record(&store, "jkt", "p0", unix_now() + 60).await, Ok(ProofUse::Replayed));
    // Eleven checks, and the INFO that reads the count.
    assert_eq!(commands_processed(&mut conn) - before, 11 + 1);
}
