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
        .route("/nested", get(nested::public));
}
