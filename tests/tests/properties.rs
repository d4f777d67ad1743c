//! Property tests over real HTTP: whatever a client puts in the Authorization header or the cookie, the
//! answer is never a 5xx (and the server never panics, which would drop the connection).

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::routing::get;
use jwtgate::{Algorithm, Claims, JwtAuthLayer, KeySet, TokenSource, TokenSources, Validator};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, claims, serve};
use proptest::prelude::*;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderValue};
use serde_json::Value;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    token: String,
    client: reqwest::Client,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let key = TestKey::generate(Algorithm::HS256).with_kid("k");
        let validator = Validator::builder(KeySet::new([key.verification_key()]).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build();
        let sources = TokenSources::new([TokenSource::bearer(), TokenSource::cookie("access_token")]);
        let app = Router::new()
            .route(
                "/me",
                get(
                    |claims: Claims<Value>| async move { claims.registered().subject().unwrap_or_default().to_owned() },
                ),
            )
            .layer(JwtAuthLayer::<Value>::new(validator).sources(sources));
        let addr = runtime.block_on(serve(app));
        Fixture { runtime, addr, token: key.sign(&claims()), client: reqwest::Client::new() }
    })
}

/// Sends one request with `header` set to `value`, and returns the status.
fn status_with(header: reqwest::header::HeaderName, value: &[u8]) -> u16 {
    let fixture = fixture();
    let value = HeaderValue::from_bytes(value).unwrap();
    fixture.runtime.block_on(async {
        let response = fixture.client.get(format!("http://{}/me", fixture.addr)).header(header, value).send().await;
        response.expect("the server answered").status().as_u16()
    })
}

/// Bytes that an HTTP header value may carry: visible ASCII, space, tab and obs-text.
fn header_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..max).prop_map(|mut bytes| {
        // HTTP strips surrounding whitespace; keep the value as it will arrive.
        while bytes.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            bytes.pop();
        }
        while bytes.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            bytes.remove(0);
        }
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_authorization_headers_never_yield_5xx(value in header_bytes(9000)) {
        let status = status_with(AUTHORIZATION, &value);
        prop_assert!(matches!(status, 400 | 401), "status {status}");
    }

    #[test]
    fn arbitrary_bearer_tokens_never_yield_5xx(token in "[A-Za-z0-9._~+/=-]{0,600}") {
        let status = status_with(AUTHORIZATION, format!("Bearer {token}").as_bytes());
        prop_assert_eq!(status, 401);
    }

    #[test]
    fn arbitrary_cookies_never_yield_5xx(value in header_bytes(9000)) {
        let status = status_with(COOKIE, &value);
        prop_assert!(matches!(status, 400 | 401), "status {status}");
    }

    #[test]
    fn any_change_to_a_valid_token_is_refused(index in any::<prop::sample::Index>(), byte in 0x21u8..0x7f) {
        let token = &fixture().token;
        let mut bytes = token.as_bytes().to_vec();
        let at = index.index(bytes.len());
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        let status = status_with(AUTHORIZATION, &[b"Bearer ".as_slice(), &bytes].concat());
        prop_assert_eq!(status, 401);
    }
}

#[test]
fn the_fixture_token_itself_is_accepted() {
    let token = fixture().token.clone();
    assert_eq!(status_with(AUTHORIZATION, format!("Bearer {token}").as_bytes()), 200);
}
