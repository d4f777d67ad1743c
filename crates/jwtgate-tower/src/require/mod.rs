//! `RequireLayer`: refuses requests whose principal does not satisfy a [`Policy`].

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::RequireLayer;
pub use service::RequireService;

use std::sync::Arc;

use bytes::Bytes;
use http::{Extensions, Response};
use jwtgate_core::{Error, ErrorKind, Policy, Principal, StepUp, Verdict};

use crate::{Anonymous, Authenticated, Rejection, RequestHead, respond, server_error};

/// What a guard decides about a request, once for every kind of guard: [`RequireLayer`], the axum
/// extractors and attribute, and the tonic helpers. Each renders it its own way: an HTTP response
/// ([`Access::into_http`]), or a gRPC `Status`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Access {
    /// The principal satisfies the policy.
    Granted(Arc<Principal>),
    /// The principal does not satisfy the policy: 403 `insufficient_scope`.
    Forbidden,
    /// The principal would satisfy the policy after a stronger or more recent authentication (RFC 9470):
    /// 401 `insufficient_user_authentication`, with the `acr_values` and `max_age` it needs.
    StepUp(StepUp),
    /// No credentials: the request passed an optional `JwtAuthLayer` anonymously. 401, never 403.
    Anonymous,
    /// No `JwtAuthLayer` saw the request: the server is set up wrong. 500, logged at error level.
    NoLayer,
}

impl Access {
    /// The 500's description when no `JwtAuthLayer` saw the request (the details are logged, not sent).
    pub const NO_LAYER: &'static str =
        "authorization is not configured for this route: no JwtAuthLayer runs before the guard";

    /// Decides on the principal that a `JwtAuthLayer` put in `extensions`, and logs a refusal: a 403 at
    /// debug level (the policy, never the subject, which is often an email address; see
    /// [`SubjectInLogs`](crate::SubjectInLogs)), a missing layer at error level.
    pub fn decide(policy: &Policy, extensions: &Extensions) -> Self {
        match extensions.get::<Authenticated>().map(Authenticated::principal) {
            Some(principal) => match policy.verdict(principal) {
                Verdict::Allowed => Self::Granted(principal.clone()),
                Verdict::StepUp(step_up) => {
                    tracing::debug!(policy = %policy, "jwtgate: request needs a step-up authentication");
                    Self::StepUp(step_up)
                }
                _ => {
                    tracing::debug!(policy = %policy, "jwtgate: request forbidden");
                    Self::Forbidden
                }
            },
            None if extensions.get::<Anonymous>().is_some() => Self::Anonymous,
            None => {
                tracing::error!(policy = %policy, "jwtgate: a guard ran on a request that no JwtAuthLayer saw");
                Self::NoLayer
            }
        }
    }

    /// The error a refusal answers with: [`ErrorKind::Forbidden`],
    /// [`ErrorKind::InsufficientUserAuthentication`] or [`ErrorKind::Missing`]. `None` when access is granted,
    /// or when no layer ran (not the caller's error).
    pub fn error(&self) -> Option<Error> {
        match self {
            Self::Forbidden => Some(ErrorKind::Forbidden.into()),
            Self::StepUp(_) => Some(ErrorKind::InsufficientUserAuthentication.into()),
            Self::Anonymous => Some(ErrorKind::Missing.into()),
            Self::Granted(_) | Self::NoLayer => None,
        }
    }

    /// The principal, or the HTTP answer to a refusal (see [`refusal`](Self::refusal)); a 500 when no layer
    /// ran.
    #[allow(clippy::result_large_err, reason = "the refusal is sent as it is, and is the rare path")]
    pub fn into_http(self, policy: &Policy, head: &RequestHead<'_>) -> Result<Arc<Principal>, Response<Bytes>> {
        match self.refusal(policy, head) {
            Some((_, response)) => Err(response),
            None => match self {
                Self::Granted(principal) => Ok(principal),
                _ => Err(server_error(Self::NO_LAYER)),
            },
        }
    }

    /// The error of a refusal and its answer, from the responder of the `JwtAuthLayer` that saw the request
    /// (see [`respond`]): with `scope="..."` naming the policy's scopes on a 403, and `acr_values` and
    /// `max_age` on a step-up's 401. `None` when access is granted, or when no layer ran.
    pub fn refusal(&self, policy: &Policy, head: &RequestHead<'_>) -> Option<(Error, Response<Bytes>)> {
        let error = self.error()?;
        let scopes = policy.required_scopes();
        let rejection = Rejection::new(&error, *head).with_scopes(&scopes);
        let response = respond(&match self {
            Self::StepUp(step_up) => rejection.with_step_up(step_up),
            _ => rejection,
        });
        Some((error, response))
    }
}
