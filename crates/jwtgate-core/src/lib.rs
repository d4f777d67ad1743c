//! Framework-free JWT validation for jwtgate: keys, claims, errors and the [`Denylist`] hook.
//!
//! This crate knows nothing of HTTP frameworks. `jwtgate-tower` builds the `JwtAuthLayer` on it, and most
//! users reach both through the `jwtgate` facade.
//!
//! ```
//! use jwtgate_core::{Algorithm, ErrorKind, Key, KeySet, Secret, Validator};
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! struct MyClaims {
//!     #[serde(default)]
//!     roles: Vec<String>,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In production: Secret::from_env("JWT_SECRET")?, which names the variable when it is missing.
//! let secret = Secret::new(b"test-only secret, at least 32 bytes long".to_vec());
//! let keys = KeySet::new([Key::hmac(Algorithm::HS256, &secret)?.with_kid("2026-11")])?;
//! let validator = Validator::builder(keys).issuer("https://auth.example").audience("api").build();
//!
//! # let token = sign(&secret, r#"{"alg":"HS256","kid":"2026-11"}"#,
//! #     r#"{"iss":"https://auth.example","aud":"api","sub":"ada","exp":4102444800,"roles":["admin"]}"#);
//! let valid = validator.validate::<MyClaims>(&token)?;
//! assert_eq!(valid.registered().subject(), Some("ada"));
//! assert_eq!(valid.claims().roles, ["admin"]);
//!
//! let err = validator.validate::<MyClaims>("not-a-token").unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Malformed);
//! # Ok(())
//! # }
//! # fn sign(secret: &Secret, header: &str, claims: &str) -> String {
//! #     use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
//! #     let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
//! #     let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose());
//! #     format!("{input}.{}", B64.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes())))
//! # }
//! ```
//!
//! Signatures are checked by aws-lc-rs with keys prepared once, when they are loaded: the same primitives
//! jsonwebtoken's `aws_lc_rs` backend calls. jwtgate never consults jsonwebtoken's process-level
//! `CryptoProvider`, so a build that enables both of its backends cannot make jwtgate panic.

mod algorithm;
mod cache;
mod claims;
mod denylist;
mod dpop;
mod error;
mod introspection;
pub mod jwe;
mod jwk;
mod jws;
mod key;
mod keypair;
mod mapping;
mod memory;
mod policy;
mod principal;
mod publish;
mod secret;
mod signing;
mod source;
mod validated;
mod validator;

pub use algorithm::{Algorithm, KeyType, UnsupportedAlgorithm};
pub use cache::ValidatedCache;
pub use claims::{Confirmation, RegisteredClaims, certificate_thumbprint};
pub use denylist::{Denylist, DenylistError, Lookup, NoDenylist, PendingLookup, PendingRevocation, TokenStatus};
pub use dpop::{
    CheckedProof, DEFAULT_NONCE_PERIOD, DEFAULT_PROOF_ALGORITHMS, DEFAULT_PROOF_KEYS, DEFAULT_REPLAY_CAPACITY,
    DEFAULT_REPLAY_QUOTA_PER_KEY, DpopNonces, MAX_PROOF_BYTES, MemoryReplayStore, PendingReplayCheck, ProofError,
    ProofKeys, ProofRequirements, ProofUse, ReplayCheck, ReplayError, ReplayErrorKind, ReplayStore, check_proof,
    jwk_thumbprint, normalize_htu,
};
pub use error::{Challenge, ConfigError, ConfigErrorKind, Error, ErrorKind};
pub use introspection::{
    ActiveAnswer, AnswerError, AnswerRules, Introspect, Introspection, MAX_ANSWER_BYTES, PendingIntrospection,
};
pub use jwk::{AlgorithmMapping, SkippedKey};
pub use key::{Key, KeySet, MIN_HMAC_SECRET_BYTES};
pub use mapping::{AuthorityMapping, ClaimSet};
pub use memory::{DEFAULT_CAPACITY as DEFAULT_DENYLIST_CAPACITY, MemoryDenylist};
pub use policy::{Policy, StepUp, Verdict};
pub use principal::{Authority, Principal};
pub use publish::PublicJwk;
pub use secret::Secret;
pub use signing::SigningKey;
pub use source::{KeySource, KeysUnavailable, PendingRefresh, RefreshOutcome, TrustedKeys};
pub use validated::{Attempt, Validated};
pub use validator::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, ExpectedAudience, Validator, ValidatorBuilder};

/// What jwtgate's own crates share and users do not need: not part of the public API, and free to change.
#[doc(hidden)]
pub mod __private {
    pub use crate::jws::unverified_kid;
    pub use crate::validator::unix_now;
}
