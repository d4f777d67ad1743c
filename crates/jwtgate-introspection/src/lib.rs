//! Opaque access tokens for jwtgate: the resource server asks the authorization server's introspection
//! endpoint (RFC 7662) about each token, and caches its answers.
//!
//! Many authorization servers issue opaque (reference) tokens, or let an API choose them, so that revocation
//! takes effect at once: Keycloak's lightweight tokens, Okta, Ory Hydra, Duende's reference tokens, Spring
//! Authorization Server. [`Introspector`] plugs them into `JwtAuthLayer` beside JWTs, or alone, and hands
//! handlers the same `Validated<C>` and `Principal` a JWT gives, so extractors, guards and
//! `#[require(scope = ...)]` work unchanged.
//!
//! ```no_run
//! use jwtgate_core::{AnswerRules, Secret};
//! use jwtgate_introspection::Introspector;
//! use jwtgate_tower::JwtAuthLayer;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let introspector = Introspector::<serde_json::Value>::builder("https://auth.example.com/oauth2/introspect")
//!     .client_secret_basic("api", &Secret::from_env("INTROSPECTION_SECRET")?)
//!     .rules(AnswerRules::new().issuer("https://auth.example.com").audience("https://api.example.com"))
//!     .build()?;
//! let layer = JwtAuthLayer::introspected(introspector);
//! # Ok(())
//! # }
//! ```
//!
//! See the [introspection guide](https://github.com/jwtgate/jwtgate/blob/main/docs/introspection.md) for
//! providers' settings, the cache's trade-off, hybrid setups, and migration from Spring and Duende.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod call;
mod introspector;
pub mod metric_names;

pub use introspector::{
    DEFAULT_CACHE_TTL, DEFAULT_CAPACITY, DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_NEGATIVE_CAPACITY, DEFAULT_NEGATIVE_TTL,
    DEFAULT_TIMEOUT, Introspector, IntrospectorBuilder,
};
pub use jwtgate_core::{AnswerRules, ConfigError, ConfigErrorKind};
