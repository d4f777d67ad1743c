//! Being your own issuer: access tokens from `TokenIssuer`, verified by a validator that follows its key
//! rotation; refresh tokens rotated with reuse detection, under concurrency.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgate::session::{
    MemoryRefreshStore, RefreshRecord, RefreshStore, RefreshToken, Rotation, SessionError, Sessions, TokenIssuer,
};
use jwtgate::{Algorithm, Secret, Validator, keys::SigningKey, revocation::MemoryDenylist};
use serde::Serialize;
use serde_json::{Value, json};

const ISSUER: &str = "https://auth.test";

fn parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode = || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (decode(), decode())
}

fn validator(issuer: &TokenIssuer) -> Validator {
    Validator::builder(issuer.clone()).issuer(ISSUER).audience("api").build()
}

#[derive(Serialize)]
struct AppClaims {
    roles: Vec<&'static str>,
    tenant: &'static str,
}

#[test]
fn access_tokens_carry_the_registered_claims_a_kid_and_typed_custom_claims() {
    for key in [
        SigningKey::hmac(Algorithm::HS256, &Secret::new(vec![9; 32]), "h1").unwrap(),
        SigningKey::generate(Algorithm::RS256, "r1").unwrap(),
        SigningKey::generate(Algorithm::PS256, "p1").unwrap(),
        SigningKey::generate(Algorithm::ES256, "e1").unwrap(),
        SigningKey::generate(Algorithm::EdDSA, "d1").unwrap(),
    ] {
        let alg = key.algorithm();
        let kid = key.kid().to_owned();
        let issuer = TokenIssuer::builder(ISSUER, key).audience("api").build().unwrap();
        let issued = issuer.issue("alice", &AppClaims { roles: vec!["admin"], tenant: "acme" }).unwrap();
        let (header, claims) = parts(issued.token());
        assert_eq!(header, json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": kid }));
        assert_eq!(
            (claims["iss"].as_str(), claims["aud"].as_str(), claims["sub"].as_str()),
            (Some(ISSUER), Some("api"), Some("alice"))
        );
        let (iat, nbf, exp) =
            (claims["iat"].as_i64().unwrap(), claims["nbf"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        assert_eq!((nbf, exp - iat), (iat, 15 * 60), "{alg}: now, and 15 minutes by default");
        assert_eq!(claims["jti"].as_str(), Some(issued.jti()));
        assert_eq!(URL_SAFE_NO_PAD.decode(issued.jti()).unwrap().len(), 16, "a 128-bit random jti");
        assert_eq!((claims["roles"].clone(), claims["tenant"].clone()), (json!(["admin"]), json!("acme")));
        assert_eq!(issued.expires_at(), exp);
        let validated = validator(&issuer).validate::<Value>(issued.token()).unwrap();
        assert_eq!(validated.registered().subject(), Some("alice"), "{alg}");
    }
}

#[test]
fn each_token_gets_its_own_jti_and_several_audiences_are_an_array() {
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "k").unwrap())
        .audience("api")
        .audience("admin-api")
        .build()
        .unwrap();
    let (first, second) = (issuer.issue("a", &()).unwrap(), issuer.issue("a", &()).unwrap());
    assert_ne!(first.jti(), second.jti());
    assert_eq!(parts(first.token()).1["aud"], json!(["api", "admin-api"]));
}

#[test]
fn unsafe_configurations_and_claims_are_refused() {
    let key = || SigningKey::generate(Algorithm::ES256, "k").unwrap();
    let long = TokenIssuer::builder(ISSUER, key()).audience("api").lifetime(Duration::from_secs(2 * 3600)).build();
    assert_eq!(
        long.unwrap_err().to_string(),
        "an access-token lifetime of 7200 s is over an hour; call allow_long_lifetime() to allow it"
    );
    let opted_in = TokenIssuer::builder(ISSUER, key())
        .audience("api")
        .lifetime(Duration::from_secs(2 * 3600))
        .allow_long_lifetime()
        .build()
        .unwrap();
    let claims = parts(opted_in.issue("a", &()).unwrap().token()).1;
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 7200);
    assert_eq!(
        TokenIssuer::builder(ISSUER, key()).build().unwrap_err().to_string(),
        "an issuer needs at least one audience"
    );
    let issuer = TokenIssuer::builder(ISSUER, key()).audience("api").build().unwrap();
    for name in ["sub", "exp", "iss", "jti"] {
        let err = issuer.issue("a", &json!({ name: "x" })).unwrap_err();
        assert_eq!(err.to_string(), format!("custom claims must not set the registered claim {name:?}"));
    }
    assert_eq!(
        issuer.issue("a", &json!([1])).unwrap_err().to_string(),
        "custom claims must serialize to a JSON object"
    );
}

#[test]
fn rotation_signs_with_the_newest_key_and_keeps_the_previous_one_trusted_and_published() {
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "2026-10").unwrap())
        .audience("api")
        .build()
        .unwrap();
    let validator = validator(&issuer);
    let old = issuer.issue("a", &()).unwrap();
    issuer.rotate(SigningKey::generate(Algorithm::ES256, "2026-11").unwrap()).unwrap();
    let new = issuer.issue("a", &()).unwrap();
    assert_eq!(parts(new.token()).0["kid"], "2026-11");
    assert_eq!(issuer.current_kid(), "2026-11");
    assert!(validator.validate::<Value>(old.token()).is_ok(), "the previous key still verifies");
    assert!(validator.validate::<Value>(new.token()).is_ok());
    let published: Vec<String> = issuer.jwks().unwrap().keys().iter().map(|key| key.kid().to_owned()).collect();
    assert_eq!(published, ["2026-11", "2026-10"], "the current key first, the previous one still published");

    let err = issuer.rotate(SigningKey::generate(Algorithm::ES256, "2026-10").unwrap()).unwrap_err();
    assert_eq!(err.to_string(), r#"the kid "2026-10" is already in use"#);
    let err = issuer.rotate(SigningKey::hmac(Algorithm::HS256, &Secret::new(vec![1; 32]), "h").unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "an issuer rotates between keys of one kind: HMAC secrets, or key pairs");
    assert!(
        TokenIssuer::builder(ISSUER, SigningKey::hmac(Algorithm::HS256, &Secret::new(vec![1; 32]), "h").unwrap())
            .audience("api")
            .build()
            .unwrap()
            .jwks()
            .is_none(),
        "an HMAC secret is never published"
    );
}

#[test]
fn a_previous_key_is_retired_once_its_last_token_has_expired() {
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::EdDSA, "old").unwrap())
        .audience("api")
        .lifetime(Duration::from_secs(1))
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let validator = validator(&issuer);
    let old = issuer.issue("a", &()).unwrap();
    issuer.rotate(SigningKey::generate(Algorithm::EdDSA, "new").unwrap()).unwrap();
    issuer.retire_expired();
    assert_eq!(issuer.jwks().unwrap().keys().len(), 2, "not before its tokens can have expired");
    assert!(validator.validate_at::<Value>(old.token(), old.expires_at() - 1).is_ok());

    // Issuing retires what is due: poll until the old key's last token has expired (at most 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while issuer.jwks().unwrap().keys().len() == 2 {
        assert!(std::time::Instant::now() < deadline, "the old key was not retired within 5 s");
        std::thread::sleep(Duration::from_millis(100));
        issuer.issue("a", &()).unwrap();
    }
    let published: Vec<String> = issuer.jwks().unwrap().keys().iter().map(|key| key.kid().to_owned()).collect();
    assert_eq!(published, ["new"]);
    assert_eq!(
        validator.validate_at::<Value>(old.token(), old.expires_at() - 1).unwrap_err().to_string(),
        "the token's signing key is unknown",
        "a retired key is no longer trusted"
    );
}

fn sessions() -> Sessions<Arc<MemoryRefreshStore>> {
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "k").unwrap())
        .audience("api")
        .build()
        .unwrap();
    Sessions::new(issuer, Arc::new(MemoryRefreshStore::new()))
}

#[tokio::test]
async fn refresh_tokens_are_opaque_stored_hashed_and_rotated_in_one_family() {
    let sessions = sessions();
    let pair = sessions.login("alice", &json!({ "roles": ["user"] })).await.unwrap();
    assert_eq!(URL_SAFE_NO_PAD.decode(pair.refresh.as_str()).unwrap().len(), 32, "256 random bits");
    assert_eq!(format!("{:?}", pair.refresh), "RefreshToken([redacted])");
    let record = sessions.store().find(RefreshToken::hash(pair.refresh.as_str())).await.unwrap().unwrap();
    assert_eq!((record.user.as_str(), record.used, record.revoked), ("alice", false, false));
    assert!(!format!("{record:?}").contains(pair.refresh.as_str()), "only the hash is stored");
    let days = (record.expires_at - jwtgate_tests::now()) / 86_400;
    assert!((13..=14).contains(&days), "14 days by default: {days}");

    let next = sessions.refresh(pair.refresh.as_str(), |user| Some(json!({ "roles": [user] }))).await.unwrap();
    assert_eq!(parts(next.access.token()).1["roles"], json!(["alice"]));
    let used = sessions.store().find(RefreshToken::hash(pair.refresh.as_str())).await.unwrap().unwrap();
    let fresh = sessions.store().find(RefreshToken::hash(next.refresh.as_str())).await.unwrap().unwrap();
    assert!(used.used);
    assert_eq!((fresh.family.as_str(), fresh.user.as_str(), fresh.used), (record.family.as_str(), "alice", false));
    // Access tokens name their session (the family), so that logout can end it from the access token.
    assert_eq!(parts(pair.access.token()).1["sid"], json!(record.family));
    assert_eq!(parts(next.access.token()).1["sid"], json!(record.family));
    let err = sessions.login("alice", &json!({ "sid": "mine" })).await.unwrap_err();
    assert!(err.to_string().contains(r#"must not set "sid""#), "{err}");
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let sessions = sessions();
    let pair = sessions.login("alice", &()).await.unwrap();
    let next = sessions.refresh(pair.refresh.as_str(), |_| Some(())).await.unwrap();
    let other = sessions.login("alice", &()).await.unwrap();

    let err = sessions.refresh(pair.refresh.as_str(), |_| Some(())).await.unwrap_err();
    assert!(matches!(err, SessionError::RefreshTokenReused), "{err}");
    assert_eq!(err.to_string(), "the refresh token was used already; its session is revoked");
    let err = sessions.refresh(next.refresh.as_str(), |_| Some(())).await.unwrap_err();
    assert!(matches!(err, SessionError::InvalidRefreshToken), "the thief's token dies with the family: {err}");
    assert!(
        sessions.refresh(other.refresh.as_str(), |_| Some(())).await.is_ok(),
        "another login's family is untouched"
    );
    let err = sessions.refresh("not-a-token", |_| Some(())).await.unwrap_err();
    assert_eq!(err.to_string(), "the refresh token is invalid or expired");
}

fn revoked(denylist: &MemoryDenylist, validated: &jwtgate::Validated<Value>) -> bool {
    match jwtgate::revocation::Denylist::check(denylist, validated.registered()) {
        jwtgate::revocation::Lookup::Ready(status) => status.unwrap() == jwtgate::revocation::TokenStatus::Revoked,
        jwtgate::revocation::Lookup::Pending(_) => panic!("the memory denylist answers at once"),
    }
}

#[tokio::test]
async fn logout_revokes_the_family_and_the_access_token() {
    let denylist = MemoryDenylist::new();
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "k").unwrap())
        .audience("api")
        .build()
        .unwrap();
    let validator = Validator::builder(issuer.clone()).issuer(ISSUER).audience("api").build();
    let sessions = Sessions::new(issuer, MemoryRefreshStore::new()).denylist(denylist.clone());
    let pair = sessions.login("alice", &()).await.unwrap();
    let validated = validator.validate::<Value>(pair.access.token()).unwrap();
    assert!(!revoked(&denylist, &validated));

    let sid = parts(pair.access.token()).1["sid"].as_str().unwrap().to_owned();
    sessions.logout(&sid, Some((pair.access.jti(), pair.access.expires_at()))).await.unwrap();
    assert!(matches!(
        sessions.refresh(pair.refresh.as_str(), |_| Some(())).await.unwrap_err(),
        SessionError::InvalidRefreshToken
    ));
    assert!(revoked(&denylist, &validated));
}

#[tokio::test]
async fn logout_revokes_the_access_token_for_as_long_as_the_issuers_leeway() {
    // Regression (issue 17): logout revoked until `exp + 30 s` whatever the verifiers' leeway, so with a
    // longer leeway a logged-out token was accepted again once those 30 s had passed.
    let denylist = MemoryDenylist::new();
    let leeway = Duration::from_secs(120);
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "k").unwrap())
        .audience("api")
        .leeway(leeway)
        .build()
        .unwrap();
    assert_eq!(issuer.leeway(), leeway);
    let validator = Validator::builder(issuer.clone()).issuer(ISSUER).audience("api").leeway(leeway).build();
    let sessions = Sessions::new(issuer, MemoryRefreshStore::new()).denylist(denylist.clone());
    let pair = sessions.login("alice", &()).await.unwrap();
    let validated = validator.validate::<Value>(pair.access.token()).unwrap();
    let sid = parts(pair.access.token()).1["sid"].as_str().unwrap().to_owned();
    // A token that expired 60 s ago is still accepted by a verifier with a 120 s leeway: its revocation must
    // last until then (with 30 s it would have ended 30 s ago, and stored nothing).
    let expired_a_minute_ago = jwtgate_tests::now() - 60;
    sessions.logout(&sid, Some((pair.access.jti(), expired_a_minute_ago))).await.unwrap();
    assert!(revoked(&denylist, &validated), "still revoked 60 s past exp, within the 120 s leeway");
}

#[tokio::test]
async fn the_memory_store_is_bounded_and_a_full_one_refuses_new_sessions_but_not_revocations() {
    // Regression (issue 17): the store grew without bound, and each login and logout visited every record.
    let store = Arc::new(MemoryRefreshStore::with_capacity(3));
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "k").unwrap())
        .audience("api")
        .build()
        .unwrap();
    let sessions = Sessions::new(issuer, store.clone());
    let alice = sessions.login("alice", &()).await.unwrap();
    let bob = sessions.login("bob", &()).await.unwrap();
    let carol = sessions.login("carol", &()).await.unwrap();
    let err = sessions.login("dave", &()).await.unwrap_err();
    assert!(matches!(err, SessionError::Store(_)), "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    // A full store refuses a refresh before it marks the token used: the session goes on once there is room.
    assert!(matches!(sessions.refresh(alice.refresh.as_str(), |_| Some(())).await, Err(SessionError::Store(_))));
    // Logging out still works when full, and ends the session.
    let sid = parts(bob.access.token()).1["sid"].as_str().unwrap().to_owned();
    sessions.logout(&sid, None).await.unwrap();
    assert!(matches!(
        sessions.refresh(bob.refresh.as_str(), |_| Some(())).await.unwrap_err(),
        SessionError::InvalidRefreshToken
    ));
    assert!(store.find(RefreshToken::hash(bob.refresh.as_str())).await.unwrap().unwrap().revoked);
    assert!(!store.find(RefreshToken::hash(carol.refresh.as_str())).await.unwrap().unwrap().revoked);
}

/// A store's rotation at a chosen time, so that expiry is tested without waiting for it.
async fn rotate_at(store: &MemoryRefreshStore, presented: &str, now: i64) -> Rotation {
    let next = RefreshRecord {
        id: "next".into(),
        user: String::new(),
        family: String::new(),
        expires_at: now + 3600,
        session_expires_at: i64::MAX,
        used: false,
        revoked: false,
        hash: RefreshToken::hash(&format!("next-{now}-{presented}")),
        jkt: None,
    };
    store.rotate(RefreshToken::hash(presented), next, now).await.unwrap()
}

#[tokio::test]
async fn an_expired_token_is_invalid_but_a_used_one_is_reuse_even_after_its_expiry() {
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "k").unwrap())
        .audience("api")
        .build()
        .unwrap();
    let store = MemoryRefreshStore::new();
    let sessions = Sessions::new(issuer, store.clone())
        .refresh_lifetime(Duration::from_secs(600))
        .session_lifetime(Duration::from_secs(3600));
    let pair = sessions.login("alice", &()).await.unwrap();
    let record = store.find(RefreshToken::hash(pair.refresh.as_str())).await.unwrap().unwrap();
    assert!(record.expires_at <= record.session_expires_at);
    assert_eq!(rotate_at(&store, pair.refresh.as_str(), record.expires_at + 1).await, Rotation::Invalid, "expired");

    let other = sessions.login("alice", &()).await.unwrap();
    let next = sessions.refresh(other.refresh.as_str(), |_| Some(())).await.unwrap();
    let used = store.find(RefreshToken::hash(other.refresh.as_str())).await.unwrap().unwrap();
    // Presented again after its own expiry, within the session: still reuse, and the family is revoked.
    let rotation = rotate_at(&store, other.refresh.as_str(), used.expires_at + 1).await;
    assert_eq!(rotation, Rotation::Reused { family: used.family.clone() });
    assert!(matches!(
        sessions.refresh(next.refresh.as_str(), |_| Some(())).await.unwrap_err(),
        SessionError::InvalidRefreshToken
    ));
}

#[tokio::test]
async fn a_session_ends_at_its_longest_life_however_often_it_is_refreshed() {
    let issuer = TokenIssuer::builder(ISSUER, SigningKey::generate(Algorithm::ES256, "k").unwrap())
        .audience("api")
        .build()
        .unwrap();
    let store = MemoryRefreshStore::new();
    let sessions = Sessions::new(issuer, store.clone()).session_lifetime(Duration::from_secs(60));
    let pair = sessions.login("alice", &()).await.unwrap();
    let first = store.find(RefreshToken::hash(pair.refresh.as_str())).await.unwrap().unwrap();
    assert!(first.session_expires_at - jwtgate_tests::now() <= 60);
    assert_eq!(first.expires_at, first.session_expires_at, "14 days are capped at the session's end");
    let next = sessions.refresh(pair.refresh.as_str(), |_| Some(())).await.unwrap();
    let second = store.find(RefreshToken::hash(next.refresh.as_str())).await.unwrap().unwrap();
    assert_eq!(
        (second.expires_at, second.session_expires_at),
        (first.session_expires_at, first.session_expires_at),
        "a refresh never extends the session"
    );
    assert!(next.refresh_lifetime <= Duration::from_secs(60), "the cookie ends with the session too");
}

#[tokio::test]
async fn a_user_who_may_no_longer_have_a_session_is_refused_and_the_family_revoked() {
    let sessions = sessions();
    let pair = sessions.login("alice", &()).await.unwrap();
    let err = sessions.refresh(pair.refresh.as_str(), |_| None::<()>).await.unwrap_err();
    assert!(matches!(err, SessionError::InvalidRefreshToken), "{err}");
    let record = sessions.store().find(RefreshToken::hash(pair.refresh.as_str())).await.unwrap().unwrap();
    assert!(record.revoked || record.used);
    let sid = parts(pair.access.token()).1["sid"].as_str().unwrap().to_owned();
    assert_eq!(record.family, sid);
    let again = sessions.login("alice", &()).await.unwrap();
    assert!(sessions.refresh(again.refresh.as_str(), |_| Some(())).await.is_ok(), "a new login works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_fifty_parallel_refreshes_with_one_token_exactly_one_succeeds_and_the_family_is_revoked() {
    let sessions = Arc::new(sessions());
    let pair = sessions.login("alice", &()).await.unwrap();
    let won = jwtgate_tests::race_refreshes(std::slice::from_ref(&sessions), pair.refresh.as_str(), 50).await;
    let err = sessions.refresh(won.refresh.as_str(), |_| Some(())).await.unwrap_err();
    assert!(matches!(err, SessionError::InvalidRefreshToken), "the family is revoked: {err}");
}

mod cookies {
    use http::HeaderMap;
    use jwtgate::session::SessionCookies;

    use super::*;

    async fn pair() -> jwtgate::session::TokenPair {
        sessions().login("alice", &()).await.unwrap()
    }

    fn texts(values: &[http::HeaderValue]) -> Vec<String> {
        values.iter().map(|value| value.to_str().unwrap().to_owned()).collect()
    }

    #[tokio::test]
    async fn cookies_are_http_only_secure_strict_prefixed_scoped_and_last_as_long_as_their_token() {
        let pair = pair().await;
        let set = texts(&SessionCookies::new().set(&pair).unwrap());
        assert_eq!(set.len(), 3);
        assert_eq!(
            set[0],
            format!(
                "__Host-access_token={}; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=900",
                pair.access.token()
            )
        );
        assert_eq!(
            set[1],
            format!(
                "__Secure-refresh_token={}; HttpOnly; SameSite=Strict; Secure; Path=/refresh; Max-Age={}",
                pair.refresh.as_str(),
                14 * 86_400
            )
        );
        let csrf = set[2].strip_prefix("__Host-csrf_token=").unwrap();
        let (value, attributes) = csrf.split_once(';').unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(value).unwrap().len(), 32, "a random CSRF token");
        assert_eq!(
            attributes,
            format!(" SameSite=Strict; Secure; Path=/; Max-Age={}", 14 * 86_400),
            "readable by scripts"
        );
        for cookie in &set {
            assert!(!cookie.contains("Domain"), "host-only cookies: {cookie}");
        }
    }

    #[tokio::test]
    async fn lax_a_refresh_path_and_the_insecure_dev_mode_are_explicit_choices() {
        let pair = pair().await;
        let cookies = SessionCookies::new().same_site_lax().refresh_path("/auth/refresh");
        let set = texts(&cookies.set(&pair).unwrap());
        assert!(set[0].contains("SameSite=Lax") && set[1].contains("Path=/auth/refresh"), "{set:?}");
        let dev = SessionCookies::new().insecure_dev_mode();
        let set = texts(&dev.set(&pair).unwrap());
        assert!(set[0].starts_with("access_token=") && !set[0].contains("Secure"), "{set:?}");
        assert!(set[1].starts_with("refresh_token=") && set[2].starts_with("csrf_token="), "{set:?}");
        assert_eq!((dev.access_name(), SessionCookies::new().access_name()), ("access_token", "__Host-access_token"));
    }

    #[tokio::test]
    async fn logout_clears_every_cookie_and_the_refresh_token_is_read_back() {
        let cookies = SessionCookies::new();
        assert_eq!(
            texts(&cookies.clear()),
            [
                "__Host-access_token=; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=0",
                "__Secure-refresh_token=; HttpOnly; SameSite=Strict; Secure; Path=/refresh; Max-Age=0",
                "__Host-csrf_token=; SameSite=Strict; Secure; Path=/; Max-Age=0",
            ]
        );
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "a=b; __Secure-refresh_token=r3fr3sh; c=d".parse().unwrap());
        assert_eq!(cookies.refresh_token(&headers), Some("r3fr3sh"));
        assert_eq!(cookies.refresh_token(&HeaderMap::new()), None);
        // Twice (a sibling subdomain can plant a second __Secure- cookie): never guess which is ours.
        let mut planted = HeaderMap::new();
        planted.insert("cookie", "__Secure-refresh_token=attacker; __Secure-refresh_token=r3fr3sh".parse().unwrap());
        assert_eq!(cookies.refresh_token(&planted), None);
    }
}

#[tokio::test]
async fn a_dpop_bound_session_binds_both_tokens_and_refreshes_only_with_a_proof_of_its_key() {
    let sessions = sessions();
    let pair = sessions.login_bound("alice", &json!({}), "key-a").await.unwrap();
    assert_eq!(parts(pair.access.token()).1["cnf"], json!({ "jkt": "key-a" }));
    let record = sessions.store().find(RefreshToken::hash(pair.refresh.as_str())).await.unwrap().unwrap();
    assert_eq!(record.jkt.as_deref(), Some("key-a"));

    // The same key: a new pair, bound to it.
    let next = sessions.refresh_bound(pair.refresh.as_str(), Some("key-a"), |_| Some(json!({}))).await.unwrap();
    assert_eq!(parts(next.access.token()).1["cnf"], json!({ "jkt": "key-a" }));
    // Another key, or none: the token is taken as stolen, and the whole family ends.
    for jkt in [Some("key-b"), None] {
        let pair = sessions.login_bound("bob", &json!({}), "key-a").await.unwrap();
        let err = sessions.refresh_bound(pair.refresh.as_str(), jkt, |_| Some(json!({}))).await.unwrap_err();
        assert!(matches!(err, SessionError::ProofKeyMismatch), "{jkt:?}: {err}");
        let record = sessions.store().find(RefreshToken::hash(pair.refresh.as_str())).await.unwrap().unwrap();
        assert!(record.revoked, "{jkt:?}");
    }
    let err = sessions.refresh(next.refresh.as_str(), |_| Some(json!({}))).await.unwrap_err();
    assert!(matches!(err, SessionError::ProofKeyMismatch));

    // An unbound session stays unbound without a proof, and is bound from the first refresh with one.
    let plain = sessions.login("carol", &json!({})).await.unwrap();
    assert!(parts(plain.access.token()).1.get("cnf").is_none());
    let bound = sessions.refresh_bound(plain.refresh.as_str(), Some("key-c"), |_| Some(json!({}))).await.unwrap();
    assert_eq!(parts(bound.access.token()).1["cnf"], json!({ "jkt": "key-c" }));
    // A DPoP-bound token's `cnf` is the issuer's to set; a certificate binding of your own is yours.
    assert!(sessions.issuer().issue_bound("dave", &json!({ "cnf": { "jkt": "forged" } }), "key-d").is_err());
    let certificate_bound = sessions.issuer().issue("erin", &json!({ "cnf": { "x5t#S256": "abc" } })).unwrap();
    assert_eq!(parts(certificate_bound.token()).1["cnf"], json!({ "x5t#S256": "abc" }));
}
