//! Remote keys for jwtgate: an identity provider's JWK Set, by URL, by OpenID Connect discovery or by OAuth
//! 2.0 authorization server metadata (RFC 8414), refreshed in the background and through key rotation.
//!
//! ```no_run
//! # #[cfg(feature = "remote")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use jwtgate_core::Validator;
//! use jwtgate_jwks::RemoteKeySet;
//!
//! // Lazy: returns at once; until the first fetch succeeds, requests get 503 with Retry-After.
//! let keys = RemoteKeySet::discover("https://accounts.example.com").build()?;
//! // Or eager: fail at startup when the provider cannot be reached.
//! // let keys = RemoteKeySet::discover("https://accounts.example.com").build_eager().await?;
//! let validator = Validator::builder(keys).issuer("https://accounts.example.com").audience("my-api").build();
//! // JwtAuthLayer::<MyClaims>::new(validator)
//! # Ok(()) }
//! ```
//!
//! See [`RemoteKeySet`] for how keys are refreshed, filtered and kept through failures, and
//! [`JwksPublisher`] to publish your own signing keys.
//!
//! # Features
//! - `remote` (on by default): [`RemoteKeySet`], which fetches keys with reqwest (rustls). Without it, the
//!   crate is [`JwksPublisher`] alone, which needs no HTTP client.
//! - `metrics`: `jwtgate_jwks_fetches_total` through the `metrics` facade.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "remote")]
mod fetch;
pub mod metric_names;
mod publish;
#[cfg(feature = "remote")]
mod remote;

pub use jwtgate_core::{ConfigError, ConfigErrorKind};

/// What jwtgate's own crates share and users do not need: the HTTP helpers `jwtgate-introspection` calls its
/// endpoint with. Not part of the public API, and free to change.
#[cfg(feature = "remote")]
#[doc(hidden)]
pub mod __private {
    pub use crate::fetch::{Shown, check_content_type, describe, parse_endpoint, read_body};
}
pub use publish::{DEFAULT_PUBLISHED_MAX_AGE, JwksPublisher};
#[cfg(feature = "remote")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
pub use remote::{
    DEFAULT_COOLDOWN, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_WAIT, DEFAULT_REFRESH_INTERVAL, DEFAULT_TIMEOUT,
    RemoteKeySet, RemoteKeySetBuilder,
};
