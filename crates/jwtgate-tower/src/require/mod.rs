//! `RequireLayer`: refuses requests whose principal does not satisfy a [`Policy`].

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::RequireLayer;
pub use service::RequireService;

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use jwtgate_core::{Error, ErrorKind, Policy, Principal};

use crate::{Anonymous, ForbiddenHook, Rejection, RequestHead, Responder, Rfc6750Responder, server_error};

/// What a guard found for a request.
#[derive(Debug)]
pub enum Access {
    /// The principal satisfies the policy.
    Granted(Arc<Principal>),
    /// The request is refused with this response: 403 for a principal that fails the policy, 401 for an
    /// anonymous request, 500 when no `JwtAuthLayer` ran.
    Refused(Response<Bytes>),
}

/// The policy, its scopes and the responder that one `RequireLayer` shares with its services.
#[derive(Clone)]
pub(crate) struct Guarded {
    policy: Policy,
    responder: Arc<dyn Responder>,
}

impl Guarded {
    pub(crate) fn new(policy: Policy) -> Self {
        Self { policy, responder: Arc::new(Rfc6750Responder::default()) }
    }

    pub(crate) fn check(&self, head: &RequestHead<'_>) -> Access {
        check(&self.policy, &*self.responder, head)
    }
}

const NO_AUTH_LAYER: &str = "authorization is not configured for this route: no JwtAuthLayer runs before the guard";

/// Checks the request's principal against `policy`, and builds the refusal with `responder`.
///
/// An unauthenticated request is 401, never 403. A request that no `JwtAuthLayer` saw is a server
/// misconfiguration: 500, logged at error level.
///
/// A 403 goes through the [`ForbiddenHook`] that the `JwtAuthLayer` which admitted the request put in its
/// extensions, if it has one.
pub fn check(policy: &Policy, responder: &dyn Responder, head: &RequestHead<'_>) -> Access {
    let refuse = |kind: ErrorKind| {
        let error = Error::new(kind);
        let scopes = policy.required_scopes();
        let rejection = Rejection::new(&error, *head).with_scopes(&scopes);
        let response = responder.respond(&rejection);
        let mut response = match head.extensions().get::<ForbiddenHook>() {
            Some(hook) if kind == ErrorKind::Forbidden => hook.rewrite(&rejection, response),
            _ => response,
        };
        // Every refusal, whichever responder and hooks made it.
        crate::response::no_store(&mut response);
        Access::Refused(response)
    };
    match head.extensions().get::<Arc<Principal>>() {
        Some(principal) if policy.allows(principal) => Access::Granted(principal.clone()),
        // The subject is not logged: it is often an email address (see `SubjectInLogs`).
        Some(_) => {
            tracing::debug!(policy = %policy, "jwtgate: request forbidden");
            refuse(ErrorKind::Forbidden)
        }
        None if head.extensions().get::<Anonymous>().is_some() => refuse(ErrorKind::Missing),
        None => {
            tracing::error!(path = head.uri().path(), "jwtgate: a guard ran without a JwtAuthLayer before it");
            Access::Refused(server_error(NO_AUTH_LAYER))
        }
    }
}
