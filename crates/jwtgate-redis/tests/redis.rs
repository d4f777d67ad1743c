//! `RedisDenylist` against a real `redis-server`, which these tests start on a free loopback port and stop
//! afterwards. `./scripts/test.sh` installs `redis-server` when it is missing.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator, revocation::Denylist};
use jwtgate_redis::{Durability, RedisDenylist};
use jwtgate_tests::{AUDIENCE, ISSUER, RedisCluster, RedisServer, TestKey, claims, now};
use serde_json::{Value, json};

struct App {
    base: String,
    http: reqwest::Client,
}

impl App {
    async fn start(key: &TestKey, denylist: RedisDenylist) -> Self {
        let validator = Validator::builder(KeySet::new([key.verification_key()]).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build();
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(JwtAuthLayer::<Value>::new(validator).denylist(denylist));
        let addr = jwtgate_tests::serve(app).await;
        Self { base: format!("http://{addr}/"), http: reqwest::Client::new() }
    }

    async fn call(&self, token: &str) -> reqwest::Response {
        self.http.get(&self.base).bearer_auth(token).send().await.unwrap()
    }

    async fn status(&self, token: &str) -> u16 {
        self.call(token).await.status().as_u16()
    }
}

fn token_with(key: &TestKey, extra: Value) -> String {
    let mut claims = claims();
    if let Value::Object(extra) = extra {
        claims.as_object_mut().unwrap().extend(extra);
    }
    key.sign(&claims)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_through_one_instance_is_refused_by_another() {
    let redis = RedisServer::start();
    let key = TestKey::generate(Algorithm::HS256);
    let (a, b) = (RedisDenylist::new(&redis.url()).unwrap(), RedisDenylist::new(&redis.url()).unwrap());
    let (app_a, app_b) = (App::start(&key, a.clone()).await, App::start(&key, b).await);
    let token = token_with(&key, json!({ "jti": "shared-1" }));
    assert_eq!((app_a.status(&token).await, app_b.status(&token).await), (200, 200));
    a.revoke("shared-1", now() + 330).await.unwrap();
    assert_eq!((app_a.status(&token).await, app_b.status(&token).await), (401, 401));
    let other = token_with(&key, json!({ "jti": "shared-2" }));
    assert_eq!(app_b.status(&other).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_expires_with_the_token() {
    let redis = RedisServer::start();
    let denylist = RedisDenylist::new(&redis.url()).unwrap().with_prefix("t:");
    denylist.revoke("short", now() + 2).await.unwrap();
    let mut connection = redis.connection().unwrap();
    let ttl: i64 = redis::cmd("TTL").arg("t:jti:short").query(&mut connection).unwrap();
    assert!((1..=2).contains(&ttl), "ttl {ttl}");
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let exists: bool = redis::cmd("EXISTS").arg("t:jti:short").query(&mut connection).unwrap();
        if !exists {
            break;
        }
        assert!(Instant::now() < deadline, "the key outlived the token");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    denylist.revoke("expired", now() - 1).await.unwrap();
    let exists: bool = redis::cmd("EXISTS").arg("t:jti:expired").query(&mut connection).unwrap();
    assert!(!exists, "an expired token needs no key");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subject_cutoff_refuses_older_tokens_of_that_subject() {
    let redis = RedisServer::start();
    let key = TestKey::generate(Algorithm::HS256);
    let denylist = RedisDenylist::new(&redis.url()).unwrap();
    let app = App::start(&key, denylist.clone()).await;
    let old = token_with(&key, json!({ "sub": "ada", "iat": now() - 60, "jti": "o" }));
    let no_iat = {
        let mut c = claims();
        c["sub"] = json!("ada");
        c.as_object_mut().unwrap().remove("iat");
        key.sign(&c)
    };
    let bob = token_with(&key, json!({ "sub": "bob", "iat": now() - 60 }));
    denylist.revoke_subject("ada", now() - 10, now() + 600).await.unwrap();
    assert_eq!(app.status(&old).await, 401);
    assert_eq!(app.status(&no_iat).await, 401);
    assert_eq!(app.status(&bob).await, 200);
    let fresh = token_with(&key, json!({ "sub": "ada", "iat": now() }));
    assert_eq!(app.status(&fresh).await, 200);
    // An earlier cutoff never lowers the later one.
    denylist.revoke_subject("ada", now() - 3600, now() + 60).await.unwrap();
    assert_eq!(app.status(&old).await, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_redis_means_503_never_200_and_service_resumes_when_it_is_back() {
    let dir = std::env::temp_dir().join(format!("jwtgate-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut redis = RedisServer::start_persistent(port, &dir);
    let key = TestKey::generate(Algorithm::HS256);
    let denylist = RedisDenylist::new(&redis.url()).unwrap().with_timeout(Duration::from_millis(500));
    let app = App::start(&key, denylist.clone()).await;
    let token = key.sign(&claims());
    denylist.revoke("revoked-before", now() + 600).await.unwrap();
    let revoked = token_with(&key, json!({ "jti": "revoked-before" }));
    assert_eq!(app.status(&token).await, 200);

    redis.stop();
    for _ in 0..5 {
        let response = app.call(&token).await;
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers()["retry-after"], "5");
        assert_eq!(app.status(&revoked).await, 503, "never 200 for an unchecked token");
    }
    assert_eq!(app.status("not.a.token").await, 401, "requests that need no store still get their 401");

    // Redis comes back on the same port and data: the app resumes without a restart, and the revocation
    // made before the outage still holds.
    let _redis = RedisServer::start_persistent(port, &dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.status(&token).await != 200 {
        assert!(Instant::now() < deadline, "service did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.status(&revoked).await, 401, "the revocation survived the outage");
    drop(_redis);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_redis_hits_the_timeout() {
    let redis = RedisServer::start();
    let key = TestKey::generate(Algorithm::HS256);
    let denylist = RedisDenylist::new(&redis.url()).unwrap().with_timeout(Duration::from_millis(300));
    let app = App::start(&key, denylist).await;
    let token = key.sign(&claims());
    assert_eq!(app.status(&token).await, 200);
    let mut connection = redis.connection().unwrap();
    redis::cmd("CLIENT").arg("PAUSE").arg(3000).arg("ALL").query::<()>(&mut connection).unwrap();
    let started = Instant::now();
    assert_eq!(app.status(&token).await, 503);
    assert!(started.elapsed() < Duration::from_millis(2500), "the timeout did not cut the wait short");
    redis::cmd("CLIENT").arg("UNPAUSE").query::<()>(&mut connection).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_revocations_from_eight_tasks_are_all_kept() {
    let redis = RedisServer::start();
    let denylist = RedisDenylist::new(&redis.url()).unwrap().with_prefix("c:");
    let until = now() + 600;
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let denylist = denylist.clone();
            tokio::spawn(async move {
                for i in 0..125 {
                    denylist.revoke(&format!("{task}-{i}"), until).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut connection = redis.connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("c:jti:*").query(&mut connection).unwrap();
    assert_eq!(keys.len(), 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn it_works_with_redis_cluster() {
    let cluster = RedisCluster::start();
    // Revocations are confirmed only once a replica holds them.
    let denylist = RedisDenylist::cluster(cluster.urls())
        .unwrap()
        .with_durability(Durability::replicas(1, Duration::from_secs(2)))
        .unwrap();
    let key = TestKey::generate(Algorithm::HS256);
    let app = App::start(&key, denylist.clone()).await;
    // Many tokens, so that their keys land in different slots and on different nodes.
    let tokens: Vec<String> =
        (0..30).map(|i| token_with(&key, json!({ "jti": format!("c-{i}"), "sub": format!("user-{i}") }))).collect();
    for token in &tokens {
        assert_eq!(app.status(token).await, 200);
    }
    for i in (0..30).step_by(2) {
        denylist.revoke(&format!("c-{i}"), now() + 300).await.unwrap();
    }
    denylist.revoke_subject("user-1", now() + 5, now() + 300).await.unwrap();
    for (i, token) in tokens.iter().enumerate() {
        let expected = if i % 2 == 0 || i == 1 { 401 } else { 200 };
        assert_eq!(app.status(token).await, expected, "token {i}");
    }
}

mod refresh_store {
    use std::sync::Arc;

    use jwtgate::session::{RefreshStore, RefreshToken, SessionError, Sessions, TokenIssuer};
    use jwtgate::{Algorithm, keys::SigningKey};
    use jwtgate_redis::RedisRefreshStore;
    use jwtgate_tests::RedisServer;
    use serde_json::json;

    fn sessions(redis: &RedisServer) -> Sessions<RedisRefreshStore> {
        sessions_on(RedisRefreshStore::new(&redis.url()).unwrap())
    }

    fn sessions_on(store: RedisRefreshStore) -> Sessions<RedisRefreshStore> {
        let issuer = TokenIssuer::builder("https://auth.test", SigningKey::generate(Algorithm::ES256, "k").unwrap())
            .audience("api")
            .build()
            .unwrap();
        Sessions::new(issuer, store)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_dpop_bound_refresh_token_keeps_its_key_through_rotation() {
        let redis = RedisServer::start();
        dpop_bound_rotation(&sessions(&redis)).await;
    }

    async fn dpop_bound_rotation(sessions: &Sessions<RedisRefreshStore>) {
        let pair = sessions.login_bound("alice", &json!({}), "key-a").await.unwrap();
        let record = sessions.store().find(RefreshToken::hash(pair.refresh.as_str())).await.unwrap().unwrap();
        assert_eq!(record.jkt.as_deref(), Some("key-a"));
        let next = sessions.refresh_bound(pair.refresh.as_str(), Some("key-a"), |_| Some(json!({}))).await.unwrap();
        let record = sessions.store().find(RefreshToken::hash(next.refresh.as_str())).await.unwrap().unwrap();
        assert_eq!(record.jkt.as_deref(), Some("key-a"));
        let err = sessions.refresh_bound(next.refresh.as_str(), Some("key-b"), |_| Some(json!({}))).await.unwrap_err();
        assert!(matches!(err, SessionError::ProofKeyMismatch), "{err}");
        let record = sessions.store().find(RefreshToken::hash(next.refresh.as_str())).await.unwrap().unwrap();
        assert!(record.revoked);
        // An unbound session has no key in Redis either.
        let plain = sessions.login("bob", &json!({})).await.unwrap();
        let record = sessions.store().find(RefreshToken::hash(plain.refresh.as_str())).await.unwrap().unwrap();
        assert_eq!(record.jkt, None);
        assert!(sessions.refresh(plain.refresh.as_str(), |_| Some(json!({}))).await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn tokens_are_stored_hashed_and_rotated_in_one_family_and_reuse_revokes_it() {
        let redis = RedisServer::start();
        let sessions = sessions(&redis);
        let pair = sessions.login("alice", &json!({ "roles": ["user"] })).await.unwrap();

        // Only the hash is in a key; the token itself is nowhere in Redis. The record carries its family as a hash
        // tag, and the index finds the family from the hash.
        let mut conn = redis.connection().unwrap();
        let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
        keys.sort();
        let hash = RefreshToken::hash(pair.refresh.as_str()).to_hex();
        let family: String = redis::cmd("GET").arg(format!("jwtgate:refresh:index:{hash}")).query(&mut conn).unwrap();
        assert_eq!(
            keys,
            [format!("jwtgate:refresh:index:{hash}"), format!("jwtgate:refresh:{{{family}}}:token:{hash}")]
        );
        for key in &keys {
            let ttl: i64 = redis::cmd("TTL").arg(key).query(&mut conn).unwrap();
            assert!((30 * 86_400 - 5..=30 * 86_400).contains(&ttl), "{key} lives as long as its session: {ttl}");
        }
        let keys = [keys[1].clone()];
        let dump: Vec<String> = redis::cmd("HVALS").arg(&keys[0]).query(&mut conn).unwrap();
        assert!(!dump.iter().any(|value| value.contains(pair.refresh.as_str())));

        rotation_and_reuse(&sessions, pair.refresh.as_str(), "alice").await;
    }

    /// Rotates `refresh` once, then presents it again: reuse, which revokes the family.
    async fn rotation_and_reuse(sessions: &Sessions<RedisRefreshStore>, refresh: &str, user: &str) {
        let next = sessions.refresh(refresh, |user| Some(json!({ "roles": [user] }))).await.unwrap();
        let first = sessions.store().find(RefreshToken::hash(refresh)).await.unwrap().unwrap();
        let second = sessions.store().find(RefreshToken::hash(next.refresh.as_str())).await.unwrap().unwrap();
        assert!(first.used && !second.used);
        assert_eq!((second.family.as_str(), second.user.as_str()), (first.family.as_str(), user));

        assert!(matches!(sessions.refresh(refresh, |_| Some(())).await.unwrap_err(), SessionError::RefreshTokenReused));
        assert!(matches!(
            sessions.refresh(next.refresh.as_str(), |_| Some(())).await.unwrap_err(),
            SessionError::InvalidRefreshToken
        ));
        assert!(sessions.store().find(RefreshToken::hash(next.refresh.as_str())).await.unwrap().unwrap().revoked);
        assert!(matches!(
            sessions.refresh("unknown", |_| Some(())).await.unwrap_err(),
            SessionError::InvalidRefreshToken
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_fifty_parallel_refreshes_on_two_servers_exactly_one_succeeds_and_the_family_is_revoked() {
        let redis = RedisServer::start();
        // Two "servers" with their own connections to one Redis.
        parallel_refreshes(Arc::new(sessions(&redis)), Arc::new(sessions(&redis))).await;
    }

    async fn parallel_refreshes(a: Arc<Sessions<RedisRefreshStore>>, b: Arc<Sessions<RedisRefreshStore>>) {
        let pair = a.login("alice", &()).await.unwrap();
        let won = jwtgate_tests::race_refreshes(&[a, b.clone()], pair.refresh.as_str(), 50).await;
        assert!(matches!(
            b.refresh(won.refresh.as_str(), |_| Some(())).await.unwrap_err(),
            SessionError::InvalidRefreshToken
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn logout_revokes_the_family_and_a_dead_redis_is_an_error_never_a_session() {
        let mut redis = RedisServer::start();
        let sessions = sessions(&redis);
        logout_revokes_the_family(&sessions).await;

        let other = sessions.login("bob", &()).await.unwrap();
        redis.stop();
        let err = sessions.refresh(other.refresh.as_str(), |_| Some(())).await.unwrap_err();
        assert!(matches!(err, SessionError::Store(_)), "{err}");
        assert!(err.to_string().starts_with("the session store is unavailable: "), "{err}");
        assert!(!err.to_string().contains(other.refresh.as_str()));
    }

    async fn logout_revokes_the_family(sessions: &Sessions<RedisRefreshStore>) {
        let pair = sessions.login("alice", &()).await.unwrap();
        sessions.logout_refresh_token(pair.refresh.as_str()).await.unwrap();
        assert!(matches!(
            sessions.refresh(pair.refresh.as_str(), |_| Some(())).await.unwrap_err(),
            SessionError::InvalidRefreshToken
        ));
    }

    /// Every behaviour above that does not read Redis's keys directly, on a real cluster with a replica for each
    /// primary, writes confirmed by one: sessions spread over the shards by family.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_a_cluster_rotation_reuse_races_and_logout_behave_as_on_one_server() {
        let cluster = jwtgate_tests::RedisCluster::start();
        let store = || {
            RedisRefreshStore::cluster(cluster.urls())
                .unwrap()
                .with_durability(jwtgate_redis::Durability::replicas(1, std::time::Duration::from_secs(2)))
                .unwrap()
        };
        let sessions = sessions_on(store());
        dpop_bound_rotation(&sessions).await;
        for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
            let pair = sessions.login(user, &json!({})).await.unwrap();
            rotation_and_reuse(&sessions, pair.refresh.as_str(), user).await;
        }
        parallel_refreshes(Arc::new(sessions_on(store())), Arc::new(sessions_on(store()))).await;
        logout_revokes_the_family(&sessions).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn logout_by_sid_keeps_the_family_revoked_for_the_session_and_never_shortens_it() {
        let redis = RedisServer::start();
        let sessions = sessions(&redis).session_lifetime(std::time::Duration::from_secs(3 * 86_400));
        let pair = sessions.login("alice", &()).await.unwrap();
        let claims = pair.access.token().split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
        )
        .unwrap();
        let sid = claims["sid"].as_str().unwrap().to_owned();
        sessions.logout(&sid, None).await.unwrap();
        let mut conn = redis.connection().unwrap();
        let marker = format!("jwtgate:refresh:{{{sid}}}:revoked");
        let ttl: i64 = redis::cmd("TTL").arg(&marker).query(&mut conn).unwrap();
        assert!((3 * 86_400 - 5..=3 * 86_400).contains(&ttl), "revoked for the session's longest life: {ttl}");
        assert!(matches!(
            sessions.refresh(pair.refresh.as_str(), |_| Some(())).await.unwrap_err(),
            SessionError::InvalidRefreshToken
        ));
        // A shorter revocation later leaves the longer one in place.
        sessions.store().revoke_family(&sid, jwtgate_tests::now() + 60).await.unwrap();
        let after: i64 = redis::cmd("TTL").arg(&marker).query(&mut conn).unwrap();
        assert!(after >= ttl - 5, "never shortened: {after} < {ttl}");
        // Records live until the session ends, so that reuse is recognized after a token's own expiry.
        let record_ttl: i64 = redis::cmd("TTL")
            .arg(format!("jwtgate:refresh:{{{sid}}}:token:{}", RefreshToken::hash(pair.refresh.as_str()).to_hex()))
            .query(&mut conn)
            .unwrap();
        assert!((3 * 86_400 - 5..=3 * 86_400).contains(&record_ttl), "{record_ttl}");
    }
}

/// A `redis-server` on a free port with this `maxmemory-policy`, and a denylist on it; returns what the
/// denylist logged once it read the policy (it logs at debug level when the policy is `noeviction`).
async fn eviction_policy_log(policy: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _redis = RedisServer::start_with(port, &["--save", "", "--appendonly", "no", "--maxmemory-policy", policy]);
    let (logs, _guard) = jwtgate_tests::logs::capture(tracing::Level::DEBUG);
    let _denylist = RedisDenylist::new(&format!("redis://127.0.0.1:{port}/")).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !logs.text().contains("maxmemory-policy is") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the policy was read within 10 s");
    logs.text()
}

#[tokio::test]
async fn a_redis_that_may_evict_revocations_is_warned_about() {
    // Regression (issue 17): an evicted revocation is a lost one, and nothing said so.
    for policy in ["allkeys-lru", "volatile-ttl"] {
        let log = eviction_policy_log(policy).await;
        assert!(log.contains("WARN") && log.contains(policy), "{policy}: {log}");
        assert!(log.contains("set maxmemory-policy noeviction"), "{log}");
    }
    let log = eviction_policy_log("noeviction").await;
    assert!(!log.contains("WARN"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_that_no_replica_confirms_in_time_is_an_error_and_still_holds_on_the_primary() {
    // One server, no replica: `WAIT 1` can only time out.
    let redis = RedisServer::start();
    let denylist = RedisDenylist::new(&redis.url())
        .unwrap()
        .with_durability(Durability::replicas(1, Duration::from_millis(200)))
        .unwrap();
    let error = denylist.revoke("unconfirmed", now() + 300).await.unwrap_err();
    assert_eq!(error.to_string(), "denylist unavailable: the write reached 0 of the 1 replicas required within 200ms");
    let error = denylist.revoke_subject("someone", now(), now() + 300).await.unwrap_err();
    assert!(error.to_string().contains("0 of the 1 replicas"), "{error}");
    // Not undone: the primary holds both, and refuses the tokens.
    let key = TestKey::generate(Algorithm::HS256);
    let app = App::start(&key, denylist.clone()).await;
    assert_eq!(app.status(&token_with(&key, json!({ "jti": "unconfirmed" }))).await, 401);
    assert_eq!(
        app.status(&token_with(&key, json!({ "jti": "other", "sub": "someone", "iat": now() - 10 }))).await,
        401
    );
    assert_eq!(app.status(&token_with(&key, json!({ "jti": "fine" }))).await, 200);
}
