//! ASP.NET's `JwtBearerEvents` over real HTTP, as jwtgate offers them: a token source function
//! (`OnMessageReceived`), the layer's async `on_token_validated` hook (enrich, replace the principal, refuse),
//! and the responder's wrappers (`OnAuthenticationFailed`, `OnChallenge`, `OnForbidden`) with the
//! `Token-Expired` header, which answer for the guards and extractors after the layer too. Tokens come from
//! `jwtgate-test`'s builder, as in a user's tests.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{Extensions, Response};
use jwtgate::{
    Algorithm, Authority, Claims, Error, ErrorKind, Guard, JwtAuthLayer, KeySet, Policy, Principal, Require,
    RequireLayer, Validator, guard,
    responses::{ResponderExt, Rfc6750Responder},
    revocation::MemoryDenylist,
    sources::{TokenSource, TokenSources},
};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, claims, get as http_get, serve};
use serde_json::{Value, json};

/// A user as the application's database knows them.
#[derive(Clone, Debug)]
struct User {
    name: &'static str,
    roles: &'static [&'static str],
}

guard! {
    struct Admin = Policy::role("admin");
}

struct App {
    base: String,
    key: TestKey,
    http: reqwest::Client,
    hook_calls: Arc<AtomicUsize>,
    failures: Arc<AtomicUsize>,
}

impl App {
    async fn new() -> Self {
        let key = TestKey::generate(Algorithm::HS256);
        let validator = Validator::builder(KeySet::new([key.verification_key()]).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build();
        let users: Arc<HashMap<&str, User>> = Arc::new(HashMap::from([
            ("alice", User { name: "Alice", roles: &["admin"] }),
            ("bob", User { name: "Bob", roles: &[] }),
        ]));
        let hook_calls = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(AtomicUsize::new(0));
        let calls = hook_calls.clone();
        let failed = failures.clone();
        let responder = Rfc6750Responder::new()
            .token_expired_header()
            .inspect(move |_| {
                failed.fetch_add(1, Ordering::SeqCst);
            })
            .map_response(|rejection, response: Response<Bytes>| {
                if rejection.error().kind() == ErrorKind::Forbidden {
                    // ASP.NET's `OnForbidden`.
                    let (mut parts, _) = response.into_parts();
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    return Response::from_parts(
                        parts,
                        Bytes::from_static(br#"{"error":"forbidden","see":"/help/access"}"#),
                    );
                }
                // ASP.NET's `OnChallenge`.
                let mut response = response;
                response.headers_mut().insert("x-refused-because", rejection.error().kind().name().parse().unwrap());
                response
            });
        // ASP.NET's `OnMessageReceived`: a function, asked before the bearer source.
        let legacy = TokenSource::from_fn(|head| {
            let value = head.headers().get("x-legacy-token")?;
            value.to_str().ok().map(str::to_owned)
        });
        let layer = JwtAuthLayer::<Value>::new(validator)
            .cache(100)
            .sources(TokenSources::new([legacy, TokenSource::bearer()]))
            .on_token_validated(move |context| {
                calls.fetch_add(1, Ordering::SeqCst);
                let users = users.clone();
                async move {
                    // As a database lookup would: asynchronous, and able to fail.
                    tokio::task::yield_now().await;
                    let subject = context.validated().registered().subject().unwrap_or_default().to_owned();
                    match subject.as_str() {
                        "database-down" => return Err(Error::new(ErrorKind::Unavailable)),
                        "suspended" => return Err(Error::new(ErrorKind::Forbidden)),
                        _ => {}
                    }
                    let user = users.get(subject.as_str()).ok_or(Error::new(ErrorKind::Refused))?.clone();
                    let mut principal = Principal::new(Some(subject));
                    for role in user.roles {
                        principal = principal.with(Authority::Role, *role);
                    }
                    let mut extensions = Extensions::new();
                    extensions.insert(user);
                    extensions.insert(Arc::new(principal));
                    Ok(extensions)
                }
            })
            .responder(responder);
        let app = Router::new()
            .route("/me", get(|Extension(user): Extension<User>| async move { user.name }))
            .route("/admin/layer", get(|| async { "admin" }).route_layer(RequireLayer::new(Admin::policy().clone())))
            .route("/admin/extractor", get(|_: Require<Admin>| async { "admin" }))
            .layer(layer);
        let base = format!("http://{}", serve(app).await);
        Self { base, key, http: reqwest::Client::new(), hook_calls, failures }
    }

    fn token(&self, sub: &str) -> String {
        self.key.token().issuer(ISSUER).audience(AUDIENCE).subject(sub).build()
    }

    async fn call(&self, path: &str, headers: &[(&str, &str)]) -> jwtgate_tests::Answer {
        http_get(&self.http, &format!("{}{path}", self.base), headers).await
    }

    async fn bearer(&self, path: &str, token: &str) -> jwtgate_tests::Answer {
        self.call(path, &[("authorization", &format!("Bearer {token}"))]).await
    }
}

#[tokio::test]
async fn on_token_validated_enriches_the_request_and_runs_for_cached_tokens_too() {
    let app = App::new().await;
    let alice = app.token("alice");
    for _ in 0..2 {
        let answer = app.bearer("/me", &alice).await;
        assert_eq!((answer.status, answer.body.clone()), (200, json!("Alice")));
    }
    // The second request was a cache hit; the hook ran for both.
    assert_eq!(app.hook_calls.load(Ordering::SeqCst), 2);
    assert_eq!(app.failures.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_principal_from_the_hook_is_the_one_guards_see() {
    let app = App::new().await;
    // The token carries no roles; the database makes Alice an admin and Bob nothing.
    for path in ["/admin/layer", "/admin/extractor"] {
        let answer = app.bearer(path, &app.token("alice")).await;
        assert_eq!((answer.status, answer.body.clone()), (200, json!("admin")), "{path}");
        let answer = app.bearer(path, &app.token("bob")).await;
        assert_eq!(answer.status, 403, "{path}");
    }
}

#[tokio::test]
async fn the_hook_refuses_with_401_403_or_503() {
    let app = App::new().await;

    let answer = app.bearer("/me", &app.token("mallory")).await;
    answer.assert_invalid_token("the token was refused");
    assert_eq!(answer.header("x-refused-because"), Some("refused"));

    // The hook's 403 is rewritten as a guard's is; the challenge stays.
    let answer = app.bearer("/me", &app.token("suspended")).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource""#
        )
    );
    assert_eq!(answer.body, json!({ "error": "forbidden", "see": "/help/access" }));
    assert_eq!(answer.header("x-refused-because"), None, "the 403 got the forbidden rewrite alone");

    let answer = app.bearer("/me", &app.token("database-down")).await;
    answer.assert_unavailable("the request could not be checked; try again later");
    assert_eq!(answer.header("x-refused-because"), Some("unavailable"));
    assert_eq!(app.failures.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_source_function_first_decides_before_the_bearer_source_and_defers_to_it_with_none() {
    let app = App::new().await;
    let alice = app.token("alice");
    let answer = app.call("/me", &[("x-legacy-token", &alice)]).await;
    assert_eq!((answer.status, answer.body.clone()), (200, json!("Alice")));
    // The hook's token decides, even with a bad bearer token beside it.
    let answer = app.call("/me", &[("x-legacy-token", &alice), ("authorization", "Bearer garbage")]).await;
    assert_eq!(answer.status, 200);
    // And a bad token from the hook is refused like any other.
    let answer = app.call("/me", &[("x-legacy-token", "garbage"), ("authorization", &format!("Bearer {alice}"))]).await;
    answer.assert_invalid_token("the token is malformed");
    // Without the header, the bearer source looks.
    assert_eq!(app.bearer("/me", &alice).await.status, 200);
}

#[tokio::test]
async fn map_response_rewrites_refusals_and_inspect_sees_each_of_them() {
    let app = App::new().await;
    let answer = app.call("/me", &[]).await;
    answer.assert_no_credentials();
    assert_eq!(answer.header("x-refused-because"), Some("missing"));
    let answer = app.bearer("/me", "a.b.c").await;
    answer.assert_invalid_token("the token is malformed");
    assert_eq!(answer.header("x-refused-because"), Some("malformed"));
    // A refused token never reaches the validated hook.
    assert_eq!(app.hook_calls.load(Ordering::SeqCst), 0);
    assert_eq!(app.failures.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_expired_token_gets_token_expired_true_and_other_refusals_do_not() {
    let app = App::new().await;
    let expired =
        app.key.token().issuer(ISSUER).audience(AUDIENCE).subject("alice").expired_since(Duration::from_secs(3600));
    let answer = app.bearer("/me", &expired.build()).await;
    answer.assert_invalid_token("the token has expired");
    assert_eq!(answer.header("token-expired"), Some("true"));

    let other = TestKey::generate(Algorithm::HS256).sign(&claims());
    let answer = app.bearer("/me", &other).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("token-expired"), None);
}

#[tokio::test]
async fn the_layers_responder_answers_the_403_of_every_kind_of_guard() {
    let app = App::new().await;
    for path in ["/admin/layer", "/admin/extractor"] {
        let answer = app.bearer(path, &app.token("bob")).await;
        assert_eq!(answer.status, 403, "{path}");
        assert_eq!(answer.body, json!({ "error": "forbidden", "see": "/help/access" }), "{path}");
        // The challenge the responder set is kept: the hook changed only the body.
        assert!(answer.header("www-authenticate").unwrap().contains("insufficient_scope"), "{path}");
    }
}

/// A layer whose hook counts its calls, with a denylist, in optional mode.
fn counted(key: &TestKey, denylist: &MemoryDenylist, calls: &Arc<AtomicUsize>) -> Router {
    let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let calls = calls.clone();
    let layer =
        JwtAuthLayer::<Value>::new(validator).optional().denylist(denylist.clone()).on_token_validated(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(Extensions::new()) }
        });
    Router::new().route("/", get(|| async { "ok" })).layer(layer)
}

#[tokio::test]
async fn revoked_tokens_and_anonymous_requests_never_reach_the_hook() {
    let key = TestKey::generate(Algorithm::HS256);
    let denylist = MemoryDenylist::new();
    denylist.revoke_now("gone", jwtgate_tests::now() + 600).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let base = format!("http://{}", serve(counted(&key, &denylist, &calls)).await);
    let http = reqwest::Client::new();
    let revoked = key.token().issuer(ISSUER).audience(AUDIENCE).token_id("gone").build();
    let answer = http_get(&http, &base, &[("authorization", &format!("Bearer {revoked}"))]).await;
    answer.assert_invalid_token("the token has been revoked");
    let answer = http_get(&http, &base, &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let good = key.token().issuer(ISSUER).audience(AUDIENCE).token_id("kept").build();
    assert_eq!(http_get(&http, &base, &[("authorization", &format!("Bearer {good}"))]).await.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_plain_principal_from_the_hook_counts_as_the_principal() {
    let key = TestKey::generate(Algorithm::HS256);
    let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let layer = JwtAuthLayer::<Value>::new(validator).on_token_validated(|context| async move {
        let subject = context.principal().subject().map(str::to_owned);
        let mut extensions = Extensions::new();
        // Not an `Arc<Principal>`: the layer wraps it. Given both, the plain one wins.
        extensions.insert(Principal::new(subject.clone()).with(Authority::Role, "admin"));
        extensions.insert(Arc::new(Principal::new(subject)));
        Ok(extensions)
    });
    let app = Router::new()
        .route("/admin", get(|| async { "admin" }).route_layer(RequireLayer::new(Admin::policy().clone())))
        .route(
            "/leftovers",
            get(|request: axum::extract::Request| async move {
                let extensions = request.extensions();
                json!([extensions.get::<Principal>().is_some(), extensions.get::<Arc<Principal>>().is_some()])
                    .to_string()
            }),
        )
        .layer(layer);
    let base = format!("http://{}", serve(app).await);
    let token = key.token().issuer(ISSUER).audience(AUDIENCE).build();
    let auth = format!("Bearer {token}");
    let answer = http_get(&reqwest::Client::new(), &format!("{base}/admin"), &[("authorization", &auth)]).await;
    assert_eq!((answer.status, answer.body), (200, json!("admin")));
    // The hook's principals went into the one `Authenticated`: neither stays behind as an extension of its own.
    let answer = http_get(&reqwest::Client::new(), &format!("{base}/leftovers"), &[("authorization", &auth)]).await;
    assert_eq!((answer.status, answer.body), (200, json!([false, false])));
}

#[tokio::test]
async fn an_outer_layers_responder_does_not_answer_for_what_an_inner_layer_admitted() {
    let key = TestKey::generate(Algorithm::HS256);
    let validator = || Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let outer = JwtAuthLayer::<Value>::new(validator()).responder(Rfc6750Responder::new().map_response(
        |_, response: Response<Bytes>| Response::from_parts(response.into_parts().0, Bytes::from_static(b"outer")),
    ));
    let app = Router::new()
        .route("/admin", get(|| async { "admin" }).route_layer(RequireLayer::new(Admin::policy().clone())))
        .layer(JwtAuthLayer::<Value>::new(validator()))
        .layer(outer);
    let base = format!("http://{}", serve(app).await);
    let token = key.token().issuer(ISSUER).audience(AUDIENCE).build();
    let auth = format!("Bearer {token}");
    let answer = http_get(&reqwest::Client::new(), &format!("{base}/admin"), &[("authorization", &auth)]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.body,
        json!({ "error": "insufficient_scope", "error_description": "the token does not grant access to this resource" })
    );
}

#[tokio::test]
async fn an_anonymous_request_is_refused_by_guards_and_extractors_with_the_layers_responder() {
    let key = TestKey::generate(Algorithm::HS256);
    let validator = Validator::builder(key.key_set()).issuer(ISSUER).audience(AUDIENCE).build();
    let responder = Rfc6750Responder::new().realm("api").map_response(|rejection, mut response: Response<Bytes>| {
        response.headers_mut().insert("x-refused-because", rejection.error().kind().name().parse().unwrap());
        response
    });
    let app = Router::new()
        .route("/layer", get(|| async { "admin" }).route_layer(RequireLayer::new(Admin::policy().clone())))
        .route("/extractor", get(|_: Require<Admin>| async { "admin" }))
        .route("/claims", get(|_: Claims<Value>| async { "claims" }))
        .route("/open", get(|| async { "open" }))
        .layer(JwtAuthLayer::<Value>::new(validator).optional().responder(responder));
    let base = format!("http://{}", serve(app).await);
    let http = reqwest::Client::new();
    for path in ["/layer", "/extractor", "/claims"] {
        let answer = http_get(&http, &format!("{base}{path}"), &[]).await;
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(answer.header("www-authenticate"), Some(r#"Bearer realm="api""#), "{path}");
        assert_eq!(answer.header("x-refused-because"), Some("missing"), "{path}");
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(
            answer.body,
            json!({ "error": "unauthorized", "error_description": "no bearer token was sent" }),
            "{path}"
        );
    }
    assert_eq!(http_get(&http, &format!("{base}/open"), &[]).await.status, 200);
}
