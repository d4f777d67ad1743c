use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use crate::ResponseBody;

pin_project! {
    /// The response future of [`RequireService`](super::RequireService), and of any service that either
    /// calls its inner service or refuses the request with its own answer: the inner service's future, or
    /// the refusal.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<Bytes>> },
    }
}

impl<F> ResponseFuture<F> {
    /// The inner service's answer, its body wrapped in [`ResponseBody::inner`].
    pub fn inner(future: F) -> Self {
        Self { state: State::Inner { future } }
    }

    /// `response`, the request's refusal, with its bytes as [`ResponseBody::own`].
    pub fn refused(response: Response<Bytes>) -> Self {
        Self { state: State::Refused { response: Some(response) } }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx).map_ok(|response| response.map(ResponseBody::inner)),
            StateProj::Refused { response } => {
                let response = response.take().expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(response.map(ResponseBody::own)))
            }
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Inner { .. } => "Inner",
            State::Refused { .. } => "Refused",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
