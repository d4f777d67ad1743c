//! Calling a service with a token, as a test would: any tower service (an axum `Router` included), and
//! tonic requests with the `tonic` feature.

use http::header::{AUTHORIZATION, HeaderValue};
use http::{Request, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::{Service, ServiceExt};

/// Adds `Authorization: Bearer <token>` to `request`.
///
/// # Panics
///
/// If `token` holds a character a header cannot (a line break, say).
pub fn with_bearer<B>(mut request: Request<B>, token: &str) -> Request<B> {
    let value = HeaderValue::try_from(format!("Bearer {token}")).expect("a token fits in a header");
    request.headers_mut().insert(AUTHORIZATION, value);
    request
}

/// Calls `service` once with `request`, `Authorization: Bearer <token>` added, and returns the response:
/// `send(router.clone(), Request::get("/me").body(Body::empty())?, &token)` for an axum `Router`.
///
/// # Errors
///
/// The service's own error.
pub async fn send<S, B, R>(service: S, request: Request<B>, token: &str) -> Result<Response<R>, S::Error>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    service.oneshot(with_bearer(request, token)).await
}

/// Reads a whole response body as JSON: `Value::Null` when it is empty or not JSON.
///
/// # Panics
///
/// If the body fails while it is read.
pub async fn body_json<B>(body: B) -> Value
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = body.collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// A tonic request carrying the token in its `authorization` metadata, as a gRPC client sends it.
///
/// # Panics
///
/// If `token` holds a character metadata cannot.
#[cfg(feature = "tonic")]
pub fn tonic_request<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}").parse().expect("a token fits in metadata");
    request.metadata_mut().insert("authorization", value);
    request
}
