//! Being your own issuer with jwtgate: short-lived access tokens ([`TokenIssuer`]), opaque refresh tokens
//! stored hashed and rotated on every use with reuse detection ([`Sessions`], [`RefreshStore`]), and the
//! cookies that keep both out of JavaScript's reach ([`SessionCookies`]).
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use jwtgate_core::{Algorithm, SigningKey, Validator};
//! use jwtgate_session::{MemoryRefreshStore, Sessions, TokenIssuer};
//! use serde_json::json;
//!
//! let key = SigningKey::generate(Algorithm::ES256, "2026-11")?;
//! let issuer = TokenIssuer::builder("https://auth.example", key).audience("api").build()?;
//! // The validator trusts the issuer's keys, through every rotation.
//! let validator = Validator::builder(issuer.clone()).issuer("https://auth.example").audience("api").build();
//!
//! let sessions = Sessions::new(issuer, MemoryRefreshStore::new());
//! let pair = sessions.login("alice", &json!({ "roles": ["admin"] })).await?;
//! assert!(validator.validate::<serde_json::Value>(pair.access.token()).is_ok());
//! let next = sessions.refresh(pair.refresh.as_str(), |_user| Some(json!({ "roles": ["admin"] }))).await?;
//! // The old refresh token is used now: presenting it again revokes the whole family.
//! assert!(sessions.refresh(pair.refresh.as_str(), |_| Some(json!({}))).await.is_err());
//! assert!(sessions.refresh(next.refresh.as_str(), |_| Some(json!({}))).await.is_err());
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

mod cookies;
mod issuer;
mod refresh;
mod sessions;

pub use cookies::SessionCookies;
pub use issuer::{DEFAULT_ACCESS_LIFETIME, Issued, MAX_DEFAULT_LIFETIME, TokenIssuer, TokenIssuerBuilder};
pub use jwtgate_core::{ConfigError, ConfigErrorKind};
pub use jwtgate_jwks::JwksPublisher;
pub use refresh::{
    DEFAULT_REFRESH_CAPACITY, DEFAULT_REFRESH_LIFETIME, DEFAULT_SESSION_LIFETIME, MemoryRefreshStore, PendingStore,
    RefreshRecord, RefreshStore, RefreshToken, Rotation, StoreError, TokenHash,
};
pub use sessions::{SessionError, Sessions, TokenPair};

/// A [`ConfigErrorKind::Issuer`] error: an issuer or a session could not be set up, or a token not issued.
pub(crate) fn issuer_error(message: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::Issuer, message)
}
