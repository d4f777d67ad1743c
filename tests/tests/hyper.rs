//! `JwtAuthLayer` in a plain hyper 1 server: hyper's own request body, a `Full<Bytes>` response body, and
//! the layer added with one `ServiceBuilder` line.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use jwtgate::service::Authenticated;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Validator};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, claims};
use serde_json::Value;
use tower::ServiceBuilder;

async fn hello(request: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let authenticated = request.extensions().get::<Authenticated>().expect("the layer ran");
    let validated = authenticated.validated::<Value>().expect("the layer's claims type");
    let subject = validated.registered().subject().unwrap_or("nobody").to_owned();
    Ok(http::Response::new(Full::new(Bytes::from(format!("hello {subject}")))))
}

#[tokio::test]
async fn the_layer_wraps_a_plain_hyper_service() {
    let key = TestKey::generate(Algorithm::EdDSA);
    let validator =
        Validator::builder(KeySet::new([key.verification_key()]).unwrap()).issuer(ISSUER).audience(AUDIENCE).build();
    let service = ServiceBuilder::new().layer(JwtAuthLayer::<Value>::new(validator)).service_fn(hello);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });

    let client = reqwest::Client::new();
    let response = client.get(format!("http://{addr}/")).bearer_auth(key.sign(&claims())).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "hello user-1");

    let response = client.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["error_description"], "no bearer token was sent");
}
