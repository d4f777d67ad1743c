//! Why a request was not authenticated, and how each reason maps to RFC 6750.

use std::fmt;

use crate::dpop::ProofError;

/// Why a request was not authenticated.
///
/// A program matches on [`Error::kind`]. The `Display` text is short, fixed and safe to show to the client:
/// it never contains the token, a key, or text from a dependency's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
}

/// The kinds of [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request carries no credentials, or credentials of another scheme (such as `Basic`).
    Missing,
    /// The request is malformed: for example, two `Authorization` headers (RFC 6750 §3.1 `invalid_request`).
    InvalidRequest,
    /// The token is longer than the configured limit; it was refused before any decoding.
    TooLarge,
    /// The token is not a compact JWS of three base64url parts with JSON header and claims.
    Malformed,
    /// The `alg` header names no supported algorithm (this includes `none`, in any case).
    UnsupportedAlgorithm,
    /// The `alg` header differs from the algorithm of the key the token selected.
    AlgorithmMismatch,
    /// No configured key matches the token: an unknown `kid`, or no `kid` and no single key for its `alg`.
    UnknownKey,
    /// The signature is missing or does not verify.
    InvalidSignature,
    /// The `crit` header names an extension this validator does not understand (RFC 7515 §4.1.11).
    UnsupportedCritical,
    /// The `typ` header is not one of the required types.
    InvalidType,
    /// A claim that is required is absent.
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// A registered claim has the wrong JSON type (including `null`), or the claims do not fit the expected
    /// type.
    InvalidClaim {
        /// The claim's name; `"claims"` when the custom claims type did not deserialize.
        claim: &'static str,
    },
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` has not been reached (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// The token's lifetime is empty: its `nbf` or its `iat` is later than its `exp` (IdentityModel's
    /// IDX12401). Leeway never makes such a token valid.
    EmptyLifetime,
    /// `iat` is older than the configured maximum age.
    TooOld,
    /// `iss` is not a configured issuer.
    InvalidIssuer,
    /// No value of `aud` is a configured audience.
    InvalidAudience,
    /// The token has been revoked.
    Revoked,
    /// The token is valid, but the caller's authorities do not satisfy the route's policy (HTTP 403,
    /// `insufficient_scope`).
    Forbidden,
    /// The denylist could not answer; the request could not be checked (HTTP 503).
    DenylistUnavailable,
    /// The token needs keys from a [`KeySource`](crate::KeySource) that has none to offer yet (its first
    /// fetch has not succeeded) or any more (they are too stale); the request could not be checked (HTTP 503).
    KeysUnavailable,
    /// Your `on_token_validated` hook refused a token that passed every check (HTTP 401, `invalid_token`): for
    /// example, its subject is not a known or active user.
    Refused,
    /// Your `on_token_validated` hook could not decide, for example because its database did not answer; the
    /// request could not be checked (HTTP 503).
    Unavailable,
    /// The token came from a cookie, with an unsafe method (`POST`, `PUT`, `PATCH`, `DELETE`...), and the
    /// request did not prove it comes from your own pages (HTTP 403, no challenge): a cross-site request
    /// forgery is refused before the token is even read.
    CsrfRejected,
    /// The token is valid, but the route's policy asks for a stronger or a more recent authentication of the
    /// user than the token records: an `acr` it does not carry, or an `auth_time` that is too old (HTTP 401,
    /// `insufficient_user_authentication`, RFC 9470). The client sends the user back to the authorization
    /// server with `acr_values` and `max_age`.
    InsufficientUserAuthentication,
    /// The DPoP proof (RFC 9449) is missing, sent twice, or fails a check, which `reason` names; or it was
    /// used before (HTTP 401, `DPoP error="invalid_dpop_proof"`).
    InvalidProof {
        /// What is wrong with the proof.
        reason: ProofError,
    },
    /// The DPoP proof has no nonce, or one the server no longer accepts (HTTP 401, `DPoP
    /// error="use_dpop_nonce"`, with a fresh nonce in `DPoP-Nonce`; RFC 9449 §8).
    UseDpopNonce,
    /// The replay store could not tell whether the DPoP proof is new: it is full, or it did not answer. The
    /// request could not be checked (HTTP 503); a proof is never accepted unchecked.
    ReplayUnavailable,
    /// The token's `cnf.jkt` is missing, or is not the thumbprint of the DPoP proof's key (RFC 9449 §7.1;
    /// HTTP 401, `invalid_token`).
    UnboundToken,
    /// A sender-constrained token (one with `cnf`) was presented as a bearer token, without the proof of
    /// possession it is bound to (RFC 9449 §7.2; HTTP 401, `invalid_token`).
    BoundTokenAsBearer,
    /// The resource accepts DPoP-bound tokens only, and the request presented a bearer token (HTTP 401,
    /// `DPoP error="invalid_token"`).
    DpopRequired,
    /// The token's `cnf` `x5t#S256` is not the hash of the request's TLS client certificate, or there is no
    /// certificate; or the resource requires a certificate-bound token and the token is not one (RFC 8705 §3;
    /// HTTP 401, `invalid_token`).
    CertificateMismatch,
    /// The authorization server's introspection endpoint says the token is not active (RFC 7662 §2.2): it is
    /// unknown, expired, revoked, or not meant for this resource (HTTP 401, `invalid_token`).
    Inactive,
    /// The introspection endpoint could not be asked, or gave no usable answer: it refused the connection,
    /// timed out, answered with a status other than 200, or with a body that is not a JSON object. That says
    /// nothing about the token, which is neither accepted nor refused (HTTP 503, try again).
    IntrospectionUnavailable,
    /// An encrypted token (JWE) could not be decrypted and verified: its form, its header (an unsupported
    /// algorithm, `RSA1_5`, `zip`, `crit`), its key, its content key, its tag, the token inside (not a signed
    /// token, or a JWE in a JWE), or that token's signature or key. One kind and one description for all of
    /// them, so that no answer tells which step failed (HTTP 401, `invalid_token`). An encrypted token sent to
    /// a validator without decryption keys is refused the same way.
    Undecryptable,
    /// The validator requires encrypted tokens, and the token is a plain signed one (HTTP 401,
    /// `invalid_token`).
    NotEncrypted,
}

/// The RFC 6750 §3 challenge that answers an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Challenge {
    /// 401 with `WWW-Authenticate: Bearer` and no `error` attribute: the request had no credentials.
    NoCredentials,
    /// 400 with `error="invalid_request"`.
    InvalidRequest,
    /// 401 with `error="invalid_token"`.
    InvalidToken,
    /// 403 with `error="insufficient_scope"`.
    InsufficientScope,
    /// 503 with `Retry-After`: a store the decision depends on could not answer.
    Unavailable,
    /// 403 without a `WWW-Authenticate` challenge: the request's origin is not allowed to use the session
    /// cookie (body `error`: `csrf_rejected`).
    CsrfRejected,
    /// 401 with `error="insufficient_user_authentication"` (RFC 9470 §3), and the `acr_values` and `max_age`
    /// that the route's policy asks for.
    InsufficientUserAuthentication,
    /// 401 with `DPoP error="invalid_dpop_proof"` (RFC 9449 §7.1).
    InvalidDpopProof,
    /// 401 with `DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` header (RFC 9449 §8).
    UseDpopNonce,
}

impl Challenge {
    /// The `error` attribute of the challenge, if it has one.
    pub const fn error_code(self) -> Option<&'static str> {
        match self {
            Self::NoCredentials => None,
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
            Self::Unavailable => Some("temporarily_unavailable"),
            Self::CsrfRejected => Some("csrf_rejected"),
            Self::InsufficientUserAuthentication => Some("insufficient_user_authentication"),
            Self::InvalidDpopProof => Some("invalid_dpop_proof"),
            Self::UseDpopNonce => Some("use_dpop_nonce"),
        }
    }
}

impl Error {
    /// An error of the given kind.
    pub const fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    /// What went wrong.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The RFC 6750 challenge that answers this error.
    pub const fn challenge(&self) -> Challenge {
        match self.kind {
            ErrorKind::Missing => Challenge::NoCredentials,
            ErrorKind::InvalidRequest => Challenge::InvalidRequest,
            ErrorKind::DenylistUnavailable
            | ErrorKind::KeysUnavailable
            | ErrorKind::Unavailable
            | ErrorKind::ReplayUnavailable
            | ErrorKind::IntrospectionUnavailable => Challenge::Unavailable,
            ErrorKind::Forbidden => Challenge::InsufficientScope,
            ErrorKind::CsrfRejected => Challenge::CsrfRejected,
            ErrorKind::InsufficientUserAuthentication => Challenge::InsufficientUserAuthentication,
            ErrorKind::InvalidProof { .. } => Challenge::InvalidDpopProof,
            ErrorKind::UseDpopNonce => Challenge::UseDpopNonce,
            _ => Challenge::InvalidToken,
        }
    }

    /// A sentence for the `error_description` attribute and the response body. It says what was wrong
    /// without repeating any part of the token or of a key.
    pub const fn description(&self) -> &'static str {
        match self.kind {
            ErrorKind::Missing => "no bearer token was sent",
            ErrorKind::InvalidRequest => "the request carries its credentials more than once",
            ErrorKind::TooLarge => "the token is too large",
            ErrorKind::Malformed => "the token is malformed",
            ErrorKind::UnsupportedAlgorithm => "the token's algorithm is not supported",
            ErrorKind::AlgorithmMismatch => "the token's algorithm does not match its key",
            ErrorKind::UnknownKey => "the token's signing key is unknown",
            ErrorKind::InvalidSignature => "the token's signature is invalid",
            ErrorKind::UnsupportedCritical => "the token has a critical header that is not supported",
            ErrorKind::InvalidType => "the token's type is not accepted",
            ErrorKind::MissingClaim { claim } => missing_claim(claim),
            ErrorKind::InvalidClaim { claim } => invalid_claim(claim),
            ErrorKind::Expired => "the token has expired",
            ErrorKind::NotYetValid => "the token is not valid yet",
            ErrorKind::IssuedInFuture => "the token was issued in the future",
            ErrorKind::EmptyLifetime => "the token expires before it becomes valid",
            ErrorKind::TooOld => "the token is too old",
            ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
            ErrorKind::InvalidAudience => "the token's audience is not accepted",
            ErrorKind::Revoked => "the token has been revoked",
            ErrorKind::Forbidden => "the token does not grant access to this resource",
            ErrorKind::DenylistUnavailable => "the revocation list is unavailable; try again later",
            ErrorKind::KeysUnavailable => "the signing keys are unavailable; try again later",
            ErrorKind::Refused => "the token was refused",
            ErrorKind::Unavailable => "the request could not be checked; try again later",
            ErrorKind::CsrfRejected => "the request's origin may not use the session cookie",
            ErrorKind::InsufficientUserAuthentication => {
                "the resource needs a stronger or more recent authentication of the user"
            }
            ErrorKind::InvalidProof { reason } => reason.description(),
            ErrorKind::UseDpopNonce => "the DPoP proof must carry a nonce this server issued",
            ErrorKind::ReplayUnavailable => "the DPoP proof could not be checked for replay; try again later",
            ErrorKind::UnboundToken => "the token is not bound to the DPoP proof's key",
            ErrorKind::BoundTokenAsBearer => "the token is sender-constrained and cannot be used as a bearer token",
            ErrorKind::DpopRequired => "the resource accepts DPoP-bound tokens only",
            ErrorKind::CertificateMismatch => "the token is not bound to the client certificate",
            ErrorKind::Inactive => "the token is not active",
            ErrorKind::IntrospectionUnavailable => "the token could not be introspected; try again later",
            ErrorKind::Undecryptable => "the encrypted token could not be decrypted and verified",
            ErrorKind::NotEncrypted => "the token must be encrypted",
        }
    }
}

const fn missing_claim(claim: &'static str) -> &'static str {
    match claim.as_bytes() {
        b"exp" => "the token has no exp claim",
        b"iss" => "the token has no iss claim",
        b"aud" => "the token has no aud claim",
        b"iat" => "the token has no iat claim",
        b"jti" => "the token has no jti claim",
        _ => "the token lacks a required claim",
    }
}

const fn invalid_claim(claim: &'static str) -> &'static str {
    match claim.as_bytes() {
        b"exp" => "the token's exp claim is not a number",
        b"nbf" => "the token's nbf claim is not a number",
        b"iat" => "the token's iat claim is not a number",
        b"iss" => "the token's iss claim is not a string",
        b"sub" => "the token's sub claim is not a string",
        b"jti" => "the token's jti claim is not a string",
        b"aud" => "the token's aud claim is not a string or an array of strings",
        b"cnf" => "the token's cnf claim is not an object of strings",
        _ => "the token's claims do not have the expected form",
    }
}

/// Writes [`ErrorKind::name`] and [`ErrorKind::NAMES`] from one table, so that the two cannot disagree.
macro_rules! kind_names {
    ($($kind:ident => $name:literal,)*) => {
        impl ErrorKind {
            /// A short, fixed snake_case name for the kind, such as `expired` or `invalid_signature`: for
            /// metric labels and log fields, where the set of values must stay small. A claim's name is not
            /// part of it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$kind { .. } => $name,)*
                }
            }

            /// The [`name`](Self::name) of every kind, in declaration order: for dashboards and for metrics
            /// registered ahead of time. A kind added later adds a name.
            pub const NAMES: &'static [&'static str] = &[$($name),*];
        }
    };
}

kind_names! {
    Missing => "missing",
    InvalidRequest => "invalid_request",
    TooLarge => "too_large",
    Malformed => "malformed",
    UnsupportedAlgorithm => "unsupported_algorithm",
    AlgorithmMismatch => "algorithm_mismatch",
    UnknownKey => "unknown_key",
    InvalidSignature => "invalid_signature",
    UnsupportedCritical => "unsupported_critical",
    InvalidType => "invalid_type",
    MissingClaim => "missing_claim",
    InvalidClaim => "invalid_claim",
    Expired => "expired",
    NotYetValid => "not_yet_valid",
    IssuedInFuture => "issued_in_future",
    EmptyLifetime => "empty_lifetime",
    TooOld => "too_old",
    InvalidIssuer => "invalid_issuer",
    InvalidAudience => "invalid_audience",
    Revoked => "revoked",
    Forbidden => "forbidden",
    DenylistUnavailable => "denylist_unavailable",
    KeysUnavailable => "keys_unavailable",
    Refused => "refused",
    Unavailable => "unavailable",
    CsrfRejected => "csrf_rejected",
    InsufficientUserAuthentication => "insufficient_user_authentication",
    InvalidProof => "invalid_dpop_proof",
    UseDpopNonce => "use_dpop_nonce",
    ReplayUnavailable => "replay_unavailable",
    UnboundToken => "unbound_token",
    BoundTokenAsBearer => "bound_token_as_bearer",
    DpopRequired => "dpop_required",
    CertificateMismatch => "certificate_mismatch",
    Inactive => "inactive",
    IntrospectionUnavailable => "introspection_unavailable",
    Undecryptable => "undecryptable",
    NotEncrypted => "not_encrypted",
}

/// jwtgate could not be set up: a key, a validator, a remote key set, a published key set, or an issuer of
/// your own. The message names the problem (and the file, variable or key id involved); it never holds key
/// material, a token, or a response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    message: String,
}

/// The kinds of [`ConfigError`]: what could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A key or a key set: bad PEM or JWK, an HMAC secret shorter than its hash, an algorithm that does not
    /// fit the key, an empty set, two keys with one `kid`.
    Key,
    /// A validator whose settings do not hold together, such as two tenants with the same issuer.
    Validator,
    /// A remote key set: a URL jwtgate will not fetch from, no Tokio runtime, or a first fetch that failed
    /// (with `build_eager`).
    RemoteKeys,
    /// A key set to publish: empty, or a key already published.
    Publish,
    /// An issuer of your own, or a token it could not issue: its settings, its signing keys, or the claims
    /// given to it.
    Issuer,
    /// A protected resource's identifier (RFC 8707, RFC 9728): not an absolute `http` or `https` URI, or one
    /// with credentials or a fragment.
    Resource,
    /// Sender-constrained tokens (DPoP, RFC 9449; certificate-bound tokens, RFC 8705): an origin that is not
    /// `scheme://host[:port]`, a proof algorithm that is not asymmetric, or a nonce secret that is too short.
    SenderConstraint,
    /// A trusted proxy that is not an IP address or network.
    Proxy,
    /// Token introspection (RFC 7662): an endpoint URL jwtgate will not call, client credentials that cannot
    /// be sent, no randomness for the cache's key.
    Introspection,
}

impl ConfigError {
    /// An error of `kind`, saying `message`.
    pub fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// What could not be set up.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// A [`ConfigErrorKind::Key`] error.
    pub(crate) fn key(message: impl Into<String>) -> Self {
        Self::new(ConfigErrorKind::Key, message)
    }

    /// Prefixes the message with where the problem is, such as a file name or a key id.
    pub(crate) fn context(self, at: &str) -> Self {
        Self { kind: self.kind, message: format!("{at}: {}", self.message) }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_credentials_has_no_error_code() {
        assert_eq!(Error::new(ErrorKind::Missing).challenge().error_code(), None);
        assert_eq!(Error::new(ErrorKind::Expired).challenge().error_code(), Some("invalid_token"));
        assert_eq!(Error::new(ErrorKind::InvalidRequest).challenge(), Challenge::InvalidRequest);
        assert_eq!(Error::new(ErrorKind::DenylistUnavailable).challenge(), Challenge::Unavailable);
        assert_eq!(Error::new(ErrorKind::KeysUnavailable).challenge(), Challenge::Unavailable);
        let step_up = Error::new(ErrorKind::InsufficientUserAuthentication).challenge();
        assert_eq!(step_up, Challenge::InsufficientUserAuthentication);
        assert_eq!(step_up.error_code(), Some("insufficient_user_authentication"));
    }

    #[test]
    fn kind_names_are_distinct_snake_case() {
        let kinds = [
            ErrorKind::Missing,
            ErrorKind::InvalidRequest,
            ErrorKind::TooLarge,
            ErrorKind::Malformed,
            ErrorKind::UnsupportedAlgorithm,
            ErrorKind::AlgorithmMismatch,
            ErrorKind::UnknownKey,
            ErrorKind::InvalidSignature,
            ErrorKind::UnsupportedCritical,
            ErrorKind::InvalidType,
            ErrorKind::MissingClaim { claim: "exp" },
            ErrorKind::InvalidClaim { claim: "aud" },
            ErrorKind::Expired,
            ErrorKind::NotYetValid,
            ErrorKind::IssuedInFuture,
            ErrorKind::EmptyLifetime,
            ErrorKind::TooOld,
            ErrorKind::InvalidIssuer,
            ErrorKind::InvalidAudience,
            ErrorKind::Revoked,
            ErrorKind::Forbidden,
            ErrorKind::DenylistUnavailable,
            ErrorKind::KeysUnavailable,
            ErrorKind::Refused,
            ErrorKind::Unavailable,
            ErrorKind::CsrfRejected,
            ErrorKind::InsufficientUserAuthentication,
            ErrorKind::InvalidProof { reason: ProofError::Signature },
            ErrorKind::UseDpopNonce,
            ErrorKind::ReplayUnavailable,
            ErrorKind::UnboundToken,
            ErrorKind::BoundTokenAsBearer,
            ErrorKind::DpopRequired,
            ErrorKind::CertificateMismatch,
            ErrorKind::Inactive,
            ErrorKind::IntrospectionUnavailable,
            ErrorKind::Undecryptable,
            ErrorKind::NotEncrypted,
        ];
        let names: std::collections::HashSet<_> = kinds.iter().map(|kind| kind.name()).collect();
        assert_eq!(names.len(), kinds.len());
        assert_eq!(ErrorKind::NAMES, kinds.map(ErrorKind::name));
        assert!(names.iter().all(|name| name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        assert_eq!(ErrorKind::MissingClaim { claim: "jti" }.name(), "missing_claim");
    }

    #[test]
    fn claim_descriptions_name_the_claim() {
        let err = Error::new(ErrorKind::InvalidClaim { claim: "aud" });
        assert!(err.to_string().contains("aud"));
        let err = Error::new(ErrorKind::MissingClaim { claim: "exp" });
        assert_eq!(err.to_string(), "the token has no exp claim");
    }
}
