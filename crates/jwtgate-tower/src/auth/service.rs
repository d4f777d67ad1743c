use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use jwtgate_core::Lookup;
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::Shared;
use super::future::{ResponseFuture, Waiting};
use crate::{Anonymous, RequestHead, ResponseBody};

/// The service [`JwtAuthLayer`](super::JwtAuthLayer) wraps around your service.
pub struct JwtAuthService<S, C> {
    inner: S,
    shared: Arc<Shared>,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C> JwtAuthService<S, C> {
    pub(super) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared, _claims: PhantomData }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuthService<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    C: DeserializeOwned + Send + Sync + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready is the one that handles this request; the clone stays behind
        // for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);

        let validated = match self.shared.authenticate::<C>(&RequestHead::new(&request)) {
            Ok(Some(validated)) => validated,
            Ok(None) => {
                request.extensions_mut().insert(Anonymous);
                return ResponseFuture::inner(inner.call(request));
            }
            Err(error) => return ResponseFuture::rejected(self.shared.reject(&error, RequestHead::new(&request))),
        };
        let lookup = match &self.shared.denylist {
            Some(denylist) => denylist.check(validated.registered()),
            None => return ResponseFuture::inner(super::future::admit(request, validated, &mut inner)),
        };
        let waiting = Waiting::new(request, validated, inner, self.shared.clone());
        match lookup {
            Lookup::Ready(result) => waiting.finish(result),
            Lookup::Pending(lookup) => ResponseFuture::lookup(lookup, waiting),
        }
    }
}

impl<S: Clone, C> Clone for JwtAuthService<S, C> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), shared: self.shared.clone(), _claims: PhantomData }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for JwtAuthService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthService").field("inner", &self.inner).field("config", &self.shared).finish()
    }
}
