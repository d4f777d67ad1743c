use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::ResponseFuture;
use super::layer::Guarded;
use crate::Access;
use crate::{RequestHead, ResponseBody};

/// The service [`RequireLayer`](super::RequireLayer) wraps around your service.
pub struct RequireService<S> {
    inner: S,
    guarded: Arc<Guarded>,
}

impl<S> RequireService<S> {
    pub(super) fn new(inner: S, guarded: Arc<Guarded>) -> Self {
        Self { inner, guarded }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let policy = &self.guarded.policy;
        match Access::decide(policy, request.extensions()).into_http(policy, &RequestHead::new(&request)) {
            Ok(_) => {
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::inner(inner.call(request))
            }
            Err(response) => ResponseFuture::refused(response),
        }
    }
}

impl<S: Clone> Clone for RequireService<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), guarded: self.guarded.clone() }
    }
}

impl<S: fmt::Debug> fmt::Debug for RequireService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireService").field("inner", &self.inner).field("policy", &self.guarded.policy).finish()
    }
}
