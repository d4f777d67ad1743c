//! axum extractors for jwtgate: [`Claims<C>`], `Option<Claims<C>>`, and the guard [`Require<G>`].
//!
//! Add `JwtAuthLayer<C>` to the router, then take the claims in any handler behind it:
//!
//! ```
//! use axum::{Router, routing::get};
//! use jwtgate_axum::Claims;
//! use jwtgate_core::{Algorithm, Key, KeySet, Secret, Validator};
//! use jwtgate_tower::JwtAuthLayer;
//!
//! #[derive(serde::Deserialize)]
//! struct MyClaims {
//!     #[serde(default)]
//!     roles: Vec<String>,
//! }
//!
//! async fn me(claims: Claims<MyClaims>) -> String {
//!     format!("{:?} has roles {:?}", claims.registered().subject(), claims.roles)
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let secret = Secret::new(vec![42; 32]);
//! // let secret = Secret::from_env("JWT_SECRET")?;
//! let keys = KeySet::new([Key::hmac(Algorithm::HS256, &secret)?])?;
//! let validator = Validator::builder(keys).issuer("https://auth.example").audience("api").build();
//! let app: Router = Router::new().route("/me", get(me)).layer(JwtAuthLayer::<MyClaims>::new(validator));
//! # Ok(())
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub mod openapi;

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum_core::body::Body;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use jwtgate_core::{Error, ErrorKind, Policy, Principal, RegisteredClaims, Validated};
use jwtgate_tower::{Access, Anonymous, Authenticated, Rejection, RequestHead, respond, server_error};

/// The validated claims of the request, put there by `JwtAuthLayer<C>`.
///
/// Derefs to `C`; [`registered`](Claims::registered) gives `sub`, `exp`, `jti` and the other registered
/// claims. Extraction fails with:
/// - 401 and `WWW-Authenticate: Bearer` when the layer let the request through anonymously (optional mode);
///   take `Option<Claims<C>>` in handlers that serve anonymous requests too;
/// - 500 when no `JwtAuthLayer<C>` ran for this route, or it was given another claims type: a programming
///   error, logged at error level.
pub struct Claims<C>(Arc<Validated<C>>);

impl<C> Claims<C> {
    /// The registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`).
    pub fn registered(&self) -> &RegisteredClaims {
        self.0.registered()
    }

    /// Everything the layer validated: claims, registered claims, algorithm and key id.
    pub fn validated(&self) -> &Validated<C> {
        &self.0
    }

    /// The shared validated token.
    pub fn into_inner(self) -> Arc<Validated<C>> {
        self.0
    }
}

impl<C> Deref for Claims<C> {
    type Target = C;

    fn deref(&self) -> &C {
        self.0.claims()
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Claims").field(&*self.0).finish()
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match lookup::<C>(parts)? {
            Some(claims) => Ok(claims),
            None => {
                let error = Error::new(ErrorKind::Missing);
                let response = respond(&Rejection::new(&error, RequestHead::from_parts(parts)));
                Err(ClaimsRejection { kind: RejectionKind::Anonymous, response })
            }
        }
    }
}

impl<S, C> OptionalFromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        lookup::<C>(parts)
    }
}

/// The claims, `None` for an anonymous request, or an error when the layer did not run.
#[allow(clippy::result_large_err, reason = "the rejection is the response to send, on the rare path")]
fn lookup<C: Send + Sync + 'static>(parts: &Parts) -> Result<Option<Claims<C>>, ClaimsRejection> {
    if let Some(validated) = parts.extensions.get::<Authenticated>().and_then(Authenticated::validated) {
        return Ok(Some(Claims(validated)));
    }
    if parts.extensions.get::<Anonymous>().is_some() {
        return Ok(None);
    }
    tracing::error!(
        claims = type_name::<C>(),
        path = parts.uri.path(),
        "jwtgate: Claims extractor used on a route without a JwtAuthLayer of the same claims type"
    );
    Err(ClaimsRejection { kind: RejectionKind::LayerMissing, response: server_error(LAYER_MISSING) })
}

/// Why [`Claims<C>`] could not be extracted.
#[derive(Debug)]
pub struct ClaimsRejection {
    kind: RejectionKind,
    response: http::Response<bytes::Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RejectionKind {
    Anonymous,
    LayerMissing,
}

impl ClaimsRejection {
    /// The status the rejection answers with: 401 (or what the layer's responder chose), or 500.
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }
}

impl fmt::Display for ClaimsRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            RejectionKind::Anonymous => "no bearer token was sent",
            RejectionKind::LayerMissing => LAYER_MISSING,
        })
    }
}

const LAYER_MISSING: &str =
    "authentication is not configured for this route: JwtAuthLayer is missing or uses another claims type";

impl std::error::Error for ClaimsRejection {}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        self.response.map(Body::from)
    }
}

/// A route's authorization requirement, declared once as a type and checked by [`Require<G>`].
///
/// Declare guards with [`guard!`](crate::guard), or implement the trait by hand.
pub trait Guard: Send + Sync + 'static {
    /// The policy the caller must satisfy.
    fn policy() -> &'static Policy;
}

/// Declares a [`Guard`] type from a [`Policy`] expression, built once.
///
/// ```
/// use jwtgate_axum::{Require, guard};
/// use jwtgate_core::Policy;
///
/// guard! {
///     /// Administrators, or writers of orders in the acme tenant.
///     pub struct OrdersAdmin = Policy::any([
///         Policy::role("admin"),
///         Policy::all([Policy::scope("orders:write"), Policy::claim_eq("tenant", "acme")]),
///     ]);
/// }
///
/// async fn delete_order(_: Require<OrdersAdmin>) {}
/// ```
#[macro_export]
macro_rules! guard {
    ($(#[$meta:meta])* $vis:vis struct $name:ident = $policy:expr;) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default)]
        $vis struct $name;

        impl $crate::Guard for $name {
            fn policy() -> &'static $crate::__private::Policy {
                static POLICY: ::std::sync::LazyLock<$crate::__private::Policy> = ::std::sync::LazyLock::new(|| $policy);
                &POLICY
            }
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use jwtgate_core::Policy;
}

/// An extractor that lets the handler run only when the caller satisfies `G`'s policy.
///
/// It reads the principal that `JwtAuthLayer` put in the request, never the body. Since axum runs
/// `FromRequestParts` extractors before the body extractor, a malformed body never hides the 403. It
/// refuses with 403 `insufficient_scope` (with `scope="..."` when the policy names scopes), 401 for an
/// anonymous request, and 500 when no `JwtAuthLayer` ran.
pub struct Require<G> {
    principal: Arc<Principal>,
    _guard: PhantomData<fn() -> G>,
}

impl<G> Require<G> {
    /// The caller, who satisfies `G`.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

impl<G> Clone for Require<G> {
    fn clone(&self) -> Self {
        Self { principal: self.principal.clone(), _guard: PhantomData }
    }
}

impl<G> fmt::Debug for Require<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Require").field("guard", &type_name::<G>()).field("principal", &self.principal).finish()
    }
}

impl<S, G> FromRequestParts<S> for Require<G>
where
    S: Send + Sync,
    G: Guard,
{
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let policy = G::policy();
        match Access::decide(policy, &parts.extensions).into_http(policy, &RequestHead::from_parts(parts)) {
            Ok(principal) => Ok(Self { principal, _guard: PhantomData }),
            Err(response) => Err(GuardRejection { response }),
        }
    }
}

/// Why [`Require<G>`] refused the request: the response (403, 401 or 500) is ready to send.
#[derive(Debug)]
pub struct GuardRejection {
    response: http::Response<bytes::Bytes>,
}

impl GuardRejection {
    /// The status the rejection answers with.
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }
}

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        self.response.map(Body::from)
    }
}
