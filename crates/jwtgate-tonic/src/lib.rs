//! gRPC helpers for jwtgate.
//!
//! Put `JwtAuthLayer` in front of a tonic server (`Server::builder().layer(...)`): requests without a valid
//! token get `Code::Unauthenticated` before any service runs. Inside a service method, read the claims with
//! [`RequestExt`], and check a [`Policy`] with [`authorize`] or the `#[require(...)]` attribute.
//!
//! ```
//! use jwtgate_core::Policy;
//! use jwtgate_tonic::{RequestExt, authorize};
//! use tonic::{Request, Response, Status};
//!
//! async fn delete(request: Request<()>) -> Result<Response<()>, Status> {
//!     authorize(request.extensions(), &Policy::role("admin"))?;
//!     let caller = request.principal().and_then(|p| p.subject().map(str::to_owned));
//!     Ok(Response::new(()))
//! }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::Arc;

use jwtgate_core::{Challenge, Error, Policy, Principal, Validated};
use jwtgate_tower::{Access, Authenticated, RequestHead};
use tonic::{Code, Status};

/// The DER leaf certificate the client presented on a tonic server's TLS connection, from the connection info
/// tonic puts in every request: the certificate source of a `CertificateBinding` for certificate-bound tokens
/// (RFC 8705).
///
/// ```no_run
/// use jwtgate_tower::CertificateBinding;
///
/// let binding = CertificateBinding::when_present().from_fn(jwtgate_tonic::peer_certificate);
/// ```
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub fn peer_certificate(head: &RequestHead<'_>) -> Option<Vec<u8>> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let info = head.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()?;
    info.peer_certs()?.first().map(|certificate| certificate.to_vec())
}

/// Checks the principal that `JwtAuthLayer` put in `extensions` against `policy`.
///
/// Refuses as the `JwtAuthLayer` before it answers (its [responder](jwtgate_tower::JwtAuthLayer::responder)),
/// by default:
/// - `Status::permission_denied` when the principal does not satisfy the policy;
/// - `Status::unauthenticated` when it would after a stronger or more recent sign-in (step-up, RFC 9470),
///   with the `www-authenticate` challenge, `error="insufficient_user_authentication"` and its
///   `acr_values` and `max_age`, in the status's metadata;
/// - `Status::unauthenticated` for an anonymous request in optional mode;
/// - `Status::internal` when no `JwtAuthLayer` ran (a server misconfiguration, logged at error level).
pub fn authorize(extensions: &http::Extensions, policy: &Policy) -> Result<Arc<Principal>, Status> {
    let access = Access::decide(policy, extensions);
    let Some((error, response)) = access.refusal(policy, &RequestHead::grpc(extensions)) else {
        return match access {
            Access::Granted(principal) => Ok(principal),
            _ => Err(Status::internal(Access::NO_LAYER)),
        };
    };
    // A responder that answers gRPC calls with a plain HTTP response still refuses, with the error's code.
    Err(Status::from_header_map(response.headers()).unwrap_or_else(|| status(&error)))
}

/// The `Status` that answers `error`, as the default responder's `grpc-status` does.
fn status(error: &Error) -> Status {
    let code = match error.challenge() {
        Challenge::InsufficientScope | Challenge::CsrfRejected => Code::PermissionDenied,
        Challenge::Unavailable => Code::Unavailable,
        _ => Code::Unauthenticated,
    };
    Status::new(code, error.description())
}

/// The claims and principal of an authenticated tonic request.
pub trait RequestExt {
    /// The caller's principal, if `JwtAuthLayer` authenticated the request.
    fn principal(&self) -> Option<&Arc<Principal>>;

    /// The validated token with claims of type `C`, if `JwtAuthLayer<C>` authenticated the request.
    fn validated<C: Send + Sync + 'static>(&self) -> Option<Arc<Validated<C>>>;
}

impl<T> RequestExt for tonic::Request<T> {
    fn principal(&self) -> Option<&Arc<Principal>> {
        self.extensions().get::<Authenticated>().map(Authenticated::principal)
    }

    fn validated<C: Send + Sync + 'static>(&self) -> Option<Arc<Validated<C>>> {
        self.extensions().get::<Authenticated>()?.validated()
    }
}

#[cfg(test)]
mod tests {
    use jwtgate_core::Authority;
    use jwtgate_tower::Anonymous;
    use tonic::Code;

    use super::*;

    #[test]
    fn authorize_answers_each_case_with_its_code() {
        let policy = Policy::role("admin");
        let mut extensions = http::Extensions::new();
        assert_eq!(authorize(&extensions, &policy).unwrap_err().code(), Code::Internal);
        extensions.insert(Anonymous);
        assert_eq!(authorize(&extensions, &policy).unwrap_err().code(), Code::Unauthenticated);
        extensions.insert(Authenticated::new(Principal::new(None)));
        let denied = authorize(&extensions, &policy).unwrap_err();
        assert_eq!(
            (denied.code(), denied.message()),
            (Code::PermissionDenied, "the token does not grant access to this resource")
        );
        extensions.insert(Authenticated::new(Principal::new(None).with(Authority::Role, "admin")));
        assert!(authorize(&extensions, &policy).is_ok());
    }
}
