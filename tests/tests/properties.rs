//! Property tests.
//!
//! - Over real HTTP: whatever a client puts in the Authorization header or the cookie, the answer is never
//!   a 5xx (and the server never panics, which would drop the connection).
//! - On the validator: no whitespace or padding variant of an invalid token is accepted, and a valid token
//!   with either is refused, so the decision never depends on how lenient a decoder would be.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::routing::get;
use jwtgate::{
    Algorithm, Claims, JwtAuthLayer, KeySet, Validator,
    sources::{TokenSource, TokenSources},
};
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

/// The validator alone, with a valid token and invalid ones of every family, for the variant properties.
struct Tokens {
    validator: Validator,
    valid: String,
    invalid: Vec<(&'static str, String)>,
}

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let key = TestKey::generate(Algorithm::HS256).with_kid("k");
        let other = TestKey::generate(Algorithm::HS256).with_kid("k");
        let validator = Validator::builder(KeySet::new([key.verification_key()]).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build();
        let with = |name: &str, value: Value| {
            let mut claims = claims();
            claims[name] = value;
            claims
        };
        let valid = key.sign(&claims());
        let (header, rest) = valid.split_once('.').unwrap();
        let signature = rest.split_once('.').unwrap().1;
        let tampered = format!("{header}.{}.{signature}", jwtgate_tests::b64(with("sub", "admin".into()).to_string()));
        let unsigned =
            format!("{}.{}.", jwtgate_tests::b64(r#"{"alg":"none"}"#), jwtgate_tests::b64(claims().to_string()));
        let invalid = vec![
            ("another key's signature", other.sign(&claims())),
            ("expired", key.sign(&with("exp", (jwtgate_tests::now() - 3600).into()))),
            ("another issuer", key.sign(&with("iss", "https://elsewhere.test".into()))),
            ("another audience", key.sign(&with("aud", "other".into()))),
            ("a tampered claims set", tampered),
            ("alg none", unsigned),
            ("garbage", "not.a.token".to_owned()),
        ];
        for (family, token) in &invalid {
            assert!(validator.validate::<Value>(token).is_err(), "{family} is refused as it is");
        }
        assert!(validator.validate::<Value>(&valid).is_ok());
        Tokens { validator, valid, invalid }
    })
}

/// A change that a lenient decoder might ignore: whitespace anywhere, or base64 padding on a part.
#[derive(Clone, Debug)]
enum Variant {
    Whitespace { at: prop::sample::Index, text: &'static str },
    Padding { part: usize, pad: &'static str },
}

fn variant() -> impl Strategy<Value = Variant> {
    let whitespace = prop::sample::select(vec![" ", "\t", "\n", "\r\n", "\u{a0}", "  "]);
    prop_oneof![
        (any::<prop::sample::Index>(), whitespace).prop_map(|(at, text)| Variant::Whitespace { at, text }),
        (0usize..3, prop::sample::select(vec!["=", "==", "%3D"]))
            .prop_map(|(part, pad)| Variant::Padding { part, pad }),
    ]
}

fn apply(token: &str, variant: &Variant) -> String {
    match variant {
        Variant::Whitespace { at, text } => {
            // Between any two characters, or before the first, or after the last.
            let at = at.index(token.len() + 1);
            format!("{}{text}{}", &token[..at], &token[at..])
        }
        Variant::Padding { part, pad } => {
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            let part = (*part).min(parts.len() - 1);
            parts[part].push_str(pad);
            parts.join(".")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No whitespace or padding variant of an invalid token is ever accepted, whatever made it invalid.
    #[test]
    fn no_whitespace_or_padding_variant_of_an_invalid_token_is_accepted(
        family in 0usize..7,
        variant in variant(),
    ) {
        let tokens = tokens();
        let (name, token) = &tokens.invalid[family];
        let changed = apply(token, &variant);
        prop_assert!(tokens.validator.validate::<Value>(&changed).is_err(), "{} accepted as {:?}", name, changed);
    }

    /// The compact serialization has no whitespace and no padding (RFC 7515 §7.1, §2): a valid token with
    /// either is refused, so the decision never depends on how a decoder treats them.
    #[test]
    fn a_valid_token_with_whitespace_or_padding_is_refused(variant in variant()) {
        let tokens = tokens();
        let changed = apply(&tokens.valid, &variant);
        prop_assert!(tokens.validator.validate::<Value>(&changed).is_err(), "accepted {:?}", changed);
    }
}
