use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::Config;
use super::future::ResponseFuture;
use crate::ResponseBody;

/// The service [`JwtAuthLayer`](super::JwtAuthLayer) wraps around your service.
pub struct JwtAuthService<S, C> {
    inner: S,
    config: Arc<Config<C>>,
}

impl<S, C> JwtAuthService<S, C> {
    pub(super) fn new(inner: S, config: Arc<Config<C>>) -> Self {
        Self { inner, config }
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

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ResponseFuture::new(request, &mut self.inner, &self.config)
    }
}

impl<S: Clone, C> Clone for JwtAuthService<S, C> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), config: self.config.clone() }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for JwtAuthService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthService").field("inner", &self.inner).field("config", &self.config).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};

    use jwtgate_core::{Algorithm, Key, KeySet, Secret, Validator};
    use tower::ServiceExt;
    use tower_layer::Layer;

    use super::*;
    use crate::JwtAuthLayer;

    /// A service that must be polled ready before each call, as tower's contract allows services to demand.
    /// Its clones start not ready.
    #[derive(Debug)]
    struct MustBeReady {
        ready: bool,
        not_ready_polls: u32,
    }

    impl Clone for MustBeReady {
        fn clone(&self) -> Self {
            Self { ready: false, not_ready_polls: 0 }
        }
    }

    impl Service<Request<()>> for MustBeReady {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = Ready<Result<Response<String>, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if self.not_ready_polls > 0 {
                self.not_ready_polls -= 1;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.ready = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<()>) -> Self::Future {
            assert!(self.ready, "called a service that was not polled ready");
            self.ready = false;
            ready(Ok(Response::new("inner".to_owned())))
        }
    }

    fn layer() -> JwtAuthLayer<serde_json::Value> {
        let key = Key::hmac(Algorithm::HS256, &Secret::new(vec![3; 32])).unwrap();
        JwtAuthLayer::new(Validator::builder(KeySet::new([key]).unwrap()).build()).optional()
    }

    #[tokio::test]
    async fn the_service_polled_ready_is_the_one_called() {
        let mut service = layer().layer(MustBeReady { ready: false, not_ready_polls: 0 });
        for _ in 0..3 {
            let response = service.ready().await.unwrap().call(Request::new(())).await.unwrap();
            assert_eq!(response.status(), http::StatusCode::OK);
        }
    }

    #[tokio::test]
    async fn poll_ready_waits_for_the_inner_service() {
        let mut service = layer().layer(MustBeReady { ready: false, not_ready_polls: 2 });
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(service.poll_ready(&mut cx).is_pending());
        assert!(service.poll_ready(&mut cx).is_pending());
        assert!(service.poll_ready(&mut cx).is_ready());
    }

    #[tokio::test]
    async fn a_rejected_request_never_reaches_the_inner_service() {
        let mut service = layer().layer(MustBeReady { ready: false, not_ready_polls: 0 });
        let request = Request::builder().header("authorization", "Bearer x.y.z").body(()).unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
        // The inner service was polled ready but not called; it is still ready for the next request.
        assert!(service.get_ref().ready);
    }
}
