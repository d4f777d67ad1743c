//! Role- and scope-based access control in axum, in jwtgate's three styles side by side:
//!
//! | route | style | policy |
//! |---|---|---|
//! | `GET /reports` | `RequireLayer` on the route | role `analyst` |
//! | `GET /orders` | the `Require<OrdersReader>` extractor | scope `orders:read` |
//! | `POST /orders` | the `#[require(...)]` attribute | role `admin`, or scope `orders:write` in tenant `acme` |
//!
//! Roles come from a `roles` array or from Keycloak (`realm_access.roles`, and `resource_access.rbac.roles`
//! for this client); scopes from the OAuth `scope` string.

use axum::routing::get;
use axum::{Json, Router};
use jwtgate::{
    Algorithm, Claims, ConfigError, JwtAuthLayer, Key, KeySet, Policy, Require, RequireLayer, Secret, Validator, guard,
    guards::AuthorityMapping, require,
};
use serde_json::{Value, json};

/// The issuer the example trusts.
pub const ISSUER: &str = "https://sso.example/realms/demo";
/// The audience the example requires.
pub const AUDIENCE: &str = "rbac";

guard! {
    /// Callers who may read orders.
    pub struct OrdersReader = Policy::scope("orders:read");
}

async fn reports(claims: Claims<Value>) -> Json<Value> {
    Json(json!({ "reports": ["q3"], "for": claims.registered().subject() }))
}

async fn list_orders(_: Require<OrdersReader>) -> Json<Value> {
    Json(json!({ "orders": [1, 2, 3] }))
}

#[require(any(role = "admin", all(scope = "orders:write", claim(tenant = "acme"))))]
async fn create_order(Json(order): Json<Value>) -> Json<Value> {
    Json(json!({ "created": order }))
}

/// The validator: HS256 tokens from [`ISSUER`] for [`AUDIENCE`], with roles read from a `roles` array and
/// from Keycloak's claims, and scopes from `scope`.
pub fn validator(secret: &Secret) -> Result<Validator, ConfigError> {
    let keys = KeySet::new([Key::hmac(Algorithm::HS256, secret)?])?;
    let authorities = AuthorityMapping::new().roles().keycloak_realm_roles().keycloak_client_roles("rbac").scope();
    Ok(Validator::builder(keys).issuer(ISSUER).audience(AUDIENCE).authorities(authorities).build())
}

/// The application.
pub fn app(validator: Validator) -> Router {
    Router::new()
        .route("/reports", get(reports).route_layer(RequireLayer::new(Policy::role("analyst"))))
        .route("/orders", get(list_orders).post(create_order))
        .layer(JwtAuthLayer::<Value>::new(validator))
}
