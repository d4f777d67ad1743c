//! Test utilities for applications that use jwtgate: keys generated at test time for every algorithm, a
//! fluent token builder, an in-process JWK Set and OpenID Connect discovery server, an in-process token
//! introspection endpoint (RFC 7662), and helpers that call a tower service (an axum `Router`, say) or build a
//! tonic request with a token.
//!
//! Add it as a dev-dependency. Nothing here is for production: the keys live in memory for one test run.
//!
//! ```
//! use jwtgate_core::{Algorithm, Validator};
//! use jwtgate_test::TestKey;
//!
//! let key = TestKey::generate(Algorithm::ES256).with_kid("test");
//! let validator = Validator::builder(key.key_set()).issuer("https://issuer.test").audience("api").build();
//!
//! let token = key.token().issuer("https://issuer.test").audience("api").subject("alice").roles(["admin"]).build();
//! let validated = validator.validate::<serde_json::Value>(&token).unwrap();
//! assert!(validated.principal().has_role("admin"));
//!
//! let forged = key.token().issuer("https://issuer.test").audience("api").wrong_signature().build();
//! assert!(validator.validate::<serde_json::Value>(&forged).is_err());
//! ```
//!
//! The server serves a JWK Set, and discovery for an issuer, on a loopback port:
//!
//! ```
//! # async fn example() {
//! use jwtgate_core::Algorithm;
//! use jwtgate_test::{JwksServer, TestKey};
//!
//! let key = TestKey::generate(Algorithm::RS256).with_kid("k1");
//! let server = JwksServer::start(serde_json::json!({ "keys": [key.jwk()] })).await;
//! // Give `server.jwks_url()` to `RemoteKeySet::jwks`, or `server.issuer()` to `RemoteKeySet::discover`.
//! # let _ = server;
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod call;
mod dpop;
mod introspection;
mod jwe;
mod key;
mod server;
mod token;

#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub use call::tonic_request;
pub use call::{body_json, send, with_bearer};
pub use dpop::{DpopKey, ProofBuilder};
pub use introspection::IntrospectionServer;
pub use jwe::JweKey;
pub use key::{PrivateForm, TestKey};
pub use server::{Fault, JwksServer};
pub use token::TokenBuilder;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// base64url without padding, as JWS uses.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    jwtgate_core::__private::unix_now()
}
