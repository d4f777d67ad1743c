//! The `utoipa` feature: the Bearer scheme in the components, the whole API required with `BearerRequired`,
//! and the routes a guard protects marked with the scopes its policy asks for.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use jwtgate::openapi::{BearerRequired, BearerSecurity, SCHEME, protect};
use jwtgate::{Guard, Policy, guard};
use serde_json::{Value, json};
use utoipa::OpenApi;

guard! {
    struct Admin = Policy::role("admin");
}

guard! {
    struct OrdersWriter = Policy::any([Policy::role("admin"), Policy::all([Policy::scope("orders:write"), Policy::scope("orders:read")])]);
}

/// The public health check.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Up")))]
#[allow(dead_code, reason = "only its OpenAPI description is used")]
async fn health() {}

/// Creates an order.
#[utoipa::path(post, path = "/orders", responses((status = 201, description = "Created")))]
#[allow(dead_code, reason = "only its OpenAPI description is used")]
async fn create_order() {}

/// Reads the audit log.
#[utoipa::path(get, path = "/audit", responses((status = 200, description = "The log")))]
#[allow(dead_code, reason = "only its OpenAPI description is used")]
async fn audit() {}

#[derive(OpenApi)]
#[openapi(paths(health, create_order, audit), modifiers(&BearerSecurity))]
struct Api;

#[derive(OpenApi)]
#[openapi(paths(health), modifiers(&BearerRequired))]
struct Required;

fn json(doc: &utoipa::openapi::OpenApi) -> Value {
    serde_json::to_value(doc).unwrap()
}

#[test]
fn the_bearer_scheme_is_registered_as_http_bearer_jwt() {
    let doc = json(&Api::openapi());
    let scheme = &doc["components"]["securitySchemes"][SCHEME];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"], &scheme["bearerFormat"]),
        (&json!("http"), &json!("bearer"), &json!("JWT"))
    );
    // Registering the scheme alone requires nothing.
    assert_eq!(doc.get("security"), None);
    assert_eq!(doc["paths"]["/health"]["get"].get("security"), None);
}

#[test]
fn guarded_routes_require_the_scheme_with_their_policys_scopes() {
    let mut doc = Api::openapi();
    protect(&mut doc, "/orders", OrdersWriter::policy());
    protect(&mut doc, "/audit", Admin::policy());
    protect(&mut doc, "/not-documented", Admin::policy());
    let doc = json(&doc);
    // `any`: one requirement per alternative, which OpenAPI reads as "one of these". The admin role is no
    // scope, so its alternative is a token with no particular scope.
    assert_eq!(
        doc["paths"]["/orders"]["post"]["security"],
        json!([{ SCHEME: [] }, { SCHEME: ["orders:write", "orders:read"] }])
    );
    // A role-only policy has no scopes OpenAPI can name: a token is required, with no scope.
    assert_eq!(doc["paths"]["/audit"]["get"]["security"], json!([{ SCHEME: [] }]));
    assert_eq!(doc["paths"]["/health"]["get"].get("security"), None);
    assert_eq!(doc["paths"].get("/not-documented"), None);
}

#[test]
fn bearer_required_covers_the_whole_api() {
    let doc = json(&Required::openapi());
    assert_eq!(doc["security"], json!([{ SCHEME: [] }]));
    assert_eq!(doc["components"]["securitySchemes"][SCHEME]["scheme"], "bearer");
}

#[test]
fn protect_registers_the_scheme_when_the_document_lacks_it() {
    #[derive(OpenApi)]
    #[openapi(paths(audit))]
    struct Bare;
    let mut doc = Bare::openapi();
    protect(&mut doc, "/audit", Admin::policy());
    assert_eq!(json(&doc)["components"]["securitySchemes"][SCHEME]["bearerFormat"], "JWT");
}
