//! A protected resource (RFC 9728, RFC 8707) over real HTTP: its metadata at both URLs, `resource_metadata`
//! and `scope` on every challenge, and `aud` bound to the resource.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use jwtgate::keys::SigningKey;
use jwtgate::resource::{BearerMethod, ProtectedResourceMetadata, ResourceUri};
use jwtgate::responses::Rfc6750Responder;
use jwtgate::sources::{TokenSource, TokenSources};
use jwtgate::validation::ConfigErrorKind;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Policy, RequireLayer, Validator};
use jwtgate_tests::{Answer, ISSUER, TestKey, claims};
use serde_json::{Value, json};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const METADATA_URL: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

fn validator(key: &TestKey, resource: &ResourceUri) -> Validator {
    Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(resource.clone()).build()
}

fn token(key: &TestKey, aud: Value) -> String {
    let mut claims = claims();
    claims["aud"] = aud;
    claims["scope"] = json!("mcp:read");
    key.sign(&claims)
}

struct Resource {
    base: String,
    key: TestKey,
    http: reqwest::Client,
}

impl Resource {
    /// `/mcp` behind the layer, needing `mcp:read`; `/admin` needing `mcp:write`; the metadata outside it.
    async fn start(configure: impl FnOnce(JwtAuthLayer<Value>) -> JwtAuthLayer<Value>) -> Self {
        let key = TestKey::generate(Algorithm::HS256);
        let resource = ResourceUri::parse(RESOURCE).unwrap();
        let layer = configure(JwtAuthLayer::<Value>::new(validator(&key, &resource)).resource(resource));
        let read = Policy::scope("mcp:read");
        let write = Policy::scope("mcp:write");
        let metadata = layer.metadata().unwrap().scopes_of(&read).scopes_of(&write).serve_at_root();
        let service = metadata.into_service().unwrap();
        let mut app = Router::new()
            .route("/mcp", get(|| async { "mcp" }).route_layer(RequireLayer::new(read)))
            .route("/admin", get(|| async { "admin" }).route_layer(RequireLayer::new(write)))
            .layer(layer);
        for path in service.paths() {
            app = app.route_service(path, service.clone());
        }
        let addr = jwtgate_tests::serve(app).await;
        Self { base: format!("http://{addr}"), key, http: reqwest::Client::new() }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        jwtgate_tests::get(&self.http, &format!("{}{path}", self.base), headers).await
    }

    async fn get_with(&self, path: &str, token: &str) -> Answer {
        self.get(path, &[("authorization", &format!("Bearer {token}"))]).await
    }
}

#[tokio::test]
async fn the_metadata_is_served_at_the_path_inserted_url_and_at_the_root() {
    let resource = Resource::start(|layer| layer).await;
    let expected = json!({
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["mcp:read", "mcp:write"],
        "bearer_methods_supported": ["header"],
    });
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let answer = resource.get(path, &[]).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.body, expected, "{path}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.header("cache-control"), Some("public, max-age=300"));
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
        let etag = answer.header("etag").unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        // A client that has it gets 304 and no body.
        let again = resource.get(path, &[("if-none-match", &etag)]).await;
        assert_eq!((again.status, again.body.clone(), again.header("etag")), (304, Value::Null, Some(etag.as_str())));
        let weak = resource.get(path, &[("if-none-match", &format!("\"other\", W/{etag}"))]).await;
        assert_eq!(weak.status, 304);
        assert_eq!(resource.get(path, &[("if-none-match", "\"other\"")]).await.status, 200);
    }
    let head = resource.http.head(format!("{}/.well-known/oauth-protected-resource/mcp", resource.base));
    let head = head.send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("etag"));
    let post = resource.http.post(format!("{}/.well-known/oauth-protected-resource/mcp", resource.base));
    let post = post.send().await.unwrap();
    assert_eq!((post.status().as_u16(), post.headers()["allow"].to_str().unwrap()), (405, "GET, HEAD, OPTIONS"));
    let preflight = resource
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/.well-known/oauth-protected-resource/mcp", resource.base));
    let preflight = preflight.header("origin", "https://inspector.example").send().await.unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert_eq!(preflight.headers()["access-control-allow-methods"], "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn the_service_answers_only_its_own_paths() {
    let resource = ResourceUri::parse(RESOURCE).unwrap();
    let service = ProtectedResourceMetadata::new(resource).into_service().unwrap();
    assert_eq!(service.paths().collect::<Vec<_>>(), ["/.well-known/oauth-protected-resource/mcp"]);
    let app = Router::new().fallback_service(service);
    let addr = jwtgate_tests::serve(app).await;
    let http = reqwest::Client::new();
    let at = |path: &str| format!("http://{addr}{path}");
    assert_eq!(jwtgate_tests::get(&http, &at("/.well-known/oauth-protected-resource/mcp"), &[]).await.status, 200);
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/other", "/"] {
        assert_eq!(jwtgate_tests::get(&http, &at(path), &[]).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn every_challenge_names_the_metadata_and_bearer_comes_first() {
    let resource = Resource::start(|layer| layer).await;
    let metadata = format!(r#"resource_metadata="{METADATA_URL}""#);
    let missing = resource.get("/mcp", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some(format!("Bearer {metadata}").as_str()));
    assert_eq!(missing.body, json!({ "error": "unauthorized", "error_description": "no bearer token was sent" }));

    let bad = resource.get_with("/mcp", "not-a-token").await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.header("www-authenticate"),
        Some(
            format!(r#"Bearer error="invalid_token", error_description="the token is malformed", {metadata}"#).as_str()
        )
    );
    assert_eq!(bad.body, json!({ "error": "invalid_token", "error_description": "the token is malformed" }));

    let forbidden = resource.get_with("/admin", &token(&resource.key, json!(RESOURCE))).await;
    assert_eq!(forbidden.status, 403);
    let description = "the token does not grant access to this resource";
    assert_eq!(
        forbidden.header("www-authenticate"),
        Some(
            format!(
                r#"Bearer error="insufficient_scope", error_description="{description}", scope="mcp:write", {metadata}"#
            )
            .as_str()
        )
    );
    assert_eq!(forbidden.body, json!({ "error": "insufficient_scope", "error_description": description }));
    assert_eq!(resource.get_with("/mcp", &token(&resource.key, json!(RESOURCE))).await.status, 200);
}

#[tokio::test]
async fn a_401_for_missing_or_invalid_credentials_can_ask_for_scopes() {
    let resource = Resource::start(|layer| {
        let resource = ResourceUri::parse(RESOURCE).unwrap();
        layer.responder(Rfc6750Responder::new().resource_metadata(&resource).required_scopes(["mcp:read", "mcp:write"]))
    })
    .await;
    let missing = resource.get("/mcp", &[]).await;
    assert_eq!(
        missing.header("www-authenticate"),
        Some(format!(r#"Bearer scope="mcp:read mcp:write", resource_metadata="{METADATA_URL}""#).as_str())
    );
    // So does an invalid token's: the client needs a new token, and learns what to ask for.
    let bad = resource.get_with("/mcp", "x.y.z").await;
    assert_eq!(
        bad.header("www-authenticate"),
        Some(
            format!(
                r#"Bearer error="invalid_token", error_description="the token is malformed", scope="mcp:read mcp:write", resource_metadata="{METADATA_URL}""#
            )
            .as_str()
        )
    );
    // A 403 names the refused policy's scopes instead.
    let forbidden = resource.get_with("/admin", &token(&resource.key, json!(RESOURCE))).await;
    assert!(forbidden.header("www-authenticate").unwrap().contains(r#"scope="mcp:write", resource_metadata"#));
}

#[tokio::test]
async fn aud_must_name_the_resource_with_only_scheme_and_host_compared_without_case() {
    let resource = Resource::start(|layer| layer).await;
    for aud in [
        json!(RESOURCE),
        json!("HTTPS://MCP.Example.COM/mcp"),
        json!("https://mcp.example.com:443/mcp"),
        json!(["https://other.example", RESOURCE]),
    ] {
        assert_eq!(resource.get_with("/mcp", &token(&resource.key, aud.clone())).await.status, 200, "{aud}");
    }
    for aud in [
        json!("https://mcp.example.com/mcp2"),
        json!("https://mcp.example.com/MCP"),
        json!("https://mcp.example.com/mcp/"),
        json!("https://mcp.example.com"),
        json!("http://mcp.example.com/mcp"),
        json!("api"),
        json!(["https://mcp.example.com/other"]),
    ] {
        let answer = resource.get_with("/mcp", &token(&resource.key, aud.clone())).await;
        assert_eq!(answer.status, 401, "{aud}");
        assert_eq!(answer.body["error_description"], "the token's audience is not accepted", "{aud}");
    }
    let mut no_aud = claims();
    no_aud.as_object_mut().unwrap().remove("aud");
    let answer = resource.get_with("/mcp", &resource.key.sign(&no_aud)).await;
    assert_eq!((answer.status, answer.body["error_description"].as_str()), (401, Some("the token has no aud claim")));
}

#[tokio::test]
async fn a_token_in_the_query_string_is_never_read() {
    let resource = Resource::start(|layer| layer).await;
    let token = token(&resource.key, json!(RESOURCE));
    let answer = resource.get(&format!("/mcp?access_token={token}"), &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["error_description"], "no bearer token was sent");
}

#[tokio::test]
async fn the_layers_metadata_follows_its_sources_and_issuers_and_refuses_to_disagree() {
    let key = TestKey::generate(Algorithm::HS256);
    let resource = ResourceUri::parse(RESOURCE).unwrap();
    let no_resource = JwtAuthLayer::<Value>::new(validator(&key, &resource));
    assert_eq!(no_resource.metadata().unwrap_err().kind(), ConfigErrorKind::Resource);
    let other_audience =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience("api").build();
    let error = JwtAuthLayer::<Value>::new(other_audience).resource(resource.clone()).metadata().unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::Resource);
    assert_eq!(
        error.to_string(),
        "the validator refuses tokens for the resource https://mcp.example.com/mcp: build it with .audience(resource)"
    );
    let sources =
        TokenSources::new([TokenSource::cookie("session"), TokenSource::bearer(), TokenSource::query("access_token")]);
    let layer = JwtAuthLayer::<Value>::new(validator(&key, &resource)).resource(resource.clone()).sources(sources);
    let document = layer.metadata().unwrap().document().unwrap();
    assert_eq!(document["bearer_methods_supported"], json!(["header", "query"]));
    let cookie_only = layer.sources(TokenSources::new([TokenSource::cookie("session")]));
    assert_eq!(cookie_only.metadata().unwrap().document().unwrap()["bearer_methods_supported"], json!([]));
}

#[tokio::test]
async fn every_member_is_written_and_signed_metadata_verifies_with_the_key() {
    let resource = ResourceUri::parse(RESOURCE).unwrap();
    let signer = SigningKey::generate(Algorithm::ES256, "metadata-1").unwrap();
    let metadata = ProtectedResourceMetadata::new(resource.clone())
        .authorization_server("https://auth.example.com")
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read", "mcp:read", "mcp:write"])
        .bearer_methods([BearerMethod::Header, BearerMethod::Body])
        .jwks_uri("https://mcp.example.com/jwks.json")
        .resource_name("Example MCP")
        .resource_documentation("https://docs.example.com/mcp")
        .dpop([Algorithm::ES256, Algorithm::EdDSA], true)
        .tls_client_certificate_bound_access_tokens()
        .field("resource_policy_uri", "https://example.com/policy")
        .max_age(Duration::from_secs(60));
    let plain = json!({
        "resource": RESOURCE,
        "authorization_servers": ["https://auth.example.com"],
        "jwks_uri": "https://mcp.example.com/jwks.json",
        "scopes_supported": ["mcp:read", "mcp:write"],
        "bearer_methods_supported": ["header", "body"],
        "resource_name": "Example MCP",
        "resource_documentation": "https://docs.example.com/mcp",
        "tls_client_certificate_bound_access_tokens": true,
        "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
        "dpop_bound_access_tokens_required": true,
        "resource_policy_uri": "https://example.com/policy",
    });
    assert_eq!(metadata.document().unwrap(), plain);

    let signed = metadata.signed_by(signer.clone(), "https://mcp.example.com").document().unwrap();
    let jwt = signed["signed_metadata"].as_str().unwrap();
    let verifier = Validator::builder(KeySet::new([signer.verification_key().clone()]).unwrap())
        .issuer("https://mcp.example.com")
        .require_exp(false)
        .build();
    let claims = verifier.validate::<Value>(jwt).unwrap().into_claims();
    let mut expected = plain.clone();
    expected["iss"] = json!("https://mcp.example.com");
    expected["iat"] = claims["iat"].clone();
    assert_eq!(claims, expected);
    assert!(claims["iat"].as_i64().unwrap() >= jwtgate_tests::now() - 5);
    let mut without_jwt = signed.clone();
    without_jwt.as_object_mut().unwrap().remove("signed_metadata");
    assert_eq!(without_jwt, plain);

    // `authorization_servers` replaces the list that `authorization_server` adds to.
    let replaced = ProtectedResourceMetadata::new(resource.clone())
        .authorization_server("https://auth.example.com")
        .authorization_servers(["https://front.example.com", "https://front.example.com"]);
    assert_eq!(replaced.document().unwrap()["authorization_servers"], json!(["https://front.example.com"]));
    let none = ProtectedResourceMetadata::new(resource.clone()).authorization_servers(Vec::<String>::new());
    assert!(none.document().unwrap().get("authorization_servers").is_none());

    let clash = ProtectedResourceMetadata::new(resource).field("resource", "https://evil.example");
    let error = clash.document().unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::Resource);
    assert_eq!(
        error.to_string(),
        r#"protected resource metadata: the member "resource" is set by its own method, not by field"#
    );
}
