use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Extensions, Request, Response};
use jwtgate_core::{
    DenylistError, Error, ErrorKind, PendingLookup, PendingRefresh, Principal, RefreshOutcome, TokenStatus, Validated,
    ValidatedCache,
};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower_service::Service;
use tracing::Span;

use super::ForbiddenHook;
use super::events::{HookFuture, ValidatedHook};
use super::observe::{self, Outcome};
use super::service::proceed;
use super::{Authentication, Shared, TokenValidated};
use crate::{RequestHead, ResponseBody};

pin_project! {
    /// The response future of [`JwtAuthService`](super::JwtAuthService).
    ///
    /// A state machine with no boxing of its own: it waits for a key fetch when a token names a `kid` the
    /// remote keys lack or there are no remote keys yet, and for an asynchronous denylist when there is one, then runs the inner service's
    /// future, or yields jwtgate's answer to a refused request.
    pub struct ResponseFuture<S, ReqBody, C>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, C>
    where
        S: Service<Request<ReqBody>>,
    {
        Keys {
            refresh: PendingRefresh,
            awaiting: Option<AwaitingKeys<S, ReqBody, C>>,
        },
        Lookup {
            lookup: PendingLookup,
            waiting: Option<Waiting<S, ReqBody, C>>,
        },
        Hook {
            hook: HookFuture,
            admitting: Option<Admitting<S, ReqBody, C>>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

/// A request whose token waits for a key fetch.
pub(super) struct AwaitingKeys<S, ReqBody, C> {
    request: Request<ReqBody>,
    token: String,
    service: S,
    shared: Arc<Shared>,
    cache: Option<ValidatedCache<C>>,
    hook: Option<ValidatedHook<C>>,
    span: Span,
}

impl<S, ReqBody, C> AwaitingKeys<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
    C: DeserializeOwned + Send + Sync + 'static,
{
    pub(super) fn new(
        request: Request<ReqBody>,
        token: String,
        service: S,
        (shared, cache, hook): (Arc<Shared>, Option<ValidatedCache<C>>, Option<ValidatedHook<C>>),
        span: Span,
    ) -> Self {
        Self { request, token, service, shared, cache, hook, span }
    }

    /// Checks the token again, with the keys the fetch brought, and goes on as for any other token.
    fn finish(self, outcome: RefreshOutcome) -> ResponseFuture<S, ReqBody, C> {
        let Self { request, token, service, shared, cache, hook, span } = self;
        let error = match observe::within(&span, || shared.after_refresh::<C>(&token, cache.as_ref(), outcome)) {
            Authentication::Valid(validated) => {
                observe::validated(&span, &validated, &shared.subject_in_logs);
                return proceed(request, validated, service, &shared, &span, hook);
            }
            Authentication::Refused(error) => error,
            // `after_refresh` never refreshes again, nor reports an anonymous request.
            Authentication::Anonymous | Authentication::Refreshing(..) => ErrorKind::UnknownKey.into(),
        };
        observe::refused(&span, &error);
        ResponseFuture::rejected(shared.reject(&error, RequestHead::new(&request)))
    }
}

/// A validated request waiting for the denylist's answer.
pub(super) struct Waiting<S, ReqBody, C> {
    request: Request<ReqBody>,
    validated: Arc<Validated<C>>,
    service: S,
    shared: Arc<Shared>,
    span: Span,
    hook: Option<ValidatedHook<C>>,
}

impl<S, ReqBody, C> Waiting<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
    C: Send + Sync + 'static,
{
    pub(super) fn new(
        request: Request<ReqBody>,
        validated: Arc<Validated<C>>,
        service: S,
        shared: Arc<Shared>,
        span: Span,
        hook: Option<ValidatedHook<C>>,
    ) -> Self {
        Self { request, validated, service, shared, span, hook }
    }

    /// Admits the request, which the span and the metrics record as `outcome`.
    fn admitted(self, outcome: Outcome) -> ResponseFuture<S, ReqBody, C> {
        admission(self.request, self.validated, self.service, &self.shared, &self.span, self.hook, outcome)
    }

    /// Calls the inner service if the token is active, and answers otherwise.
    pub(super) fn finish(self, lookup: Result<TokenStatus, DenylistError>) -> ResponseFuture<S, ReqBody, C> {
        let span = &self.span;
        let error = match lookup {
            Ok(TokenStatus::Active) => {
                return self.admitted(Outcome::Authenticated);
            }
            Ok(TokenStatus::Revoked) => {
                let kid = self.validated.kid();
                observe::within(
                    span,
                    || tracing::debug!(kind = ?ErrorKind::Revoked, kid = ?kid, "jwtgate: request not authenticated"),
                );
                Error::new(ErrorKind::Revoked)
            }
            Err(error) if self.shared.fail_open => {
                observe::denylist_error();
                let kid = self.validated.kid();
                observe::within(
                    span,
                    || tracing::warn!(%error, kid = ?kid, "jwtgate: denylist unavailable; FAIL-OPEN: letting the token through unchecked"),
                );
                return self.admitted(Outcome::FailOpen);
            }
            Err(error) => {
                observe::denylist_error();
                observe::within(
                    span,
                    || tracing::warn!(%error, "jwtgate: denylist unavailable; refusing the request with 503"),
                );
                Error::new(ErrorKind::DenylistUnavailable)
            }
        };
        observe::refused(span, &error);
        ResponseFuture::rejected(self.shared.reject(&error, RequestHead::new(&self.request)))
    }
}

/// Admits a validated request: at once, or once the `on_token_validated` hook has agreed. `outcome` is what
/// the span and the metrics record when it is admitted (`authenticated`, or `fail_open`).
pub(super) fn admission<S, ReqBody, C>(
    request: Request<ReqBody>,
    validated: Arc<Validated<C>>,
    mut service: S,
    shared: &Arc<Shared>,
    span: &Span,
    hook: Option<ValidatedHook<C>>,
    outcome: Outcome,
) -> ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
    C: Send + Sync + 'static,
{
    match hook {
        None => {
            observe::outcome(span, outcome);
            ResponseFuture::inner(admit(request, validated, &mut service, shared, None))
        }
        Some(hook) => {
            let hook = hook(TokenValidated::new(validated.clone(), &RequestHead::new(&request)));
            let admitting =
                Admitting { request, validated, service, shared: shared.clone(), span: span.clone(), outcome };
            ResponseFuture { state: State::Hook { hook, admitting: Some(admitting) } }
        }
    }
}

/// A validated request waiting for the `on_token_validated` hook.
pub(super) struct Admitting<S, ReqBody, C> {
    request: Request<ReqBody>,
    validated: Arc<Validated<C>>,
    service: S,
    shared: Arc<Shared>,
    span: Span,
    outcome: Outcome,
}

impl<S, ReqBody, C> Admitting<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
    C: Send + Sync + 'static,
{
    /// Calls the inner service with the hook's extensions, or answers with the hook's error.
    fn finish(mut self, answer: Result<Extensions, Error>) -> ResponseFuture<S, ReqBody, C> {
        match answer {
            Ok(extensions) => {
                observe::outcome(&self.span, self.outcome);
                ResponseFuture::inner(admit(
                    self.request,
                    self.validated,
                    &mut self.service,
                    &self.shared,
                    Some(extensions),
                ))
            }
            Err(error) => {
                let kind = error.kind();
                observe::within(&self.span, || {
                    tracing::debug!(?kind, "jwtgate: the on_token_validated hook refused the request")
                });
                observe::refused(&self.span, &error);
                ResponseFuture::rejected(self.shared.reject(&error, RequestHead::new(&self.request)))
            }
        }
    }
}

/// Hands the validated claims, and the principal that guards read, to the inner service with the request,
/// with the `on_forbidden` hook for the guards and the `on_token_validated` hook's extensions, if any.
fn admit<S, ReqBody, C>(
    mut request: Request<ReqBody>,
    validated: Arc<Validated<C>>,
    service: &mut S,
    shared: &Shared,
    from_hook: Option<Extensions>,
) -> S::Future
where
    S: Service<Request<ReqBody>>,
    C: Send + Sync + 'static,
{
    let extensions = request.extensions_mut();
    extensions.insert(validated.principal().clone());
    extensions.insert(validated);
    match &shared.responder.on_forbidden {
        Some(hook) => extensions.insert(hook.clone()),
        // An outer layer's hook must not rewrite what this layer admitted.
        None => extensions.remove::<ForbiddenHook>(),
    };
    if let Some(from_hook) = from_hook {
        // Last, so that a principal from the hook replaces the token's: guards read an `Arc<Principal>`, and
        // a plain `Principal` is taken as one.
        extensions.extend(from_hook);
        if let Some(principal) = extensions.remove::<Principal>() {
            extensions.insert(Arc::new(principal));
        }
    }
    service.call(request)
}

impl<S, ReqBody, C> ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
{
    pub(super) fn inner(future: S::Future) -> Self {
        Self { state: State::Inner { future } }
    }

    pub(super) fn rejected(response: Response<Bytes>) -> Self {
        Self { state: State::Rejected { response: Some(response) } }
    }

    pub(super) fn lookup(lookup: PendingLookup, waiting: Waiting<S, ReqBody, C>) -> Self {
        Self { state: State::Lookup { lookup, waiting: Some(waiting) } }
    }

    pub(super) fn refreshing(refresh: PendingRefresh, awaiting: AwaitingKeys<S, ReqBody, C>) -> Self {
        Self { state: State::Keys { refresh, awaiting: Some(awaiting) } }
    }
}

impl<S, ReqBody, ResBody, C> Future for ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: DeserializeOwned + Send + Sync + 'static,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Keys { refresh, awaiting } => {
                    let outcome = ready!(refresh.as_mut().poll(cx));
                    let awaiting = awaiting.take().expect("ResponseFuture polled after completion");
                    this.state.set(awaiting.finish(outcome).state);
                }
                StateProj::Lookup { lookup, waiting } => {
                    let result = ready!(lookup.as_mut().poll(cx));
                    let waiting = waiting.take().expect("ResponseFuture polled after completion");
                    this.state.set(waiting.finish(result).state);
                }
                StateProj::Hook { hook, admitting } => {
                    let answer = ready!(hook.as_mut().poll(cx));
                    let admitting = admitting.take().expect("ResponseFuture polled after completion");
                    this.state.set(admitting.finish(answer).state);
                }
                StateProj::Inner { future } => {
                    return future.poll(cx).map_ok(|response| response.map(ResponseBody::inner));
                }
                StateProj::Rejected { response } => {
                    let response = response.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::own)));
                }
            }
        }
    }
}

impl<S, ReqBody, C> fmt::Debug for ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Keys { .. } => "Keys",
            State::Lookup { .. } => "Lookup",
            State::Hook { .. } => "Hook",
            State::Inner { .. } => "Inner",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
