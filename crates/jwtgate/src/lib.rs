//! JWT authentication and authorization for tower, axum and tonic.
//!
//! This facade re-exports jwtgate's crates: validation from `jwtgate-core`, the `JwtAuthLayer` from
//! `jwtgate-tower`, and, with the `axum` feature (on by default), the `Claims<C>` extractor from
//! `jwtgate-axum`.
//!
//! ```
//! use axum::{Router, routing::get};
//! use jwtgate::{Algorithm, Claims, JwtAuthLayer, Key, KeySet, Secret, Validator};
//!
//! #[derive(serde::Deserialize)]
//! struct MyClaims {
//!     #[serde(default)]
//!     roles: Vec<String>,
//! }
//!
//! async fn me(claims: Claims<MyClaims>) -> String {
//!     format!("hello {:?}, roles {:?}", claims.registered().subject(), claims.roles)
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let secret = Secret::new(vec![42; 32]);
//! // let secret = Secret::from_env("JWT_SECRET")?; // at least 32 bytes, never hard-coded
//! let keys = KeySet::new([Key::hmac(Algorithm::HS256, &secret)?])?;
//! let validator = Validator::builder(keys).issuer("https://auth.example").audience("api").build();
//! let app: Router = Router::new().route("/me", get(me)).layer(JwtAuthLayer::<MyClaims>::new(validator));
//! # Ok(())
//! # }
//! ```

pub use jwtgate_core::*;
pub use jwtgate_tower::*;

#[cfg(feature = "utoipa")]
pub use jwtgate_axum::openapi;
#[cfg(feature = "axum")]
pub use jwtgate_axum::{Claims, ClaimsRejection, Guard, GuardRejection, Require, guard};
#[cfg(feature = "macros")]
pub use jwtgate_macros::require;

/// The Redis denylist, for fleets of servers.
#[cfg(feature = "redis")]
pub mod redis {
    pub use jwtgate_redis::*;
}

/// Remote keys: an identity provider's JWK Set by URL or OpenID Connect discovery, refreshed in the
/// background; and the publication of your own keys.
#[cfg(feature = "jwks")]
pub mod jwks {
    pub use jwtgate_jwks::*;
}

/// Being your own issuer: access tokens, refresh-token rotation with reuse detection.
#[cfg(feature = "session")]
pub mod session {
    pub use jwtgate_session::*;
}

/// gRPC helpers: [`authorize`](tonic::authorize) a policy and read claims from a tonic request.
#[cfg(feature = "tonic")]
pub mod tonic {
    pub use jwtgate_tonic::*;
}
