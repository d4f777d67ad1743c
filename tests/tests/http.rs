//! jwtgate over real HTTP: an axum app with `JwtAuthLayer`, served on loopback and called with reqwest.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use jwtgate::{
    Algorithm, Claims, JwtAuthLayer, Key, KeySet, Validator,
    keys::AlgorithmMapping,
    revocation::{Denylist, DenylistError, Lookup, TokenStatus},
    sources::{TokenSource, TokenSources},
    validation::{RegisteredClaims, ValidatorBuilder},
};
use jwtgate_tests::{AUDIENCE, Answer, CertificatePem, ISSUER, TestKey, b64, claims, now, serve};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
struct AppClaims {
    #[serde(default)]
    roles: Vec<String>,
}

async fn me(claims: Claims<AppClaims>) -> Json<Value> {
    Json(json!({
        "sub": claims.registered().subject(),
        "roles": claims.roles,
        "kid": claims.validated().kid(),
        "alg": claims.validated().algorithm().map(|alg| alg.as_str()),
    }))
}

async fn maybe(claims: Option<Claims<AppClaims>>) -> Json<Value> {
    Json(match claims {
        Some(claims) => json!({ "sub": claims.registered().subject() }),
        None => json!({ "anonymous": true }),
    })
}

fn rules(keys: impl IntoIterator<Item = Key>) -> ValidatorBuilder {
    Validator::builder(KeySet::new(keys).unwrap()).issuer(ISSUER).audience(AUDIENCE)
}

struct App {
    base: String,
    http: reqwest::Client,
}

impl App {
    async fn new(layer: JwtAuthLayer<AppClaims>) -> Self {
        let router = Router::new().route("/me", get(me)).route("/maybe", get(maybe)).layer(layer);
        Self::serve(router).await
    }

    async fn serve(router: Router) -> Self {
        let addr = serve(router).await;
        Self { base: format!("http://{addr}"), http: reqwest::Client::new() }
    }

    async fn call(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        jwtgate_tests::get(&self.http, &format!("{}{path}", self.base), headers).await
    }

    async fn bearer(&self, token: &str) -> Answer {
        self.call("/me", &[("authorization", &format!("Bearer {token}"))]).await
    }
}

/// An app trusting one HS256 key.
async fn hs256_app() -> (App, TestKey) {
    let key = TestKey::generate(Algorithm::HS256);
    let app = App::new(JwtAuthLayer::new(rules([key.verification_key()]).build())).await;
    (app, key)
}

#[tokio::test]
async fn every_algorithm_is_accepted_with_its_own_key_selected_by_kid() {
    let keys: Vec<TestKey> = Algorithm::ALL.iter().map(|alg| TestKey::generate(*alg).with_kid(alg.as_str())).collect();
    let app = App::new(JwtAuthLayer::new(rules(keys.iter().map(TestKey::verification_key)).build())).await;
    for key in &keys {
        let answer = app.bearer(&key.sign(&claims())).await;
        assert_eq!(answer.status, 200, "{:?}: {}", key.alg(), answer.body);
        assert_eq!(answer.body["kid"], key.alg().as_str());
        assert_eq!(answer.body["alg"], key.alg().as_str());
        assert_eq!(answer.body["sub"], "user-1");
    }
}

#[tokio::test]
async fn every_algorithm_loads_from_a_jwk_set_and_from_pem_certificates() {
    let keys: Vec<TestKey> = Algorithm::ALL.iter().map(|alg| TestKey::generate(*alg).with_kid(alg.as_str())).collect();
    let jwks = json!({ "keys": keys.iter().map(TestKey::jwk).collect::<Vec<_>>() }).to_string();
    let set = KeySet::from_jwks(&jwks, &AlgorithmMapping::new()).unwrap();
    let from_jwks =
        App::new(JwtAuthLayer::new(Validator::builder(set).issuer(ISSUER).audience(AUDIENCE).build())).await;
    let certified = keys.iter().filter_map(|key| {
        let pem = key.certificate_pem()?;
        Some(Key::from_pem(key.alg(), pem).unwrap().with_kid(key.alg().as_str()))
    });
    let from_certs = App::new(JwtAuthLayer::new(rules(certified).build())).await;
    for key in &keys {
        let token = key.sign(&claims());
        assert_eq!(from_jwks.bearer(&token).await.status, 200, "{:?} from JWKS", key.alg());
        if key.secret().is_none() {
            assert_eq!(from_certs.bearer(&token).await.status, 200, "{:?} from a certificate", key.alg());
        }
    }
}

#[tokio::test]
async fn a_token_without_kid_needs_exactly_one_key_for_its_algorithm() {
    let a = TestKey::generate(Algorithm::ES256);
    let b = TestKey::generate(Algorithm::ES256).with_kid("b");
    let other = TestKey::generate(Algorithm::EdDSA);
    let app = App::new(JwtAuthLayer::new(rules([a.verification_key(), b.verification_key()]).build())).await;
    app.bearer(&a.sign(&claims())).await.assert_invalid_token("the token's signing key is unknown");
    assert_eq!(app.bearer(&b.sign(&claims())).await.status, 200);

    let single = App::new(JwtAuthLayer::new(rules([a.verification_key(), other.verification_key()]).build())).await;
    assert_eq!(single.bearer(&a.sign(&claims())).await.status, 200);
    assert_eq!(single.bearer(&other.sign(&claims())).await.status, 200);
}

#[tokio::test]
async fn a_kid_selects_one_key_and_the_token_is_never_tried_against_others() {
    let a = TestKey::generate(Algorithm::HS256).with_kid("a");
    let b = TestKey::generate(Algorithm::HS256).with_kid("b");
    let app = App::new(JwtAuthLayer::new(rules([a.verification_key(), b.verification_key()]).build())).await;
    // Signed by b but naming a: checked against a only, so it fails although b would verify it.
    let forged = b.sign_raw(&a.header().to_string(), &claims().to_string());
    app.bearer(&forged).await.assert_invalid_token("the token's signature is invalid");
    let unknown = TestKey::generate(Algorithm::HS256).with_kid("zzz");
    app.bearer(&unknown.sign(&claims())).await.assert_invalid_token("the token's signing key is unknown");
}

#[tokio::test]
async fn missing_credentials_and_other_schemes_get_a_bare_challenge() {
    let (app, _key) = hs256_app().await;
    app.call("/me", &[]).await.assert_no_credentials();
    app.call("/me", &[("authorization", "Basic dXNlcjpwYXNz")]).await.assert_no_credentials();
}

#[tokio::test]
async fn a_plain_http_request_that_says_grpc_gets_an_http_answer_and_no_refusal_is_cached() {
    // Regression (issue 17): `content-type: application/grpc` on an HTTP/1.1 request got the gRPC-shaped
    // refusal (200 OK, no body) that a plain client reads as success; and refusals had no Cache-Control.
    let (app, key) = hs256_app().await;
    app.call("/me", &[("content-type", "application/grpc")]).await.assert_no_credentials();
    let bad = [("content-type", "application/grpc+proto"), ("authorization", "Bearer a.b.c")];
    app.call("/me", &bad).await.assert_invalid_token("the token is malformed");

    // A guard's 403 is not cached either.
    let layer = JwtAuthLayer::<AppClaims>::new(rules([key.verification_key()]).build());
    let guarded = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(jwtgate::RequireLayer::new(jwtgate::Policy::role("admin")))
        .layer(layer);
    let guarded = App::serve(guarded).await;
    let answer = guarded.call("/admin", &[("authorization", &format!("Bearer {}", key.sign(&claims())))]).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_with_one_or_more_spaces() {
    let (app, key) = hs256_app().await;
    let token = key.sign(&claims());
    for scheme in ["Bearer ", "bearer ", "BEARER   "] {
        let answer = app.call("/me", &[("authorization", &format!("{scheme}{token}"))]).await;
        assert_eq!(answer.status, 200, "{scheme:?}");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let (app, key) = hs256_app().await;
    let bearer = format!("Bearer {}", key.sign(&claims()));
    let answer = app.call("/me", &[("authorization", &bearer), ("authorization", &bearer)]).await;
    assert_eq!(answer.status, 400);
    let description = "the request carries its credentials more than once";
    assert_eq!(
        answer.header("www-authenticate"),
        Some(format!(r#"Bearer error="invalid_request", error_description="{description}""#).as_str())
    );
    assert_eq!(answer.body, json!({ "error": "invalid_request", "error_description": description }));
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let (app, key) = hs256_app().await;
    let good = key.sign(&claims());
    let (header, rest) = good.split_once('.').unwrap();
    let (payload, _signature) = rest.split_once('.').unwrap();
    for token in [
        "abc".to_owned(),
        "a.b.c".to_owned(),
        format!("{header}.{payload}"),
        format!("{good}.extra"),
        format!("{header}=.{payload}.{}", b64("x")),
        format!("{}.{payload}.{}", b64("not json"), b64("x")),
        key.sign_raw(&key.header().to_string(), "[1,2]"),
        key.sign_raw(&key.header().to_string(), "{\"exp\":1,\"exp\":2}"),
        // Found by fuzzing: a signed header whose ignored member is not UTF-8.
        {
            let input = format!("{}.{payload}", b64(b"{\"alg\":\"HS256\",\"x\":\"\xf6\"}"));
            format!("{input}.{}", b64(key.signature(input.as_bytes())))
        },
        "Bearer".to_owned(),
    ] {
        app.bearer(&token).await.assert_invalid_token("the token is malformed");
    }
    let answer = app.call("/me", &[("authorization", "Bearer")]).await;
    answer.assert_invalid_token("the token is malformed");
}

#[tokio::test]
async fn a_token_over_the_size_limit_is_refused_before_decoding() {
    let key = TestKey::generate(Algorithm::HS256);
    let app = App::new(JwtAuthLayer::new(rules([key.verification_key()]).max_token_bytes(300).build())).await;
    let mut big = claims();
    big["pad"] = json!("x".repeat(400));
    app.bearer(&key.sign(&big)).await.assert_invalid_token("the token is too large");
    assert_eq!(app.bearer(&key.sign(&claims())).await.status, 200);
}

#[tokio::test]
async fn alg_none_is_refused_in_any_case() {
    let (app, _key) = hs256_app().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": alg, "typ": "JWT" }).to_string();
        let unsigned = format!("{}.{}.", b64(header), b64(claims().to_string()));
        app.bearer(&unsigned).await.assert_invalid_token("the token's algorithm is not supported");
        let with_junk = format!("{unsigned}{}", b64("sig"));
        app.bearer(&with_junk).await.assert_invalid_token("the token's algorithm is not supported");
    }
}

#[tokio::test]
async fn key_confusion_with_the_rsa_public_key_as_hmac_secret_is_refused() {
    let rsa = TestKey::generate(Algorithm::RS256).with_kid("rsa");
    let app = App::new(JwtAuthLayer::new(rules([rsa.verification_key()]).build())).await;
    let pem = rsa.public_pem().unwrap();
    let header = json!({ "alg": "HS256", "kid": "rsa" }).to_string();
    let input = format!("{}.{}", b64(&header), b64(claims().to_string()));
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pem.as_bytes()),
        input.as_bytes(),
    );
    let forged = format!("{input}.{}", b64(tag.as_ref()));
    app.bearer(&forged).await.assert_invalid_token("the token's algorithm does not match its key");

    let header = json!({ "alg": "HS256" }).to_string();
    let input = format!("{}.{}", b64(&header), b64(claims().to_string()));
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pem.as_bytes()),
        input.as_bytes(),
    );
    let forged = format!("{input}.{}", b64(tag.as_ref()));
    app.bearer(&forged).await.assert_invalid_token("the token's signing key is unknown");
}

#[tokio::test]
async fn a_same_family_algorithm_swap_is_refused() {
    let rsa = TestKey::generate(Algorithm::RS256).with_kid("rsa");
    let hmac = TestKey::generate(Algorithm::HS256).with_kid("hmac");
    let app = App::new(JwtAuthLayer::new(rules([rsa.verification_key(), hmac.verification_key()]).build())).await;
    let rs512 = rsa.with_alg(Algorithm::RS512);
    app.bearer(&rs512.sign(&claims())).await.assert_invalid_token("the token's algorithm does not match its key");
    let hs512 = hmac.with_alg(Algorithm::HS512);
    app.bearer(&hs512.sign(&claims())).await.assert_invalid_token("the token's algorithm does not match its key");
}

#[tokio::test]
async fn tampered_and_stripped_signatures_are_refused() {
    let (app, key) = hs256_app().await;
    let good = key.sign(&claims());
    let (input, _signature) = good.rsplit_once('.').unwrap();
    app.bearer(&format!("{input}.")).await.assert_invalid_token("the token's signature is invalid");
    let mut admin = claims();
    admin["roles"] = json!(["admin"]);
    let (header, _) = input.split_once('.').unwrap();
    let (_, signature) = good.rsplit_once('.').unwrap();
    let tampered = format!("{header}.{}.{signature}", b64(admin.to_string()));
    app.bearer(&tampered).await.assert_invalid_token("the token's signature is invalid");
    app.bearer(&format!("{input}.{}", b64([0u8; 32]))).await.assert_invalid_token("the token's signature is invalid");
    app.bearer(&format!("{input}.!!!")).await.assert_invalid_token("the token's signature is invalid");
}

#[tokio::test]
async fn an_unknown_crit_header_is_refused() {
    let (app, key) = hs256_app().await;
    let header = json!({ "alg": "HS256", "crit": ["exp"], "exp": 1 }).to_string();
    let token = key.sign_raw(&header, &claims().to_string());
    app.bearer(&token).await.assert_invalid_token("the token has a critical header that is not supported");
}

#[tokio::test]
async fn registered_claims_of_the_wrong_type_are_invalid() {
    let (app, key) = hs256_app().await;
    for (claim, value, description) in [
        ("iss", json!([ISSUER]), "the token's iss claim is not a string"),
        ("iss", Value::Null, "the token's iss claim is not a string"),
        ("aud", json!(7), "the token's aud claim is not a string or an array of strings"),
        ("aud", Value::Null, "the token's aud claim is not a string or an array of strings"),
        ("aud", json!({ "a": 1 }), "the token's aud claim is not a string or an array of strings"),
        ("exp", json!(now().to_string()), "the token's exp claim is not a number"),
        ("exp", Value::Null, "the token's exp claim is not a number"),
        ("nbf", json!("soon"), "the token's nbf claim is not a number"),
        ("iat", json!(true), "the token's iat claim is not a number"),
        ("sub", json!(1), "the token's sub claim is not a string"),
        ("jti", json!(["x"]), "the token's jti claim is not a string"),
        ("roles", json!("admin"), "the token's claims do not have the expected form"),
    ] {
        let mut bad = claims();
        bad[claim] = value;
        app.bearer(&key.sign(&bad)).await.assert_invalid_token(description);
    }
}

#[tokio::test]
async fn time_claims_are_checked_with_the_leeway() {
    let (app, key) = hs256_app().await;
    let with = |claim: &str, value: i64| {
        let mut c = claims();
        c[claim] = json!(value);
        key.sign(&c)
    };
    app.bearer(&with("exp", now() - 31)).await.assert_invalid_token("the token has expired");
    let mut lately = claims();
    (lately["iat"], lately["exp"]) = (json!(now() - 60), json!(now() - 5));
    assert_eq!(app.bearer(&key.sign(&lately)).await.status, 200, "within the 30 s leeway");
    // Issued after it expired: a lifetime that ends before it starts, even within the leeway.
    app.bearer(&with("exp", now() - 5)).await.assert_invalid_token("the token expires before it becomes valid");
    app.bearer(&with("nbf", now() + 60)).await.assert_invalid_token("the token is not valid yet");
    assert_eq!(app.bearer(&with("nbf", now() + 5)).await.status, 200);
    app.bearer(&with("iat", now() + 60)).await.assert_invalid_token("the token was issued in the future");
    let mut float = claims();
    float["exp"] = json!(now() as f64 + 100.5);
    float["iat"] = json!(now() as f64 - 0.25);
    assert_eq!(app.bearer(&key.sign(&float)).await.status, 200, "NumericDate floats");
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    app.bearer(&key.sign(&no_exp)).await.assert_invalid_token("the token has no exp claim");
}

#[tokio::test]
async fn a_maximum_age_refuses_old_tokens_and_tokens_without_iat() {
    let key = TestKey::generate(Algorithm::HS256);
    let app = App::new(JwtAuthLayer::new(
        rules([key.verification_key()]).max_age(std::time::Duration::from_secs(60)).build(),
    ))
    .await;
    let mut old = claims();
    old["iat"] = json!(now() - 600);
    app.bearer(&key.sign(&old)).await.assert_invalid_token("the token is too old");
    old.as_object_mut().unwrap().remove("iat");
    app.bearer(&key.sign(&old)).await.assert_invalid_token("the token has no iat claim");
    assert_eq!(app.bearer(&key.sign(&claims())).await.status, 200);
}

#[tokio::test]
async fn issuer_and_audience_are_required_and_checked() {
    let (app, key) = hs256_app().await;
    let mut c = claims();
    c["iss"] = json!("https://evil.test");
    app.bearer(&key.sign(&c)).await.assert_invalid_token("the token's issuer is not accepted");
    c.as_object_mut().unwrap().remove("iss");
    app.bearer(&key.sign(&c)).await.assert_invalid_token("the token has no iss claim");

    let mut c = claims();
    c["aud"] = json!(["other", "another"]);
    app.bearer(&key.sign(&c)).await.assert_invalid_token("the token's audience is not accepted");
    c["aud"] = json!(["other", AUDIENCE]);
    assert_eq!(app.bearer(&key.sign(&c)).await.status, 200, "one matching audience is enough");
    c.as_object_mut().unwrap().remove("aud");
    app.bearer(&key.sign(&c)).await.assert_invalid_token("the token has no aud claim");
}

#[tokio::test]
async fn a_present_aud_is_refused_when_no_audience_is_configured() {
    let key = TestKey::generate(Algorithm::HS256);
    let app =
        App::new(JwtAuthLayer::new(Validator::builder(KeySet::new([key.verification_key()]).unwrap()).build())).await;
    app.bearer(&key.sign(&claims())).await.assert_invalid_token("the token's audience is not accepted");
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(app.bearer(&key.sign(&c)).await.status, 200);
}

#[tokio::test]
async fn typ_can_be_required() {
    let key = TestKey::generate(Algorithm::HS256);
    let app = App::new(JwtAuthLayer::new(rules([key.verification_key()]).required_types(["at+jwt"]).build())).await;
    let sign = |typ: Option<&str>| {
        let mut header = json!({ "alg": "HS256" });
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        key.sign_raw(&header.to_string(), &claims().to_string())
    };
    assert_eq!(app.bearer(&sign(Some("at+jwt"))).await.status, 200);
    assert_eq!(app.bearer(&sign(Some("application/at+jwt"))).await.status, 200);
    app.bearer(&sign(Some("JWT"))).await.assert_invalid_token("the token's type is not accepted");
    app.bearer(&sign(None)).await.assert_invalid_token("the token's type is not accepted");
}

#[tokio::test]
async fn the_first_present_source_decides() {
    let key = TestKey::generate(Algorithm::HS256);
    let sources = TokenSources::new([TokenSource::bearer(), TokenSource::cookie("access_token")]);
    let app = App::new(JwtAuthLayer::new(rules([key.verification_key()]).build()).sources(sources)).await;
    let good = key.sign(&claims());
    let cookie = format!("theme=dark; access_token={good}");
    assert_eq!(app.call("/me", &[("cookie", &cookie)]).await.status, 200, "the cookie alone");
    let answer = app.call("/me", &[("authorization", "Bearer not.a.token"), ("cookie", &cookie)]).await;
    answer.assert_invalid_token("the token is malformed");
    let answer = app.call("/me", &[("authorization", "Basic dXNlcjpwYXNz"), ("cookie", &cookie)]).await;
    answer.assert_no_credentials();
    app.call("/me", &[("cookie", "access_token=garbage")]).await.assert_invalid_token("the token is malformed");
}

#[tokio::test]
async fn the_query_source_works_only_when_added() {
    let key = TestKey::generate(Algorithm::HS256);
    let token = key.sign(&claims());
    let plain = App::new(JwtAuthLayer::new(rules([key.verification_key()]).build())).await;
    plain.call(&format!("/me?access_token={token}"), &[]).await.assert_no_credentials();
    let sources = TokenSources::new([TokenSource::bearer(), TokenSource::query("access_token")]);
    let opted_in = App::new(JwtAuthLayer::new(rules([key.verification_key()]).build()).sources(sources)).await;
    assert_eq!(opted_in.call(&format!("/me?access_token={token}"), &[]).await.status, 200);
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_not_bad_tokens() {
    let key = TestKey::generate(Algorithm::HS256);
    let app = App::new(JwtAuthLayer::new(rules([key.verification_key()]).build()).optional()).await;
    let answer = app.call("/maybe", &[]).await;
    assert_eq!((answer.status, answer.body), (200, json!({ "anonymous": true })));
    let answer = app.call("/maybe", &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!((answer.status, answer.body), (200, json!({ "anonymous": true })), "another scheme is no bearer token");
    let bearer = format!("Bearer {}", key.sign(&claims()));
    let answer = app.call("/maybe", &[("authorization", &bearer)]).await;
    assert_eq!((answer.status, answer.body), (200, json!({ "sub": "user-1" })));
    app.call("/maybe", &[("authorization", "Bearer x.y.z")]).await.assert_invalid_token("the token is malformed");
    // `Claims<C>` (not optional) behind an optional layer: 401 for the anonymous request.
    app.call("/me", &[]).await.assert_no_credentials();
}

#[tokio::test]
async fn claims_without_the_layer_is_a_500_that_says_so() {
    let app = App::serve(Router::new().route("/me", get(me))).await;
    let answer = app.call("/me", &[]).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.body["error"], "server_error");
    assert!(answer.body["error_description"].as_str().unwrap().contains("JwtAuthLayer is missing"));
}

#[tokio::test]
async fn grpc_requests_get_grpc_status_instead_of_http_errors() {
    let (mut app, _key) = hs256_app().await;
    // gRPC is HTTP/2.
    app.http = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let answer = app.call("/me", &[("content-type", "application/grpc")]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("grpc-status"), Some("16"));
    assert_eq!(answer.header("grpc-message"), Some("no bearer token was sent"));
    assert_eq!(answer.header("content-type"), Some("application/grpc"));
    assert_eq!(answer.body, Value::Null);
    let answer =
        app.call("/me", &[("content-type", "application/grpc+proto"), ("authorization", "Bearer a.b.c")]).await;
    assert_eq!((answer.status, answer.header("grpc-status")), (200, Some("16")));
    assert_eq!(answer.header("grpc-message"), Some("the token is malformed"));
}

/// Revokes one `jti`, answering at once or after a round trip, or fails like an unreachable store.
#[derive(Clone, Copy)]
enum TestDenylist {
    Sync,
    Async,
    Down,
}

impl Denylist for TestDenylist {
    fn check(&self, claims: &RegisteredClaims) -> Lookup {
        let status = if claims.token_id() == Some("revoked") { TokenStatus::Revoked } else { TokenStatus::Active };
        match self {
            Self::Sync => Lookup::Ready(Ok(status)),
            Self::Async => Lookup::Pending(Box::pin(async move {
                tokio::task::yield_now().await;
                Ok(status)
            })),
            Self::Down => Lookup::Pending(Box::pin(async { Err(DenylistError::new("connection refused")) })),
        }
    }

    fn revoke(&self, _jti: &str, _until: i64) -> jwtgate::revocation::PendingRevocation {
        Box::pin(async { Err(DenylistError::new("this test denylist is read-only")) })
    }

    fn revoke_subject(
        &self,
        _subject: &str,
        _issued_before: i64,
        _until: i64,
    ) -> jwtgate::revocation::PendingRevocation {
        Box::pin(async { Err(DenylistError::new("this test denylist is read-only")) })
    }
}

#[tokio::test]
async fn revoked_tokens_are_refused_by_sync_and_async_denylists() {
    let key = TestKey::generate(Algorithm::HS256);
    let mut revoked = claims();
    revoked["jti"] = json!("revoked");
    for denylist in [TestDenylist::Sync, TestDenylist::Async] {
        let app = App::new(JwtAuthLayer::new(rules([key.verification_key()]).build()).denylist(denylist)).await;
        app.bearer(&key.sign(&revoked)).await.assert_invalid_token("the token has been revoked");
        assert_eq!(app.bearer(&key.sign(&claims())).await.status, 200);
    }
}

#[tokio::test]
async fn an_unavailable_denylist_fails_closed_with_503() {
    let key = TestKey::generate(Algorithm::HS256);
    let app =
        App::new(JwtAuthLayer::new(rules([key.verification_key()]).build()).denylist(Arc::new(TestDenylist::Down)))
            .await;
    let answer = app.bearer(&key.sign(&claims())).await;
    answer.assert_unavailable("the revocation list is unavailable; try again later");
    // Requests that do not need the store still get their 401.
    app.call("/me", &[]).await.assert_no_credentials();
    app.bearer("a.b.c").await.assert_invalid_token("the token is malformed");
}

#[tokio::test]
async fn fail_open_is_an_explicit_choice() {
    let key = TestKey::generate(Algorithm::HS256);
    let layer = JwtAuthLayer::new(rules([key.verification_key()]).build()).denylist(TestDenylist::Down);
    let app = App::new(layer.denylist_fail_open()).await;
    assert_eq!(app.bearer(&key.sign(&claims())).await.status, 200);
    app.bearer("a.b.c").await.assert_invalid_token("the token is malformed");
}

#[tokio::test]
async fn a_memory_denylist_revokes_at_once_and_can_require_jti() {
    let key = TestKey::generate(Algorithm::HS256);
    let denylist = jwtgate::revocation::MemoryDenylist::new();
    let layer = JwtAuthLayer::new(rules([key.verification_key()]).build()).denylist(denylist.clone());
    let app = App::new(layer.clone()).await;
    let token = key.sign(&claims());
    assert_eq!(app.bearer(&token).await.status, 200);
    denylist.revoke("jti-1", now() + 330).await.unwrap();
    app.bearer(&token).await.assert_invalid_token("the token has been revoked");
    let mut other = claims();
    other["jti"] = json!("jti-2");
    assert_eq!(app.bearer(&key.sign(&other)).await.status, 200, "other tokens are untouched");

    let mut no_jti = claims();
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_eq!(app.bearer(&key.sign(&no_jti)).await.status, 200, "accepted by default");
    let strict = App::new(layer.require_jti()).await;
    strict.bearer(&key.sign(&no_jti)).await.assert_invalid_token("the token has no jti claim");
}
