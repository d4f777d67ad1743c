//! Policy guards over real HTTP: `RequireLayer` and `Require<G>`, one behaviour, and the presets on
//! real-world token shapes.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use axum::routing::{get, post};
use axum::{Json, Router};
use jwtgate::{
    Algorithm, Guard, JwtAuthLayer, KeySet, Policy, Require, RequireLayer, Validator, guard, guards::AuthorityMapping,
};
use jwtgate_tests::{AUDIENCE, Answer, ISSUER, TestKey, claims};
use serde_json::{Value, json};

#[jwtgate::require(role = "admin")]
async fn macro_admin() -> &'static str {
    "admin"
}

#[jwtgate::require(any(role = "admin", all(scope = "orders:write", claim(tenant = "acme"))))]
async fn macro_orders(Json(body): Json<Value>) -> Json<Value> {
    Json(body)
}

guard! {
    /// The administrators.
    struct Admin = Policy::role("admin");
}

#[jwtgate::require(acr = "urn:mfa", max_auth_age = 300)]
async fn macro_sensitive() -> &'static str {
    "sensitive"
}

guard! {
    /// A recent sign-in with a second factor.
    struct SteppedUp = Policy::all([Policy::acr(["urn:mfa"]), Policy::max_auth_age(std::time::Duration::from_secs(300))]);
}

guard! {
    struct OrdersWriter = Policy::any([
        Policy::role("admin"),
        Policy::all([Policy::scope("orders:write"), Policy::claim_eq("tenant", "acme")]),
    ]);
}

const STYLES: [&str; 3] = ["layer", "extractor", "macro"];

const FORBIDDEN: &str = "the token does not grant access to this resource";

struct App {
    base: String,
    key: TestKey,
    http: reqwest::Client,
}

impl App {
    /// `/layer/*` guarded by `RequireLayer`, `/extractor/*` by `Require<G>`, `/macro/*` by `#[require]`;
    /// the same policies.
    async fn new(mapping: AuthorityMapping, optional: bool) -> Self {
        let key = TestKey::generate(Algorithm::HS256);
        let validator = Validator::builder(KeySet::new([key.verification_key()]).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .authorities(mapping)
            .build();
        let mut auth = JwtAuthLayer::<Value>::new(validator);
        if optional {
            auth = auth.optional();
        }
        let layered = Router::new()
            .route("/layer/admin", get(|| async { "admin" }).route_layer(RequireLayer::new(Admin::policy().clone())))
            .route(
                "/layer/sensitive",
                get(|| async { "sensitive" }).route_layer(RequireLayer::new(SteppedUp::policy().clone())),
            )
            .route(
                "/layer/orders",
                post(|Json(body): Json<Value>| async move { Json(body) })
                    .route_layer(RequireLayer::new(OrdersWriter::policy().clone())),
            );
        let extracted = Router::new()
            .route("/extractor/admin", get(|_: Require<Admin>| async { "admin" }))
            .route("/extractor/sensitive", get(|_: Require<SteppedUp>| async { "sensitive" }))
            .route(
                "/extractor/orders",
                post(|_: Require<OrdersWriter>, Json(body): Json<Value>| async move { Json(body) }),
            );
        let attributed = Router::new()
            .route("/macro/admin", get(macro_admin))
            .route("/macro/sensitive", get(macro_sensitive))
            .route("/macro/orders", post(macro_orders));
        let app = layered.merge(extracted).merge(attributed).layer(auth);
        let addr = jwtgate_tests::serve(app).await;
        Self { base: format!("http://{addr}"), key, http: reqwest::Client::new() }
    }

    async fn get(&self, path: &str, claims: Option<&Value>) -> Answer {
        let token = claims.map(|claims| format!("Bearer {}", self.key.sign(claims)));
        let headers: Vec<(&str, &str)> = token.iter().map(|t| ("authorization", t.as_str())).collect();
        jwtgate_tests::get(&self.http, &format!("{}{path}", self.base), &headers).await
    }

    async fn post(&self, path: &str, claims: &Value, body: &str) -> (u16, String, String) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.key.sign(claims))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        (status, challenge.unwrap_or_default(), response.text().await.unwrap())
    }
}

fn with(extra: Value) -> Value {
    let mut claims = claims();
    if let Value::Object(extra) = extra {
        claims.as_object_mut().unwrap().extend(extra);
    }
    claims
}

#[track_caller]
fn assert_forbidden(answer: &Answer, scope: Option<&str>) {
    assert_eq!(answer.status, 403, "{}", answer.body);
    let mut challenge = format!(r#"Bearer error="insufficient_scope", error_description="{FORBIDDEN}""#);
    if let Some(scope) = scope {
        challenge.push_str(&format!(r#", scope="{scope}""#));
    }
    assert_eq!(answer.header("www-authenticate"), Some(challenge.as_str()));
    assert_eq!(answer.body, json!({ "error": "insufficient_scope", "error_description": FORBIDDEN }));
}

#[tokio::test]
async fn both_styles_grant_and_refuse_alike() {
    let app = App::new(AuthorityMapping::default(), false).await;
    for style in STYLES {
        let path = format!("/{style}/admin");
        let answer = app.get(&path, Some(&with(json!({ "roles": ["admin"] })))).await;
        assert_eq!(answer.status, 200, "{style}");
        assert_forbidden(&app.get(&path, Some(&with(json!({ "roles": ["user"] })))).await, None);
        assert_forbidden(&app.get(&path, Some(&claims())).await, None);
        let answer = app.get(&path, None).await;
        assert_eq!((answer.status, answer.header("www-authenticate")), (401, Some("Bearer")), "{style}");
    }
}

#[tokio::test]
async fn an_anonymous_request_meeting_a_guard_is_401_never_403() {
    let app = App::new(AuthorityMapping::default(), true).await;
    for path in ["/layer/admin", "/extractor/admin", "/macro/admin"] {
        let answer = app.get(path, None).await;
        assert_eq!(answer.status, 401, "{path}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        assert_eq!(answer.body["error_description"], "no bearer token was sent");
    }
}

#[tokio::test]
async fn scope_and_claim_policies_and_the_scope_attribute() {
    let app = App::new(AuthorityMapping::default(), false).await;
    let writer = with(json!({ "scope": "orders:read orders:write", "tenant": "acme" }));
    let other_tenant = with(json!({ "scope": "orders:write", "tenant": "globex" }));
    let reader = with(json!({ "scope": "orders:read", "tenant": "acme" }));
    for style in STYLES {
        let path = format!("/{style}/orders");
        assert_eq!(app.post(&path, &writer, r#"{"id":1}"#).await.0, 200, "{style}");
        for claims in [&other_tenant, &reader] {
            let (status, challenge, body) = app.post(&path, claims, r#"{"id":1}"#).await;
            assert_eq!(status, 403, "{style}: {body}");
            assert!(challenge.ends_with(r#", scope="orders:write""#), "{challenge}");
        }
    }
}

#[tokio::test]
async fn a_malformed_body_never_hides_the_403() {
    let app = App::new(AuthorityMapping::default(), false).await;
    let reader = with(json!({ "scope": "orders:read" }));
    for style in STYLES {
        let (status, challenge, body) = app.post(&format!("/{style}/orders"), &reader, "{not json").await;
        assert_eq!(status, 403, "{style}: {body}");
        assert!(challenge.contains("insufficient_scope"));
        // With the right authorities, the same body reaches the body extractor, which refuses it.
        let admin = with(json!({ "roles": ["admin"] }));
        assert_eq!(app.post(&format!("/{style}/orders"), &admin, "{not json").await.0, 400, "{style}");
    }
}

const STEP_UP: &str = "the resource needs a stronger or more recent authentication of the user";

/// A token signed in `seconds_ago` with `acr`.
fn signed_in(acr: &str, seconds_ago: i64) -> Value {
    with(json!({ "acr": acr, "auth_time": jwtgate::__private::unix_now() - seconds_ago }))
}

#[track_caller]
fn assert_step_up(answer: &Answer, wants: &str) {
    assert_eq!(answer.status, 401, "{}", answer.body);
    let challenge =
        format!(r#"Bearer error="insufficient_user_authentication", error_description="{STEP_UP}", {wants}"#);
    assert_eq!(answer.header("www-authenticate"), Some(challenge.as_str()));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.body, json!({ "error": "insufficient_user_authentication", "error_description": STEP_UP }));
}

#[tokio::test]
async fn step_up_is_a_401_naming_what_the_sign_in_lacks_in_every_style() {
    for optional in [false, true] {
        let app = App::new(AuthorityMapping::default(), optional).await;
        for style in STYLES {
            let path = format!("/{style}/sensitive");
            let answer = app.get(&path, Some(&signed_in("urn:mfa", 10))).await;
            assert_eq!(answer.status, 200, "{style}");
            // The default leeway (30 s) counts for auth_time too.
            assert_eq!(app.get(&path, Some(&signed_in("urn:mfa", 320))).await.status, 200, "{style}");
            assert_step_up(&app.get(&path, Some(&signed_in("urn:pwd", 10))).await, r#"acr_values="urn:mfa""#);
            assert_step_up(&app.get(&path, Some(&signed_in("urn:mfa", 400))).await, "max_age=300");
            assert_step_up(
                &app.get(&path, Some(&signed_in("urn:pwd", 400))).await,
                r#"acr_values="urn:mfa", max_age=300"#,
            );
            assert_step_up(&app.get(&path, Some(&claims())).await, r#"acr_values="urn:mfa", max_age=300"#);
            app.get(&path, None).await.assert_no_credentials();
        }
    }
}

#[tokio::test]
async fn a_guard_without_the_auth_layer_is_a_500_that_says_so() {
    let app = Router::new()
        .route("/layer", get(|| async { "x" }).route_layer(RequireLayer::new(Policy::role("admin"))))
        .route("/extractor", get(|_: Require<Admin>| async { "x" }));
    let addr = jwtgate_tests::serve(app).await;
    for path in ["/layer", "/extractor"] {
        let answer = jwtgate_tests::get(&reqwest::Client::new(), &format!("http://{addr}{path}"), &[]).await;
        assert_eq!(answer.status, 500, "{path}");
        assert_eq!(answer.body["error"], "server_error");
        assert!(answer.body["error_description"].as_str().unwrap().contains("no JwtAuthLayer"));
    }
}

#[tokio::test]
async fn presets_on_real_world_token_shapes() {
    let cases: [(&str, AuthorityMapping, Value); 5] = [
        (
            "keycloak",
            AuthorityMapping::new().keycloak_realm_roles().keycloak_client_roles("orders-api"),
            json!({
                "realm_access": { "roles": ["offline_access", "uma_authorization"] },
                "resource_access": { "orders-api": { "roles": ["admin"] }, "account": { "roles": ["manage-account"] } },
                "scope": "openid email profile",
                "preferred_username": "ada",
                "typ": "Bearer",
            }),
        ),
        (
            "auth0",
            AuthorityMapping::new().permissions().pointer("/https:~1~1example.com~1roles", jwtgate::Authority::Role),
            json!({
                "https://example.com/roles": ["admin"],
                "permissions": ["read:orders"],
                "scope": "openid profile",
                "azp": "abc",
            }),
        ),
        (
            "cognito",
            AuthorityMapping::new().cognito_groups(),
            json!({ "cognito:groups": ["admin"], "token_use": "access", "scope": "aws.cognito.signin.user.admin", "client_id": "x" }),
        ),
        (
            "entra",
            AuthorityMapping::new().entra_roles().scp(),
            json!({ "roles": ["admin"], "scp": "User.Read", "tid": "t", "oid": "o", "ver": "2.0" }),
        ),
        (
            "oauth-scope",
            AuthorityMapping::new().scope().from_fn(|claims| {
                let admin = claims.get::<String>("scope").is_some_and(|s| s.split(' ').any(|s| s == "admin"));
                if admin { vec![(jwtgate::Authority::Role, "admin".into())] } else { Vec::new() }
            }),
            json!({ "scope": "orders:read admin", "client_id": "svc" }),
        ),
    ];
    for (name, mapping, shape) in cases {
        let app = App::new(mapping, false).await;
        let answer = app.get("/extractor/admin", Some(&with(shape.clone()))).await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.body);
        let answer = app.get("/layer/admin", Some(&with(shape.clone()))).await;
        assert_eq!(answer.status, 200, "{name}");
        let answer = app.get("/macro/admin", Some(&with(shape))).await;
        assert_eq!(answer.status, 200, "{name}");
        assert_forbidden(&app.get("/layer/admin", Some(&claims())).await, None);
    }
}
