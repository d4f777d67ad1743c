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

#![cfg_attr(docsrs, feature(doc_cfg))]

// The quick start and the guards. Everything else is in the modules below, named for what it is.
pub use jwtgate_core::{
    Algorithm, Authority, ConfigError, Error, ErrorKind, Key, KeySet, Policy, Principal, Secret, Validated, Validator,
};
pub use jwtgate_tower::{JwtAuthLayer, RequireLayer};

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use jwtgate_axum::{Claims, Guard, Require, guard};
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use jwtgate_macros::require;

#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub use jwtgate_axum::openapi;

/// Encrypted tokens (JWE): the keys that decrypt them (`ValidatorBuilder::decryption_keys`) and the keys that
/// encrypt them for a recipient (`TokenIssuerBuilder::encrypt_for`). See the encryption guide.
pub mod jwe {
    pub use jwtgate_core::jwe::{
        ContentEncryption, DecryptionKey, DecryptionKeys, EncryptionKey, KeyManagement, UnsupportedJweAlgorithm,
    };
}

/// Keys: HMAC secrets, public keys from PEM and JWK Sets, signing keys, and the sources that combine fixed
/// keys with remote ones.
pub mod keys {
    pub use jwtgate_core::{
        Algorithm, AlgorithmMapping, Key, KeySet, KeySource, KeyType, KeysUnavailable, MIN_HMAC_SECRET_BYTES,
        PendingRefresh, PublicJwk, RefreshOutcome, Secret, SigningKey, SkippedKey, TrustedKeys, UnsupportedAlgorithm,
    };
}

/// Validation: the [`Validator`], its settings, and what it answers.
pub mod validation {
    pub use jwtgate_core::{
        Attempt, ConfigError, ConfigErrorKind, Confirmation, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, ExpectedAudience,
        RegisteredClaims, Validated, Validator, ValidatorBuilder, certificate_thumbprint,
    };
}

/// Guards: who the caller is ([`Principal`]), how claims map to authorities, the policies
/// that routes require, and the decision they make.
pub mod guards {
    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub use jwtgate_axum::{Guard, GuardRejection, Require};
    pub use jwtgate_core::{Authority, AuthorityMapping, ClaimSet, Policy, Principal, StepUp, Verdict};
    pub use jwtgate_tower::Access;
    pub use jwtgate_tower::require::{RequireLayer, RequireService, ResponseFuture};
}

/// The axum extractors: the claims, and a guard checked before the handler runs.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract {
    pub use jwtgate_axum::{Claims, ClaimsRejection, GuardRejection, Require};
}

/// The protected resource (RFC 8707, RFC 9728): its identifier in canonical form, and its metadata, the
/// document that tells clients where to get a token for it.
pub mod resource {
    pub use jwtgate_tower::{
        BearerMethod, DEFAULT_METADATA_MAX_AGE, METADATA_WELL_KNOWN, MetadataService, ProtectedResourceMetadata,
        ResourceUri,
    };
}

/// DPoP (RFC 9449): sender-constrained tokens that the layer accepts under the `DPoP` scheme
/// ([`JwtAuthLayer::dpop`](crate::JwtAuthLayer::dpop) with a [`Dpop`](dpop::Dpop)), their proofs, JWK
/// thumbprints, replay stores and nonces. The Redis replay store is in `redis`.
pub mod dpop {
    pub use jwtgate_core::{
        CheckedProof, DEFAULT_NONCE_PERIOD, DEFAULT_PROOF_ALGORITHMS, DEFAULT_PROOF_KEYS, DEFAULT_REPLAY_CAPACITY,
        DEFAULT_REPLAY_QUOTA_PER_KEY, DpopNonces, MAX_PROOF_BYTES, MemoryReplayStore, PendingReplayCheck, ProofError,
        ProofKeys, ProofRequirements, ProofUse, ReplayCheck, ReplayError, ReplayErrorKind, ReplayStore, check_proof,
        jwk_thumbprint, normalize_htu,
    };
    pub use jwtgate_tower::{DEFAULT_PROOF_WINDOW, DPOP_NONCE, Dpop, DpopMode, REPLAY_MARGIN};
}

/// Opaque tokens (RFC 7662 introspection): [`JwtAuthLayer::introspected`](crate::JwtAuthLayer::introspected)
/// or [`JwtAuthLayer::introspection`](crate::JwtAuthLayer::introspection) with an `Introspector` (feature
/// `introspection`), which calls the authorization server's endpoint and caches its answers; or an
/// [`Introspect`](introspection::Introspect) of your own.
pub mod introspection {
    pub use jwtgate_core::{
        ActiveAnswer, AnswerError, AnswerRules, Introspect, Introspection, MAX_ANSWER_BYTES, PendingIntrospection,
    };
    #[cfg(feature = "introspection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
    pub use jwtgate_introspection::{
        DEFAULT_CACHE_TTL, DEFAULT_CAPACITY, DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_NEGATIVE_CAPACITY,
        DEFAULT_NEGATIVE_TTL, DEFAULT_TIMEOUT, Introspector, IntrospectorBuilder,
    };
}

/// Certificate-bound access tokens (RFC 8705 §3): [`JwtAuthLayer::certificate_binding`](crate::JwtAuthLayer::certificate_binding)
/// with a [`CertificateBinding`](mtls::CertificateBinding), and the [`ClientCertificate`](mtls::ClientCertificate)
/// a TLS server puts in each request.
pub mod mtls {
    pub use jwtgate_tower::{CertificateBinding, CertificateMode, ClientCertificate};
}

/// The proxies in front of the service whose `Forwarded`, `X-Forwarded-*` and client-certificate headers are
/// believed.
pub mod proxy {
    pub use jwtgate_tower::TrustedProxies;
}

/// Revocation: the [`Denylist`](revocation::Denylist) the layer asks about every valid token, and the
/// in-memory one. The Redis ones are in `redis`.
pub mod revocation {
    pub use jwtgate_core::{
        DEFAULT_DENYLIST_CAPACITY, Denylist, DenylistError, Lookup, MemoryDenylist, NoDenylist, PendingLookup,
        PendingRevocation, TokenStatus,
    };
}

/// Where the layer finds a token: the `Authorization` header, a cookie (with its CSRF defence), another
/// header, a query parameter, or a function.
pub mod sources {
    pub use jwtgate_tower::{Csrf, Extracted, RequestHead, TokenSource, TokenSources};
}

/// The answers to refused requests: RFC 6750 for HTTP, `grpc-status` for gRPC, and the wrappers that
/// observe or rewrite them.
pub mod responses {
    pub use jwtgate_core::{Challenge, Error, ErrorKind};
    pub use jwtgate_tower::{
        Inspect, MapResponse, Rejection, Responder, ResponderExt, Rfc6750Responder, respond, server_error,
    };
}

/// The layer's service and the types around it: its future and body, the hook's argument, what it hands on
/// with a request (authenticated, or anonymous), and the cache of validated tokens.
pub mod service {
    pub use jwtgate_core::ValidatedCache;
    pub use jwtgate_tower::{
        Anonymous, Authenticated, JwtAuthLayer, JwtAuthService, ResponseBody, ResponseFuture, SubjectInLogs,
        TokenValidated,
    };
}

/// The names of the metrics jwtgate records with the `metrics` feature: the layer's, and with `jwks` and
/// `redis`, those of remote key sets and of the replicated denylist.
pub mod metric_names {
    #[cfg(feature = "introspection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
    pub use jwtgate_introspection::metric_names::*;
    #[cfg(feature = "jwks")]
    #[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
    pub use jwtgate_jwks::metric_names::*;
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub use jwtgate_redis::metric_names::*;
    pub use jwtgate_tower::metric_names::*;
}

/// What jwtgate's own crates, tests and benchmarks share: not part of the public API, and free to change.
#[doc(hidden)]
pub mod __private {
    pub use jwtgate_core::__private::*;
}

/// The guides of the repository's `docs/` directory, on docs.rs. Their Rust code is compiled and run by
/// jwtgate's test suite (the `jwtgate-tests` crate, which has their dependencies); here they are
/// documentation only, left out of this crate's doctests.
#[cfg(all(doc, not(doctest)))]
pub mod guides {
    // The guides link to each other as `keys.md` and the like, which works on GitHub. These definitions come
    // before each guide's own, so they win: on docs.rs, each such link goes to the guide's module.
    macro_rules! guide_links {
        () => {
            concat!(
                "[guide.md]: crate::guides::guide\n",
                "[keys.md]: crate::guides::keys\n",
                "[guards.md]: crate::guides::guards\n",
                "[errors.md]: crate::guides::errors\n",
                "[events.md]: crate::guides::events\n",
                "[cache.md]: crate::guides::cache\n",
                "[revocation.md]: crate::guides::revocation\n",
                "[sessions.md]: crate::guides::sessions\n",
                "[observability.md]: crate::guides::observability\n",
                "[recipes.md]: crate::guides::recipes\n",
                "[resource.md]: crate::guides::resource\n",
                "[mcp.md]: crate::guides::mcp\n",
                "[dpop.md]: crate::guides::dpop\n",
                "[mtls.md]: crate::guides::mtls\n",
                "[introspection.md]: crate::guides::introspection\n",
                "[encryption.md]: crate::guides::encryption\n",
                "[deployment.md]: crate::guides::deployment\n",
                "[migration.md]: crate::guides::migration\n",
                "[security.md]: crate::guides::security\n",
                "[benchmarks.md]: crate::guides::benchmarks\n",
            )
        };
    }

    /// From zero to a secured axum API and a secured tonic service.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/guide.md")]
    pub mod guide {}

    /// Keys: HMAC secrets, PEM, JWK Sets, remote key sets and discovery, several issuers, publishing your own.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/keys.md")]
    pub mod keys {}

    /// Guards: roles, scopes and permissions, the presets for identity providers, and the three styles.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/guards.md")]
    pub mod guards {}

    /// Securing an MCP server on rmcp: metadata, audience, a policy per tool, sessions bound to their
    /// principal, and where each requirement of the MCP authorization specification is met.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/mcp.md")]
    pub mod mcp {}

    /// Sender-constrained tokens with DPoP (RFC 9449): the layer's modes, proofs, replay, nonces, proxies,
    /// and providers.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/dpop.md")]
    pub mod dpop {}

    /// Certificate-bound tokens (RFC 8705): the modes, and the client certificate from rustls, tonic or a
    /// trusted proxy.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/mtls.md")]
    pub mod mtls {}

    /// Running jwtgate across a fleet: which store on which Redis, durability, Redis settings, failures.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/deployment.md")]
    pub mod deployment {}

    /// Opaque tokens (RFC 7662): the introspector, its cache and revocation, JWTs beside them, providers,
    /// and migrating from Spring and Duende.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/introspection.md")]
    pub mod introspection {}

    /// Encrypted tokens (JWE): when encryption is worth it, decrypting, encrypting the tokens you issue, key
    /// rotation, and ASP.NET's `TokenDecryptionKeys`.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/encryption.md")]
    pub mod encryption {}

    /// The protected resource: its metadata (RFC 9728), its audience (RFC 8707), and the challenges that
    /// name it.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/resource.md")]
    pub mod resource {}

    /// Every refusal: its status, challenge and body, and why signatures are checked with aws-lc-rs.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/errors.md")]
    pub mod errors {}

    /// ASP.NET's JwtBearerEvents in jwtgate's terms: the on_token_validated hook and the responder.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/events.md")]
    pub mod events {}

    /// The cache of validated tokens: what it keeps, for how long, and what it costs.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/cache.md")]
    pub mod cache {}

    /// Revocation: the denylists in memory, in Redis, and replicated to every instance.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/revocation.md")]
    pub mod revocation {}

    /// Being your own issuer: access tokens, refresh rotation with reuse detection, cookies and CSRF.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/sessions.md")]
    pub mod sessions {}

    /// Logs, the authenticate span, and metrics.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/observability.md")]
    pub mod observability {}

    /// Recipes for Keycloak, Auth0, Cognito, Entra ID and your own issuer.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/recipes.md")]
    pub mod recipes {}

    /// From jwt-authorizer, ASP.NET Core and Spring Security.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/migration.md")]
    pub mod migration {}

    /// The audits: RFC 8725, the OWASP JWT cheat sheet, and the machinery around validation.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/security.md")]
    pub mod security {}

    /// The benchmarks, their figures, and the commands that reproduce them.
    #[doc = ""]
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/benchmarks.md")]
    pub mod benchmarks {}
}

/// The Redis denylists, for fleets of servers; with `session`, the Redis refresh-token store.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis {
    pub use jwtgate_redis::*;
}

/// Remote keys: an identity provider's JWK Set by URL or OpenID Connect discovery, refreshed in the
/// background; and the publication of your own keys.
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
pub mod jwks {
    pub use jwtgate_jwks::*;
}

/// Being your own issuer: access tokens, refresh-token rotation with reuse detection.
#[cfg(feature = "session")]
#[cfg_attr(docsrs, doc(cfg(feature = "session")))]
pub mod session {
    pub use jwtgate_session::*;
}

/// MCP servers: a policy per tool checked before the server runs, and sessions bound to their principal.
#[cfg(feature = "mcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "mcp")))]
pub mod mcp {
    pub use jwtgate_mcp::*;
}

/// gRPC helpers: [`authorize`](tonic::authorize) a policy and read claims from a tonic request.
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod tonic {
    pub use jwtgate_tonic::*;
}
