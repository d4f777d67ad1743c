use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use jwtgate_core::{
    DenylistError, Error, ErrorKind, PendingLookup, PendingRefresh, TokenStatus, Validated, ValidatedCache,
};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower_service::Service;
use tracing::Span;

use super::service::proceed;
use super::{Authentication, Shared, observe};
use crate::{RequestHead, ResponseBody};

pin_project! {
    /// The response future of [`JwtAuthService`](super::JwtAuthService).
    ///
    /// A state machine with no boxing of its own: it waits for a key refresh when a token names a `kid` the
    /// remote keys lack, and for an asynchronous denylist when there is one, then runs the inner service's
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
        Inner {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

/// A request whose token waits for a key refresh.
pub(super) struct AwaitingKeys<S, ReqBody, C> {
    request: Request<ReqBody>,
    token: String,
    service: S,
    shared: Arc<Shared>,
    cache: Option<ValidatedCache<C>>,
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
        shared: Arc<Shared>,
        cache: Option<ValidatedCache<C>>,
        span: Span,
    ) -> Self {
        Self { request, token, service, shared, cache, span }
    }

    /// Checks the token again, with the refreshed keys, and goes on as for any other token.
    fn finish(self) -> ResponseFuture<S, ReqBody, C> {
        let Self { request, token, service, shared, cache, span } = self;
        let error = match observe::within(&span, || shared.after_refresh::<C>(&token, cache.as_ref())) {
            Authentication::Valid(validated) => {
                observe::validated(&span, &validated, &shared.subject_in_logs);
                return proceed(request, validated, service, &shared, &span);
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
    ) -> Self {
        Self { request, validated, service, shared, span }
    }

    /// Calls the inner service if the token is active, and answers otherwise.
    pub(super) fn finish(mut self, lookup: Result<TokenStatus, DenylistError>) -> ResponseFuture<S, ReqBody, C> {
        let span = &self.span;
        let error = match lookup {
            Ok(TokenStatus::Active) => {
                observe::outcome(span, "authenticated");
                return ResponseFuture::inner(admit(self.request, self.validated, &mut self.service));
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
                observe::outcome(span, "fail_open");
                let kid = self.validated.kid();
                observe::within(
                    span,
                    || tracing::warn!(%error, kid = ?kid, "jwtgate: denylist unavailable; FAIL-OPEN: letting the token through unchecked"),
                );
                return ResponseFuture::inner(admit(self.request, self.validated, &mut self.service));
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

/// Hands the validated claims, and the principal that guards read, to the inner service with the request.
pub(super) fn admit<S, ReqBody, C>(
    mut request: Request<ReqBody>,
    validated: Arc<Validated<C>>,
    service: &mut S,
) -> S::Future
where
    S: Service<Request<ReqBody>>,
    C: Send + Sync + 'static,
{
    let extensions = request.extensions_mut();
    extensions.insert(validated.principal().clone());
    extensions.insert(validated);
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
                    ready!(refresh.as_mut().poll(cx));
                    let awaiting = awaiting.take().expect("ResponseFuture polled after completion");
                    this.state.set(awaiting.finish().state);
                }
                StateProj::Lookup { lookup, waiting } => {
                    let result = ready!(lookup.as_mut().poll(cx));
                    let waiting = waiting.take().expect("ResponseFuture polled after completion");
                    this.state.set(waiting.finish(result).state);
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
            State::Inner { .. } => "Inner",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
