//! The example's three styles, called over HTTP with Keycloak-style and scope-style tokens made by
//! `jwtgate-test`'s token builder, as your own tests can.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use jwtgate::{Algorithm, Secret};
use jwtgate_example_axum_rbac::{AUDIENCE, ISSUER, app, validator};
use jwtgate_test::TestKey;
use serde_json::{Value, json};

#[tokio::test]
async fn a_signal_sent_the_moment_it_listens_stops_it_with_status_0() {
    let secret = jwtgate_test::b64(TestKey::generate(Algorithm::HS256).secret().unwrap());
    jwtgate_tests::assert_stops_cleanly_on_signals(|| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_jwtgate-example-axum-rbac"));
        command.env("RBAC_JWT_SECRET", &secret).env("RBAC_ADDR", "127.0.0.1:0");
        command
    })
    .await;
}

struct Client {
    base: String,
    key: TestKey,
    http: reqwest::Client,
}

impl Client {
    async fn start() -> Self {
        let key = TestKey::generate(Algorithm::HS256);
        let secret = Secret::new(key.secret().unwrap().to_vec());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = app(validator(&secret).unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base: format!("http://{addr}"), key, http: reqwest::Client::new() }
    }

    fn token(&self, extra: Value) -> String {
        let mut token = self.key.token().issuer(ISSUER).audience(AUDIENCE).subject("ada");
        if let Value::Object(extra) = extra {
            for (name, value) in extra {
                token = token.claim(&name, value);
            }
        }
        token.build()
    }

    async fn status(&self, method: &str, path: &str, token: &str) -> u16 {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self.http.post(url).header("content-type", "application/json").body(r#"{"item":"book"}"#),
            _ => self.http.get(url),
        };
        request.bearer_auth(token).send().await.unwrap().status().as_u16()
    }
}

#[tokio::test]
async fn keycloak_and_scope_tokens_meet_the_three_styles() {
    let client = Client::start().await;
    let keycloak_analyst = client.token(json!({
        "realm_access": { "roles": ["analyst", "offline_access"] },
        "resource_access": { "account": { "roles": ["view-profile"] } },
        "scope": "openid profile",
    }));
    let keycloak_admin = client.token(json!({ "resource_access": { "rbac": { "roles": ["admin"] } } }));
    let reader = client.token(json!({ "scope": "orders:read" }));
    let acme_writer = client.token(json!({ "scope": "orders:read orders:write", "tenant": "acme" }));
    let globex_writer = client.token(json!({ "scope": "orders:write", "tenant": "globex" }));

    // RequireLayer: role analyst.
    assert_eq!(client.status("GET", "/reports", &keycloak_analyst).await, 200);
    assert_eq!(client.status("GET", "/reports", &reader).await, 403);
    // Require<OrdersReader>: scope orders:read.
    assert_eq!(client.status("GET", "/orders", &reader).await, 200);
    assert_eq!(client.status("GET", "/orders", &keycloak_analyst).await, 403);
    // #[require]: admin, or orders:write in tenant acme.
    assert_eq!(client.status("POST", "/orders", &keycloak_admin).await, 200);
    assert_eq!(client.status("POST", "/orders", &acme_writer).await, 200);
    assert_eq!(client.status("POST", "/orders", &globex_writer).await, 403);
    assert_eq!(client.status("POST", "/orders", &reader).await, 403);
    // No valid token: 401 everywhere, never 403.
    for (method, path) in [("GET", "/reports"), ("GET", "/orders"), ("POST", "/orders")] {
        assert_eq!(client.status(method, path, "nope").await, 401, "{method} {path}");
    }
}
