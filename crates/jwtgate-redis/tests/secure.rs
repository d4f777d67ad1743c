//! Every store over TLS (`rediss://`) and as a Redis user limited to jwtgate's keys, against real
//! `redis-server`s: one server and a cluster that speaks TLS between its nodes. The user is created with the
//! ACL that `docs/deployment.md` gives, and Redis's `ACL LOG` must show nothing refused.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::time::{Duration, Instant};

use jwtgate::revocation::{Denylist, Lookup, TokenStatus};
use jwtgate::session::{SessionError, Sessions, TokenIssuer};
use jwtgate::validation::RegisteredClaims;
use jwtgate::{Algorithm, Validator, keys::SigningKey};
use jwtgate_core::{ProofUse, ReplayCheck, ReplayStore};
use jwtgate_redis::{
    Durability, RedisDenylist, RedisRefreshStore, RedisReplayStore, RedisTls, ReplicatedDenylist,
    ReplicatedDenylistBuilder,
};
use jwtgate_test::TestKey;
use jwtgate_tests::{AUDIENCE, ISSUER, RedisCluster, RedisServer, RedisTlsFiles, now};
use serde_json::json;

/// The ACL of `docs/deployment.md`, read from the document itself so that the two cannot drift apart.
fn documented_acl() -> Vec<String> {
    let guide = include_str!("../../../docs/deployment.md");
    let start = guide.find("ACL SETUSER jwtgate").expect("the guide gives an ACL");
    let block = &guide[start..start + guide[start..].find("```").expect("the ACL's code block ends")];
    block.split_whitespace().skip(2).map(str::to_owned).collect()
}

/// Creates the documented user on the node at `port`.
fn create_user(connection: &mut redis::Connection) {
    let mut command = redis::cmd("ACL");
    command.arg("SETUSER");
    for arg in documented_acl() {
        command.arg(arg.replace("long-random-password", PASSWORD));
    }
    let () = command.query(connection).unwrap();
    let () = redis::cmd("ACL").arg("LOG").arg("RESET").query(connection).unwrap();
}

const PASSWORD: &str = "a-password-for-this-test-only";

/// What the node refused since [`create_user`]: `(command, object)` of each `ACL LOG` entry.
fn refused(connection: &mut redis::Connection) -> Vec<String> {
    let entries: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query(connection).unwrap();
    entries
        .into_iter()
        .map(|entry| {
            let fields: Vec<(String, redis::Value)> = redis::from_redis_value(entry).unwrap_or_default();
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| redis::from_redis_value::<String>(value.clone()).unwrap_or_default())
                    .unwrap_or_default()
            };
            format!("{} {} {}", field("reason"), field("context"), field("object"))
        })
        .collect()
}

fn with_user(url: &str) -> String {
    url.replacen("://", &format!("://jwtgate:{PASSWORD}@"), 1)
}

fn registered(key: &TestKey, jti: &str, subject: &str) -> RegisteredClaims {
    let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let token = key.token().issuer(ISSUER).audience(AUDIENCE).subject(subject).token_id(jti).build();
    validator.validate::<serde_json::Value>(&token).unwrap().registered().clone()
}

async fn status(denylist: &impl Denylist, claims: &RegisteredClaims) -> Result<TokenStatus, String> {
    match denylist.check(claims) {
        Lookup::Ready(result) => result.map_err(|error| error.to_string()),
        Lookup::Pending(pending) => pending.await.map_err(|error| error.to_string()),
    }
}

async fn record(store: &RedisReplayStore, jkt: &str, jti: &str) -> Result<ProofUse, String> {
    match store.record(jkt, jti, now() + 60) {
        ReplayCheck::Ready(result) => result.map_err(|error| error.to_string()),
        ReplayCheck::Pending(pending) => pending.await.map_err(|error| error.to_string()),
    }
}

/// Revokes tokens (and a subject) whose keys spread over every shard, and checks every answer.
async fn denylist_works(denylist: &impl Denylist) {
    let key = TestKey::generate(Algorithm::HS256);
    let tokens: Vec<RegisteredClaims> =
        (0..20).map(|i| registered(&key, &format!("jti-{i}"), &format!("user-{i}"))).collect();
    for i in (0..20).step_by(2) {
        denylist.revoke(&format!("jti-{i}"), now() + 300).await.unwrap();
    }
    denylist.revoke_subject("user-1", now() + 5, now() + 300).await.unwrap();
    for (i, claims) in tokens.iter().enumerate() {
        let expected = if i % 2 == 0 || i == 1 { TokenStatus::Revoked } else { TokenStatus::Active };
        assert_eq!(status(denylist, claims).await, Ok(expected), "token {i}");
    }
}

async fn replay_store_works(store: &RedisReplayStore) {
    for i in 0..20 {
        let jkt = format!("jkt-{i}");
        assert_eq!(record(store, &jkt, "p").await, Ok(ProofUse::First), "{jkt}");
        assert_eq!(record(store, &jkt, "p").await, Ok(ProofUse::Replayed), "{jkt}");
    }
}

/// A session logs in, rotates, and a replay of a used refresh token revokes its family.
async fn refresh_store_works(store: RedisRefreshStore) {
    let issuer = TokenIssuer::builder("https://auth.test", SigningKey::generate(Algorithm::ES256, "k").unwrap())
        .audience("api")
        .build()
        .unwrap();
    let sessions = Sessions::new(issuer, store);
    for user in ["alice", "bob", "carol"] {
        let first = sessions.login(user, &json!({})).await.unwrap();
        let second = sessions.refresh(first.refresh.as_str(), |_| Some(json!({}))).await.unwrap();
        let reuse = sessions.refresh(first.refresh.as_str(), |_| Some(json!({}))).await.unwrap_err();
        assert!(matches!(reuse, SessionError::RefreshTokenReused), "{reuse}");
        let revoked = sessions.refresh(second.refresh.as_str(), |_| Some(json!({}))).await.unwrap_err();
        assert!(matches!(revoked, SessionError::RefreshTokenReused | SessionError::InvalidRefreshToken), "{revoked}");
    }
}

/// Two replicated denylists: a revocation through one reaches the other's memory through the stream.
async fn replicated_denylist_works(builder: impl Fn() -> ReplicatedDenylistBuilder) {
    let (a, b) = (builder().start().unwrap(), builder().start().unwrap());
    tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(a.ready(), b.ready()) }).await.unwrap();
    let key = TestKey::generate(Algorithm::HS256);
    let claims = registered(&key, "replicated-1", "user");
    a.revoke("replicated-1", now() + 300).await.unwrap();
    // `b` answers from its memory while in sync: the revocation reached it through the stream.
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&b, &claims).await != Ok(TokenStatus::Revoked) {
        assert!(Instant::now() < deadline, "the revocation did not reach the other instance");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(b.in_sync());
}

fn tls(files: &RedisTlsFiles) -> RedisTls {
    RedisTls::new().root_certificates(files.ca_pem.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_store_speaks_tls_to_a_server_with_a_private_authority() {
    let files = RedisTlsFiles::new(&["127.0.0.1"]);
    let redis = RedisServer::start_tls(&files, "no");
    let url = redis.tls_url();
    denylist_works(&RedisDenylist::new(&url).unwrap().with_tls(tls(&files)).unwrap()).await;
    replay_store_works(&RedisReplayStore::new(&url).unwrap().with_tls(tls(&files)).unwrap()).await;
    refresh_store_works(RedisRefreshStore::new(&url).unwrap().with_tls(tls(&files)).unwrap()).await;
    replicated_denylist_works(|| ReplicatedDenylist::builder(&url).tls(tls(&files))).await;
    // Every one of them reached the server through TLS: the plain port saw no key.
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut redis.connection().unwrap()).unwrap();
    assert!(keys.iter().any(|key| key.starts_with("jwtgate:denylist:jti:")), "{keys:?}");
    assert!(keys.iter().any(|key| key.starts_with("jwtgate:dpop:")), "{keys:?}");
    assert!(keys.iter().any(|key| key.starts_with("jwtgate:refresh:")), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_asks_for_a_client_certificate_gets_one_and_refuses_a_client_without() {
    let files = RedisTlsFiles::new(&["127.0.0.1"]);
    let redis = RedisServer::start_tls(&files, "yes");
    let with_certificate = tls(&files).client_certificate(files.client_pem.clone(), files.client_key_pem.clone());
    let denylist = RedisDenylist::new(&redis.tls_url()).unwrap().with_tls(with_certificate).unwrap();
    denylist_works(&denylist).await;
    // Without one, the handshake fails: an error (503 from the layer), never an answer.
    let without = RedisDenylist::new(&redis.tls_url()).unwrap().with_tls(tls(&files)).unwrap();
    let claims = registered(&TestKey::generate(Algorithm::HS256), "jti-x", "user");
    let error = status(&without, &claims).await.unwrap_err();
    assert!(!error.contains(PASSWORD) && !error.contains("PRIVATE KEY"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_from_another_authority_or_for_another_name_is_refused() {
    let files = RedisTlsFiles::new(&["127.0.0.1"]);
    let redis = RedisServer::start_tls(&files, "no");
    let claims = registered(&TestKey::generate(Algorithm::HS256), "jti-x", "user");
    // The platform's authorities (a `rediss://` URL alone) do not include the test's CA.
    let platform = RedisDenylist::new(&redis.tls_url()).unwrap();
    let error = status(&platform, &claims).await.unwrap_err();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    // Another private authority.
    let other = RedisTlsFiles::new(&["127.0.0.1"]);
    let stranger = RedisDenylist::new(&redis.tls_url()).unwrap().with_tls(tls(&other)).unwrap();
    assert!(status(&stranger, &claims).await.is_err());
    // The right authority, but a certificate for another name than the URL's host.
    let named = RedisTlsFiles::new(&["localhost"]);
    let server = RedisServer::start_tls(&named, "no");
    let wrong_host = RedisDenylist::new(&server.tls_url()).unwrap().with_tls(tls(&named)).unwrap();
    let error = status(&wrong_host, &claims).await.unwrap_err();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    // The same server by the name in its certificate answers: the name was the only problem.
    let by_name = server.tls_url().replace("127.0.0.1", "localhost");
    let right_host = RedisDenylist::new(&by_name).unwrap().with_tls(tls(&named)).unwrap();
    assert_eq!(status(&right_host, &claims).await, Ok(TokenStatus::Active));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_settings_that_cannot_work_fail_when_the_store_is_built() {
    let files = RedisTlsFiles::new(&["127.0.0.1"]);
    // Certificates for a plain `redis://` URL: refused rather than ignored.
    let error = RedisDenylist::new("redis://127.0.0.1:6379/").unwrap().with_tls(tls(&files)).unwrap_err();
    assert!(error.to_string().contains("rediss://"), "{error}");
    let error = RedisReplayStore::cluster(["redis://127.0.0.1:6379/"]).unwrap().with_tls(tls(&files));
    assert!(error.is_err());
    // A root certificate or a client key that does not parse.
    let garbage =
        RedisTls::new().root_certificates("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    assert!(RedisDenylist::new("rediss://127.0.0.1:6379/").unwrap().with_tls(garbage).is_err());
    let bad_key = tls(&files).client_certificate(files.client_pem.clone(), "not a key");
    let error = RedisRefreshStore::new("rediss://127.0.0.1:6379/").unwrap().with_tls(bad_key).unwrap_err();
    assert!(!error.to_string().contains("BEGIN"), "{error}");
    // The builder's settings are checked when it starts.
    let error = ReplicatedDenylist::builder("redis://127.0.0.1:6379/").tls(tls(&files)).start().unwrap_err();
    assert!(error.to_string().contains("rediss://"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_store_runs_as_the_documented_acl_user_and_nothing_is_refused() {
    let redis = RedisServer::start();
    let mut admin = redis.connection().unwrap();
    create_user(&mut admin);
    let url = with_user(&redis.url());
    let durable = Durability::replicas(0, Duration::from_millis(100));
    denylist_works(&RedisDenylist::new(&url).unwrap().with_durability(durable).unwrap()).await;
    replay_store_works(&RedisReplayStore::new(&url).unwrap()).await;
    refresh_store_works(RedisRefreshStore::new(&url).unwrap().with_durability(durable).unwrap()).await;
    replicated_denylist_works(|| ReplicatedDenylist::builder(&url)).await;
    assert_eq!(refused(&mut admin), Vec::<String>::new());
    // The user reaches jwtgate's keys only.
    let mut user = redis::Client::open(url.as_str()).unwrap().get_connection().unwrap();
    let error = redis::cmd("GET").arg("someone-else:secret").query::<Option<String>>(&mut user).unwrap_err();
    assert!(error.to_string().to_lowercase().contains("permission"), "{error}");
    let error = redis::cmd("CONFIG").arg("GET").arg("requirepass").query::<Vec<String>>(&mut user).unwrap_err();
    assert!(error.to_string().to_lowercase().contains("permission"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_tls_cluster_every_store_runs_as_the_documented_acl_user_with_replica_durability() {
    let files = RedisTlsFiles::new(&["127.0.0.1"]);
    let cluster = RedisCluster::start_tls(&files);
    let mut admins: Vec<redis::Connection> = Vec::new();
    for url in cluster.urls() {
        let mut connection = redis::Client::open(url).unwrap().get_connection().unwrap();
        create_user(&mut connection);
        admins.push(connection);
    }
    let urls: Vec<String> = cluster.tls_urls().iter().map(|url| with_user(url)).collect();
    let durable = Durability::replicas(1, Duration::from_secs(2));
    let denylist = RedisDenylist::cluster(&urls).unwrap().with_tls(tls(&files)).unwrap();
    denylist_works(&denylist.with_durability(durable).unwrap()).await;
    replay_store_works(&RedisReplayStore::cluster(&urls).unwrap().with_tls(tls(&files)).unwrap()).await;
    let refresh = RedisRefreshStore::cluster(&urls).unwrap().with_tls(tls(&files)).unwrap();
    refresh_store_works(refresh.with_durability(durable).unwrap()).await;
    replicated_denylist_works(|| ReplicatedDenylist::cluster(&urls).tls(tls(&files)).durability(durable)).await;
    for admin in &mut admins {
        assert_eq!(refused(admin), Vec::<String>::new());
        // Every shard, primaries and replicas, holds some of the keys, which went over TLS only.
        let keys: u64 = redis::cmd("DBSIZE").query(admin).unwrap();
        assert!(keys > 0);
    }
}
