//! The stores on a real Redis Cluster (three primaries, three replicas, `cluster-node-timeout` 1 s): a stalled
//! primary, the whole cluster down and back, a resharding, and a failover: a primary killed with SIGKILL, its
//! replica promoted. With replica durability on, no confirmed
//! revocation is lost and no revoked token is ever answered as active; with it off, the loss is measured.

#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "test code, which prints its measurements")]

use std::time::{Duration, Instant};

use jwtgate::revocation::{Denylist, Lookup, TokenStatus};
use jwtgate::validation::RegisteredClaims;
use jwtgate::{Algorithm, Validator};
use jwtgate_redis::{DEFAULT_PREFIX, Durability, RedisDenylist, ReplicatedDenylist};
use jwtgate_test::TestKey;
use jwtgate_tests::{AUDIENCE, ISSUER, RedisCluster, now};

const REVOCATIONS: usize = 1_000;

/// Claims of tokens with ids `ids`, validated, for lookups.
fn claims(ids: impl Iterator<Item = String>) -> Vec<(String, RegisteredClaims)> {
    let key = TestKey::generate(Algorithm::HS256);
    let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    ids.map(|jti| {
        let token = key.token().issuer(ISSUER).audience(AUDIENCE).subject("user").token_id(&jti).build();
        (jti, validator.validate::<serde_json::Value>(&token).unwrap().registered().clone())
    })
    .collect()
}

async fn status(denylist: &impl Denylist, claims: &RegisteredClaims) -> Result<TokenStatus, String> {
    match denylist.check(claims) {
        Lookup::Ready(result) => result.map_err(|error| error.to_string()),
        Lookup::Pending(pending) => pending.await.map_err(|error| error.to_string()),
    }
}

/// What a failover did to the revocations: lookups answered as active (must be none), answered as errors
/// (503, allowed while the cluster elects), and how long until every lookup answered again.
struct Failover {
    active: usize,
    errors: usize,
    recovered_in: Duration,
}

/// Kills the primary that serves `key`, and asks about every revoked token, again and again, until the cluster
/// is whole and every answer is an answer: counting what each lookup said.
async fn fail_over(
    cluster: &mut RedisCluster,
    key: &str,
    denylist: &impl Denylist,
    revoked: &[(String, RegisteredClaims)],
) -> Failover {
    let primary = cluster.primary_of(key);
    cluster.kill(primary);
    let started = Instant::now();
    let (mut active, mut errors) = (0, 0);
    loop {
        let mut answered = 0;
        for (_, claims) in revoked {
            match status(denylist, claims).await {
                Ok(TokenStatus::Active) => active += 1,
                Ok(TokenStatus::Revoked) => answered += 1,
                Err(_) => errors += 1,
            }
        }
        if answered == revoked.len() && cluster.primary_of(key) != primary {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the cluster did not recover within 30 s");
    }
    let recovered_in = started.elapsed();
    cluster.restart(primary);
    Failover { active, errors, recovered_in }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_replica_durability_no_revocation_is_lost_in_a_failover_and_none_is_ever_active() {
    let mut cluster = RedisCluster::start();
    let denylist = RedisDenylist::cluster(cluster.urls())
        .unwrap()
        .with_durability(Durability::replicas(1, Duration::from_secs(2)))
        .unwrap();
    let revoked = claims((0..REVOCATIONS).map(|i| format!("durable-{i}")));
    for (jti, _) in &revoked {
        denylist.revoke(jti, now() + 600).await.unwrap();
    }
    // The primary of the first token's key holds about a third of them.
    let key = format!("{DEFAULT_PREFIX}jti:durable-0");
    let failover = fail_over(&mut cluster, &key, &denylist, &revoked).await;
    println!(
        "failover with WAIT 1: recovered in {:?}, {} lookups answered 503 meanwhile, {} answered active",
        failover.recovered_in, failover.errors, failover.active
    );
    assert_eq!(failover.active, 0, "a revoked token was answered as active");
    // Every revocation is still there, on the promoted replica too.
    for (jti, claims) in &revoked {
        assert_eq!(status(&denylist, claims).await, Ok(TokenStatus::Revoked), "{jti}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_replica_durability_a_failover_may_lose_revocations_and_the_loss_is_measured() {
    let mut cluster = RedisCluster::start();
    let denylist = RedisDenylist::cluster(cluster.urls()).unwrap();
    let revoked = claims((0..REVOCATIONS).map(|i| format!("fast-{i}")));
    let key = format!("{DEFAULT_PREFIX}jti:fast-0");
    let primary = cluster.primary_of(&key);
    // Eight writers revoke while the primary is killed mid-way: a revocation it confirmed but had not passed to
    // its replica yet is lost. Only confirmed revocations count.
    let confirmed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = revoked
        .chunks(REVOCATIONS / 8)
        .map(|chunk| {
            let (denylist, confirmed) = (denylist.clone(), confirmed.clone());
            let chunk: Vec<_> = chunk.to_vec();
            tokio::spawn(async move {
                for (jti, claims) in chunk {
                    if denylist.revoke(&jti, now() + 600).await.is_ok() {
                        confirmed.lock().unwrap().push((jti, claims));
                    }
                }
            })
        })
        .collect();
    while confirmed.lock().unwrap().len() < REVOCATIONS / 2 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    cluster.kill(primary);
    for writer in writers {
        writer.await.unwrap();
    }
    let confirmed = confirmed.lock().unwrap().clone();
    let started = Instant::now();
    let mut lost = 0;
    for (_, claims) in &confirmed {
        loop {
            match status(&denylist, claims).await {
                Ok(TokenStatus::Revoked) => break,
                Ok(TokenStatus::Active) => {
                    lost += 1;
                    break;
                }
                Err(_) => assert!(started.elapsed() < Duration::from_secs(30), "no answer within 30 s"),
            }
        }
    }
    println!(
        "failover without WAIT, the primary killed during 8 writers' revocations: {lost} of {} confirmed \
         revocations lost (a third of the keys were on it)",
        confirmed.len()
    );
    assert!(confirmed.len() >= REVOCATIONS / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replicated_denylist_follows_its_stream_through_a_failover_of_the_node_that_holds_it() {
    let mut cluster = RedisCluster::start();
    let urls = cluster.urls();
    let start = || {
        ReplicatedDenylist::cluster(&urls).durability(Durability::replicas(1, Duration::from_secs(2))).start().unwrap()
    };
    let (a, b) = (start(), start());
    for denylist in [&a, &b] {
        tokio::time::timeout(Duration::from_secs(10), denylist.ready()).await.expect("the snapshot loads");
    }
    let before = claims((0..300).map(|i| format!("before-{i}")));
    for (jti, _) in &before {
        a.revoke(jti, now() + 600).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.len() < before.len() {
        assert!(Instant::now() < deadline, "B has {} of {} revocations", b.len(), before.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every key of the denylist shares the stream's slot: killing its primary takes all of them.
    let stream = format!("{{{DEFAULT_PREFIX}}}stream");
    let failover = fail_over(&mut cluster, &stream, &b, &before).await;
    assert_eq!(failover.active, 0, "a revoked token was answered as active");
    // After the failover: new revocations reach B through the promoted primary's stream, and a new instance's
    // snapshot there holds every confirmed revocation.
    let after = claims((0..100).map(|i| format!("after-{i}")));
    for (jti, _) in &after {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(error) = a.revoke(jti, now() + 600).await {
            assert!(Instant::now() < deadline, "revocations fail after the failover: {error}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.len() < before.len() + after.len() {
        assert!(Instant::now() < deadline, "B has {} revocations after the failover", b.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let late = start();
    tokio::time::timeout(Duration::from_secs(10), late.ready()).await.expect("the snapshot loads");
    for (jti, claims) in before.iter().chain(&after) {
        assert_eq!(status(&late, claims).await, Ok(TokenStatus::Revoked), "{jti}");
    }
}

/// A slot moved to another primary while lookups run: half its keys moved (lookups of those get `ASK`), then
/// all of them and the slot itself (`MOVED`). Every lookup answers, right, within the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_resharded_while_in_use_keeps_answering_through_ask_and_moved() {
    let cluster = RedisCluster::start();
    let denylist = RedisDenylist::cluster(cluster.urls()).unwrap();
    // One hash tag: every key in one slot.
    let revoked = claims((0..40).map(|i| format!("{{moving}}-{i}")));
    for (jti, _) in &revoked {
        denylist.revoke(jti, now() + 600).await.unwrap();
    }
    let key = format!("{DEFAULT_PREFIX}jti:{{moving}}-0");
    let (from, to) = {
        let from = cluster.primary_of(&key);
        (from, cluster.primaries().into_iter().find(|port| *port != from).unwrap())
    };
    let id = |port: u16| -> String {
        redis::cmd("CLUSTER").arg("MYID").query(&mut cluster.connection(port).unwrap()).unwrap()
    };
    let (from_id, to_id) = (id(from), id(to));
    let mut source = cluster.connection(from).unwrap();
    let mut target = cluster.connection(to).unwrap();
    let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key).query(&mut source).unwrap();
    redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("IMPORTING").arg(&from_id).exec(&mut target).unwrap();
    redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("MIGRATING").arg(&to_id).exec(&mut source).unwrap();
    let migrate = |source: &mut redis::Connection, count: usize| {
        let keys: Vec<String> = redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(count).query(source).unwrap();
        if !keys.is_empty() {
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .exec(source)
                .unwrap();
        }
    };
    migrate(&mut source, revoked.len() / 2);
    let check = async || {
        for (jti, claims) in &revoked {
            let asked = Instant::now();
            assert_eq!(status(&denylist, claims).await, Ok(TokenStatus::Revoked), "{jti}");
            assert!(asked.elapsed() < Duration::from_secs(2), "{jti} took {:?}", asked.elapsed());
        }
        let fresh = claims(std::iter::once("{moving}-fresh".to_owned()));
        assert_eq!(status(&denylist, &fresh[0].1).await, Ok(TokenStatus::Active));
    };
    check().await;
    // A revocation during the migration goes where the slot's keys are going.
    denylist.revoke("{moving}-during", now() + 600).await.unwrap();
    migrate(&mut source, 1_000);
    for port in cluster.primaries() {
        let mut node = cluster.connection(port).unwrap();
        redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("NODE").arg(&to_id).exec(&mut node).unwrap();
    }
    assert_eq!(cluster.primary_of(&key), to);
    check().await;
    let during = claims(std::iter::once("{moving}-during".to_owned()));
    assert_eq!(status(&denylist, &during[0].1).await, Ok(TokenStatus::Revoked));
}

/// `RedisDenylist`'s subject cutoffs and expiries on a cluster, their keys over every shard: a cutoff refuses
/// the subject's older tokens only, is never lowered, and a revocation ends with its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subject_cutoffs_and_expiries_behave_on_a_cluster_as_on_one_server() {
    let cluster = RedisCluster::start();
    let denylist = RedisDenylist::cluster(cluster.urls()).unwrap();
    let key = TestKey::generate(Algorithm::HS256);
    let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let of = |subject: &str, iat: i64| {
        let token = key.token().issuer(ISSUER).audience(AUDIENCE).subject(subject).claim("iat", iat).build();
        validator.validate::<serde_json::Value>(&token).unwrap().registered().clone()
    };
    let issued = now() - 10;
    for i in 0..30 {
        denylist.revoke_subject(&format!("user-{i}"), now(), now() + 600).await.unwrap();
    }
    for i in 0..30 {
        let subject = format!("user-{i}");
        assert_eq!(status(&denylist, &of(&subject, issued)).await, Ok(TokenStatus::Revoked), "{subject}");
        assert_eq!(status(&denylist, &of(&subject, now() + 1)).await, Ok(TokenStatus::Active), "{subject}, later");
    }
    assert_eq!(status(&denylist, &of("someone-else", issued)).await, Ok(TokenStatus::Active));
    // A lower cutoff later does not lower it.
    denylist.revoke_subject("user-0", issued - 100, now() + 600).await.unwrap();
    assert_eq!(status(&denylist, &of("user-0", issued)).await, Ok(TokenStatus::Revoked));
    // A revocation lives until its token's end, then goes.
    let short = claims(std::iter::once("short-lived".to_owned()));
    denylist.revoke("short-lived", now() + 1).await.unwrap();
    assert_eq!(status(&denylist, &short[0].1).await, Ok(TokenStatus::Revoked));
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&denylist, &short[0].1).await != Ok(TokenStatus::Active) {
        assert!(Instant::now() < deadline, "the revocation outlived its token");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `RedisDenylist` on a cluster that stalls or goes away: a paused primary is an error within the timeout, a
/// cluster that is down is an error for every lookup (503, never an unchecked 200), and when the cluster is
/// back the same store answers again, without a restart, with the revocations made before the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_that_stalls_or_goes_down_is_an_error_never_an_answer_and_service_resumes() {
    let mut cluster = RedisCluster::start();
    let timeout = Duration::from_millis(500);
    let denylist = RedisDenylist::cluster(cluster.urls()).unwrap().with_timeout(timeout);
    let revoked = claims((0..30).map(|i| format!("before-{i}")));
    for (jti, _) in &revoked {
        denylist.revoke(jti, now() + 600).await.unwrap();
    }
    let fresh = claims((0..30).map(|i| format!("fresh-{i}")));
    for (jti, claims) in &fresh {
        assert_eq!(status(&denylist, claims).await, Ok(TokenStatus::Active), "{jti}");
    }

    // A primary that stops answering: lookups of its keys fail within the timeout, others still answer. A
    // lookup reads the token's key and its subject's (every token here has the subject `user`): the stalled
    // primary is one that holds neither the subject's key nor every token's.
    let primary_of_token = |jti: &str| cluster.primary_of(&format!("{DEFAULT_PREFIX}jti:{jti}"));
    let subject_primary = cluster.primary_of(&format!("{DEFAULT_PREFIX}sub:user"));
    let (stalled_jti, stalled_claims) =
        fresh.iter().find(|(jti, _)| primary_of_token(jti) != subject_primary).expect("a token on another shard");
    let stalled = primary_of_token(stalled_jti);
    let elsewhere = fresh.iter().find(|(jti, _)| primary_of_token(jti) != stalled).expect("a token elsewhere");
    let mut control = cluster.connection(stalled).unwrap();
    redis::cmd("CLIENT").arg("PAUSE").arg(3_000).arg("ALL").exec(&mut control).unwrap();
    let asked = Instant::now();
    assert!(status(&denylist, stalled_claims).await.is_err(), "a stalled primary gave an answer");
    assert!(asked.elapsed() < Duration::from_millis(1_500), "the timeout did not cut the wait: {:?}", asked.elapsed());
    assert_eq!(status(&denylist, &elsewhere.1).await, Ok(TokenStatus::Active), "another shard still answers");
    redis::cmd("CLIENT").arg("UNPAUSE").exec(&mut control).unwrap();

    // The whole cluster down: every lookup fails, none answers "active", and each fails within the timeout.
    cluster.stop_all();
    for (jti, claims) in revoked.iter().chain(&fresh).take(20) {
        let asked = Instant::now();
        let answer = status(&denylist, claims).await;
        assert!(answer.is_err(), "{jti}: {answer:?} from a cluster that is down");
        assert!(asked.elapsed() < Duration::from_secs(3), "{jti} took {:?}", asked.elapsed());
    }
    assert!(denylist.revoke("during-outage", now() + 600).await.is_err(), "a revocation confirmed by nobody");

    // Back (every write was on disk before it was answered): the same store answers again, and the revocations
    // made before the outage hold.
    cluster.start_all();
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(&denylist, &fresh[1].1).await != Ok(TokenStatus::Active) {
        assert!(Instant::now() < deadline, "service did not resume after the cluster came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (jti, claims) in &revoked {
        assert_eq!(status(&denylist, claims).await, Ok(TokenStatus::Revoked), "{jti} after the outage");
    }
}

/// `ReplicatedDenylist` on a cluster whose every node restarts (its writes were on disk): the instances
/// reconnect and resync, lose nothing, and a new instance loads every revocation. (Its other behaviour tests run
/// on a cluster in `tests/replicated.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replicated_denylist_resyncs_after_the_whole_cluster_restarts() {
    let mut cluster = RedisCluster::start();
    let urls = cluster.urls();
    let start = || ReplicatedDenylist::cluster(&urls).start().unwrap();
    let (writer, follower) = (start(), start());
    for denylist in [&writer, &follower] {
        tokio::time::timeout(Duration::from_secs(10), denylist.ready()).await.expect("the snapshot loads");
    }
    let seen = claims(std::iter::once("seen".to_owned()));
    writer.revoke("seen", now() + 600).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&follower, &seen[0].1).await != Ok(TokenStatus::Revoked) {
        assert!(Instant::now() < deadline, "the follower did not read the stream");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The whole cluster restarts (its writes were on disk): the instances reconnect and follow again.
    cluster.stop_all();
    cluster.start_all();
    let after = claims(std::iter::once("after-restart".to_owned()));
    let deadline = Instant::now() + Duration::from_secs(15);
    while writer.revoke("after-restart", now() + 600).await.is_err() {
        assert!(Instant::now() < deadline, "revocations still fail after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while status(&follower, &after[0].1).await != Ok(TokenStatus::Revoked) {
        assert!(Instant::now() < deadline, "the follower did not resync after the restart");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let late = start();
    tokio::time::timeout(Duration::from_secs(10), late.ready()).await.expect("the snapshot loads");
    for (jti, claims) in seen.iter().chain(&after) {
        assert_eq!(status(&late, claims).await, Ok(TokenStatus::Revoked), "{jti}");
        assert_eq!(status(&follower, claims).await, Ok(TokenStatus::Revoked), "{jti}");
    }
}

/// A cluster whose primaries may evict keys is warned about, as one server is: every primary is asked. (On
/// a current-thread runtime: the check is a spawned task, whose lines the capture sees only there.)
#[tokio::test]
async fn a_cluster_that_may_evict_revocations_is_warned_about() {
    let cluster = RedisCluster::start();
    let primaries = cluster.primaries();
    // One primary only evicts: the warning must come from asking each of them.
    let mut evicting = cluster.connection(primaries[1]).unwrap();
    redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("allkeys-lru").exec(&mut evicting).unwrap();
    let (logs, _guard) = jwtgate_tests::logs::capture(tracing::Level::DEBUG);
    let _denylist = RedisDenylist::cluster(cluster.urls()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while logs.text().matches("maxmemory-policy is").count() < primaries.len() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every primary's policy was read within 20 s");
    let log = logs.text();
    assert_eq!(log.matches("WARN").count(), 1, "{log}");
    assert!(log.contains("allkeys-lru") && log.contains("set maxmemory-policy noeviction"), "{log}");
    assert_eq!(log.matches("maxmemory-policy is noeviction").count(), primaries.len() - 1, "{log}");
}
