//! The `on_token_validated` hook of [`JwtAuthLayer`](super::JwtAuthLayer), ASP.NET's `OnTokenValidated`: it
//! runs asynchronously once a token is validated. ASP.NET's other events are a token source
//! ([`TokenSource::from_fn`](crate::TokenSource::from_fn)) or wrappers of the responder
//! ([`ResponderExt`](crate::ResponderExt)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{Extensions, HeaderMap, Method, Uri};
use jwtgate_core::{Error, Principal, Validated};

use crate::RequestHead;

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

    /// The principal that guards read. To enrich it, return a `Principal` in the hook's extensions:
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
