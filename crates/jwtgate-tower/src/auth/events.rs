//! Lifecycle hooks of [`JwtAuthLayer`](super::JwtAuthLayer), as ASP.NET's `JwtBearerEvents` and Spring's
//! resource server offer them: a hook when a token is received, an asynchronous hook once it is validated,
//! and hooks on failure, on challenge and on forbidden that can rewrite the response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Extensions, HeaderMap, HeaderValue, Method, Response, Uri};
use jwtgate_core::{Error, ErrorKind, Principal, Validated};

use crate::{Rejection, RequestHead, Responder};

/// What an `on_token_validated` hook receives: the validated token and the request's head, owned, so that the
/// hook can be `async` and look things up (a user in a database, say) before the request goes on.
pub struct TokenValidated<C> {
    validated: Arc<Validated<C>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl<C> TokenValidated<C> {
    pub(super) fn new(validated: Arc<Validated<C>>, head: &RequestHead<'_>) -> Self {
        Self { validated, method: head.method().clone(), uri: head.uri().clone(), headers: head.headers().clone() }
    }

    /// The validated token: its claims, registered claims and principal.
    pub fn validated(&self) -> &Arc<Validated<C>> {
        &self.validated
    }

    /// The token's claims.
    pub fn claims(&self) -> &C {
        self.validated.claims()
    }

    /// The principal that guards read. To enrich it, return an `Arc<Principal>` in the hook's extensions:
    /// it replaces this one for the handlers and guards after the layer.
    pub fn principal(&self) -> &Arc<Principal> {
        self.validated.principal()
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request's URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl<C> fmt::Debug for TokenValidated<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidated").field("method", &self.method).field("uri", &self.uri).finish_non_exhaustive()
    }
}

/// What an `on_token_validated` hook's future yields.
pub(super) type HookFuture = Pin<Box<dyn Future<Output = Result<Extensions, Error>> + Send>>;

/// An `on_token_validated` hook, boxed.
pub(super) type ValidatedHook<C> = Arc<dyn Fn(TokenValidated<C>) -> HookFuture + Send + Sync>;

/// Boxes `hook`'s futures.
pub(super) fn validated_hook<C, F, Fut>(hook: F) -> ValidatedHook<C>
where
    F: Fn(TokenValidated<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Extensions, Error>> + Send + 'static,
{
    Arc::new(move |context| Box::pin(hook(context)))
}

type FailureHook = dyn Fn(&Rejection<'_>) + Send + Sync;
type RewriteHook = dyn Fn(&Rejection<'_>, Response<Bytes>) -> Response<Bytes> + Send + Sync;

/// The layer's responder with its hooks around it: every refusal by the layer goes through here.
#[derive(Clone)]
pub(super) struct LayerResponder {
    pub(super) responder: Arc<dyn Responder>,
    pub(super) on_failure: Option<Arc<FailureHook>>,
    pub(super) on_challenge: Option<Arc<RewriteHook>>,
    pub(super) on_forbidden: Option<ForbiddenHook>,
    pub(super) token_expired_header: bool,
}

impl LayerResponder {
    pub(super) fn new(responder: Arc<dyn Responder>) -> Self {
        Self { responder, on_failure: None, on_challenge: None, on_forbidden: None, token_expired_header: false }
    }

    pub(super) fn failure(&mut self, hook: impl Fn(&Rejection<'_>) + Send + Sync + 'static) {
        self.on_failure = Some(Arc::new(hook));
    }

    pub(super) fn challenge(
        &mut self,
        hook: impl Fn(&Rejection<'_>, Response<Bytes>) -> Response<Bytes> + Send + Sync + 'static,
    ) {
        self.on_challenge = Some(Arc::new(hook));
    }

    pub(super) fn forbidden(
        &mut self,
        hook: impl Fn(&Rejection<'_>, Response<Bytes>) -> Response<Bytes> + Send + Sync + 'static,
    ) {
        self.on_forbidden = Some(ForbiddenHook(Arc::new(hook)));
    }
}

impl Responder for LayerResponder {
    fn respond(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        if let Some(hook) = &self.on_failure {
            hook(rejection);
        }
        let mut response = self.responder.respond(rejection);
        if self.token_expired_header && rejection.error().kind() == ErrorKind::Expired {
            response.headers_mut().insert("token-expired", HeaderValue::from_static("true"));
        }
        // A 403 `Forbidden` (from the `on_token_validated` hook) goes where the guards' 403 go.
        match (&self.on_forbidden, &self.on_challenge) {
            (Some(hook), _) if rejection.error().kind() == ErrorKind::Forbidden => hook.rewrite(rejection, response),
            (_, Some(hook)) => hook(rejection, response),
            _ => response,
        }
    }
}

impl fmt::Debug for LayerResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerResponder")
            .field("on_failure", &self.on_failure.is_some())
            .field("on_challenge", &self.on_challenge.is_some())
            .field("on_forbidden", &self.on_forbidden.is_some())
            .field("token_expired_header", &self.token_expired_header)
            .finish_non_exhaustive()
    }
}

/// The `on_forbidden` hook of the `JwtAuthLayer` that admitted a request, in the request's extensions, for
/// the guards after it: they pass their 403 through it.
#[derive(Clone)]
pub struct ForbiddenHook(Arc<RewriteHook>);

impl ForbiddenHook {
    /// Rewrites a guard's 403.
    pub fn rewrite(&self, rejection: &Rejection<'_>, response: Response<Bytes>) -> Response<Bytes> {
        (self.0)(rejection, response)
    }
}

impl fmt::Debug for ForbiddenHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForbiddenHook")
    }
}
