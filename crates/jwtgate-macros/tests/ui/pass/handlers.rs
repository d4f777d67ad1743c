use axum::routing::{get, post};
use axum::{Json, Router};
use jwtgate::require;
use serde_json::Value;

#[require(role = "admin")]
async fn admin() -> &'static str {
    "admin"
}

#[require(any(role = "admin", all(scope = "orders:write", claim(tenant = "acme"))))]
async fn orders(Json(body): Json<Value>) -> Json<Value> {
    Json(body)
}

// Composes with axum's own attribute, in this order.
#[require(role = "admin")]
#[axum::debug_handler]
async fn debugged() -> &'static str {
    "ok"
}

#[require(claim("cognito:groups"), not(role = "banned"), permission = "read:x", claim(level = 3), claim(flag = true))]
pub async fn many() {}

#[require(acr = "urn:mfa", max_auth_age = 300)]
async fn step_up() {}

#[require(any(role = "admin", all(acr = ["urn:mfa", "urn:hwk"], max_auth_age = 0)))]
async fn step_up_nested() {}

mod nested {
    #[jwtgate::require(scope = "x")]
    pub async fn public() {}
}

fn main() {
    let _app: Router = Router::new()
        .route("/admin", get(admin))
        .route("/orders", post(orders))
        .route("/debugged", get(debugged))
        .route("/many", get(many))
        .route("/nested", get(nested::public))
        .route("/step-up", get(step_up))
        .route("/step-up-nested", get(step_up_nested));
}
