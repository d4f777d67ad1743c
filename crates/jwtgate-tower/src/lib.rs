//! `JwtAuthLayer`: JWT authentication for any tower service (axum, tonic, hyper, tower-http stacks).
//!
//! The layer finds the token through an ordered chain of [`TokenSources`], validates it with
//! `jwtgate-core`'s `Validator`, asks a `Denylist`, and hands one [`Authenticated`] (the principal and the
//! `Validated<C>`) to the inner service through the request extensions. Refusals follow RFC 6750, or gRPC's
//! status codes for gRPC requests.
//!
//! See [`JwtAuthLayer`] for an example.

mod auth;
mod binding;
mod csrf;
mod document;
mod dpop;
mod extensions;
mod head;
mod metadata;
pub mod metric_names;
mod proxy;
pub mod require;
mod resource;
mod response;
mod source;

pub use auth::{JwtAuthLayer, JwtAuthService, ResponseFuture, SubjectInLogs, TokenValidated};
pub use binding::{CertificateBinding, CertificateMode, ClientCertificate};
pub use csrf::Csrf;
pub use dpop::{DEFAULT_PROOF_WINDOW, DPOP_NONCE, Dpop, DpopMode, REPLAY_MARGIN};
pub use extensions::{Anonymous, Authenticated};
pub use head::RequestHead;
pub use metadata::{BearerMethod, DEFAULT_METADATA_MAX_AGE, MetadataService, ProtectedResourceMetadata};
pub use proxy::TrustedProxies;
pub use require::{Access, RequireLayer, RequireService};
pub use resource::{METADATA_WELL_KNOWN, ResourceUri};
pub use response::{
    Inspect, MapResponse, Rejection, Responder, ResponderExt, ResponseBody, Rfc6750Responder, respond, server_error,
};
pub use source::{Extracted, TokenSource, TokenSources};

/// Plumbing for jwtgate's own crates. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::document::Document;
}
