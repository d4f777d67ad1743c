//! `JwtAuthLayer`: authenticates every request with a JWT before the inner service sees it.

mod events;
mod future;
mod layer;
mod observe;
mod service;

pub use events::{ForbiddenHook, TokenValidated};
pub use future::ResponseFuture;
pub use layer::JwtAuthLayer;
pub use observe::SubjectInLogs;
pub use service::JwtAuthService;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use jwtgate_core::{
    Denylist, Error, ErrorKind, PendingRefresh, RefreshOutcome, Validated, ValidatedCache, Validation, Validator,
    unix_now,
};
use serde::de::DeserializeOwned;

use crate::source::Extracted;
use crate::{Rejection, RequestHead, Responder, Rfc6750Responder, TokenSource, TokenSources};
use events::LayerResponder;

/// The configuration every service of one layer shares.
#[derive(Clone)]
struct Shared {
    validator: Validator,
    sources: TokenSources,
    /// The `on_token_received` hook: asked before the sources, and decides when it finds a token.
    token_received: Option<TokenSource>,
    optional: bool,
    denylist: Option<Arc<dyn Denylist>>,
    require_jti: bool,
    fail_open: bool,
    responder: LayerResponder,
    subject_in_logs: SubjectInLogs,
}

impl Shared {
    fn new(validator: Validator) -> Self {
        Self {
            validator,
            sources: TokenSources::default(),
            token_received: None,
            optional: false,
            denylist: None,
            require_jti: false,
            fail_open: false,
            responder: LayerResponder::new(Arc::new(Rfc6750Responder::default())),
            subject_in_logs: SubjectInLogs::default(),
        }
    }

    /// Finds the request's token, and validates it unless `cache` holds it.
    fn authenticate<C: DeserializeOwned>(
        &self,
        head: &RequestHead<'_>,
        cache: Option<&ValidatedCache<C>>,
    ) -> Authentication<C> {
        let extracted = match self.token_received.as_ref().map(|hook| hook.extract(head)) {
            None | Some(Extracted::Absent) => self.sources.extract(head),
            Some(found) => found,
        };
        match extracted {
            Extracted::Absent if self.optional => Authentication::Anonymous,
            Extracted::Absent => Authentication::Refused(ErrorKind::Missing.into()),
            // Credentials of another scheme (say `Basic`, for another layer) are no bearer token at all.
            Extracted::Invalid(error) if self.optional && error.kind() == ErrorKind::Missing => {
                Authentication::Anonymous
            }
            Extracted::Invalid(error) => {
                log_failure(&error, None);
                Authentication::Refused(error)
            }
            Extracted::Token(token) => {
                if let Some(cache) = cache {
                    let hit = cache.get(&token, unix_now());
                    observe::cache_lookup(hit.is_some());
                    if let Some(hit) = hit {
                        // Clones of a layer share its cache, and a clone may have other rules: they apply to
                        // a hit as to a fresh validation.
                        return self.admit(hit, &token);
                    }
                }
                match observe::timed(|| self.validator.start::<C>(&token), |v| matches!(v, Validation::Done(_))) {
                    Validation::Done(result) => self.checked(result, &token, cache),
                    // Rare: the token names a `kid` the remote keys lack, or there are no remote keys yet (a
                    // cold start), and they are being fetched. Only then is the token copied, to be checked
                    // again once the fetch is over.
                    Validation::Refreshing(refresh) => Authentication::Refreshing(refresh, token.into_owned()),
                }
            }
        }
    }

    /// Checks a token again once the key fetch it waited for is over; a token waits once at most.
    fn after_refresh<C: DeserializeOwned>(
        &self,
        token: &str,
        cache: Option<&ValidatedCache<C>>,
        outcome: RefreshOutcome,
    ) -> Authentication<C> {
        self.checked(observe::timed(|| self.validator.after_refresh::<C>(token, outcome), |_| true), token, cache)
    }

    /// Applies the layer's own rules to a validation's result, and caches a token that passes.
    fn checked<C>(
        &self,
        result: Result<Validated<C>, Error>,
        token: &str,
        cache: Option<&ValidatedCache<C>>,
    ) -> Authentication<C> {
        let answer = match result {
            Ok(validated) => self.admit(Arc::new(validated), token),
            Err(error) => refused(error, token),
        };
        if let (Authentication::Valid(validated), Some(cache)) = (&answer, cache) {
            cache.insert(token, validated, unix_now());
        }
        answer
    }

    /// The layer's own rules, beyond the validator's, for a token the validator accepted.
    fn admit<C>(&self, validated: Arc<Validated<C>>, token: &str) -> Authentication<C> {
        if self.require_jti && validated.registered().token_id().is_none() {
            return refused(ErrorKind::MissingClaim { claim: "jti" }.into(), token);
        }
        Authentication::Valid(validated)
    }

    fn reject(&self, error: &Error, head: RequestHead<'_>) -> Response<Bytes> {
        // Every refusal, whichever responder and hooks made it.
        let mut response = self.responder.respond(&Rejection::new(error, head));
        crate::response::no_store(&mut response);
        response
    }
}

/// What [`Shared::authenticate`] made of a request.
enum Authentication<C> {
    /// No credentials, in optional mode.
    Anonymous,
    /// A valid token.
    Valid(Arc<Validated<C>>),
    /// Refused, with this error.
    Refused(Error),
    /// Waiting for a key refresh; the token is checked again once it is over.
    Refreshing(PendingRefresh, String),
}

/// Refuses `token` with `error`, and logs why.
fn refused<C>(error: Error, token: &str) -> Authentication<C> {
    log_failure(&error, Some(token));
    Authentication::Refused(error)
}

/// Logs why a token was refused, with its `kid`, at debug level. The token itself is never logged; its `kid`
/// is read (unverified, truncated) only when debug logging is on.
fn log_failure(error: &Error, token: Option<&str>) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let kid = token.and_then(jwtgate_core::unverified_kid);
        tracing::debug!(kind = ?error.kind(), kid = ?kid, "jwtgate: request not authenticated");
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("validator", &self.validator)
            .field("sources", &self.sources)
            .field("optional", &self.optional)
            .field("denylist", &self.denylist.is_some())
            .field("fail_open", &self.fail_open)
            .field("subject_in_logs", &self.subject_in_logs)
            .finish_non_exhaustive()
    }
}
