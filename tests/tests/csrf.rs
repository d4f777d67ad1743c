//! CSRF defence for tokens that come from cookies: unsafe methods must prove they come from the app's own
//! pages; Bearer requests and safe methods are exempt. Every refusal is checked for status, headers and body.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use axum::Router;
use axum::extract::WebSocketUpgrade;
use axum::routing::{get, post};
use http::HeaderName;
use jwtgate::{
    Algorithm, JwtAuthLayer, KeySet, Validator,
    sources::{Csrf, TokenSource, TokenSources},
};
use jwtgate_tests::{AUDIENCE, ISSUER, TestKey, claims, serve};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct App {
    base: String,
    token: String,
}

impl App {
    async fn start(csrf: Option<Csrf>) -> Self {
        let key = TestKey::generate(Algorithm::ES256);
        let validator = Validator::builder(KeySet::new([key.verification_key()]).unwrap())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build();
        let cookie = match csrf {
            Some(csrf) => TokenSource::cookie("session").csrf(csrf),
            None => TokenSource::cookie("session"),
        };
        let layer = JwtAuthLayer::<Value>::new(validator).sources(TokenSources::new([TokenSource::bearer(), cookie]));
        let websocket = |ws: WebSocketUpgrade| async move { ws.on_upgrade(|_| async {}) };
        let router = Router::new()
            .route("/do", post(|| async { "done" }).get(|| async { "read" }))
            .route("/ws", get(websocket))
            .layer(layer);
        Self { base: format!("http://{}", serve(router).await), token: key.sign(&claims()) }
    }

    /// Sends `method /do` with the session cookie and `headers`; answers status, headers, body.
    async fn send(&self, method: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, String) {
        let client = reqwest::Client::new();
        let mut request = client
            .request(method.parse().unwrap(), format!("{}/do", self.base))
            .header("cookie", format!("session={}", self.token));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    fn own_origin(&self) -> String {
        self.base.clone()
    }

    /// Opens a WebSocket on `/ws` as a browser does, over a raw HTTP/1.1 connection: the handshake with the
    /// session cookie and `headers`. Answers the status, and the body of a refusal (`Connection: close`).
    async fn websocket(&self, headers: &[(&str, &str)]) -> (u16, String) {
        let host = self.base.trim_start_matches("http://");
        let mut handshake = format!(
            "GET /ws HTTP/1.1\r\nhost: {host}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             cookie: session={}\r\n",
            self.token
        );
        for (name, value) in headers {
            handshake.push_str(&format!("{name}: {value}\r\n"));
        }
        handshake.push_str("\r\n");
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        stream.write_all(handshake.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head (a 101 leaves the connection open), then a refusal's body to its length.
        loop {
            let read = stream.read(&mut buf).await.unwrap();
            answer.extend_from_slice(&buf[..read]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let status = head[9..12].parse().unwrap();
                let length = head
                    .lines()
                    .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                    .map_or(0, |length| length.trim().parse().unwrap());
                if body.len() >= length || read == 0 {
                    return (status, body.to_owned());
                }
            }
            assert!(read > 0, "the connection closed before an answer: {text}");
        }
    }
}

#[track_caller]
fn assert_refused(answer: (u16, http::HeaderMap, String), what: &str) {
    let (status, headers, body) = answer;
    assert_eq!(status, 403, "{what}: {body}");
    assert!(headers.get("www-authenticate").is_none(), "{what}: not an authentication challenge");
    assert_eq!(headers["content-type"], "application/json", "{what}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({ "error": "csrf_rejected", "error_description": "the request's origin may not use the session cookie" }),
        "{what}"
    );
}

#[track_caller]
fn assert_done(answer: (u16, http::HeaderMap, String), what: &str) {
    let (status, _, body) = answer;
    assert_eq!((status, body.as_str()), (200, "done"), "{what}");
}

#[tokio::test]
async fn by_default_only_same_origin_unsafe_requests_may_use_the_cookie() {
    let app = App::start(None).await;
    let own = app.own_origin();
    assert_done(app.send("POST", &[("sec-fetch-site", "same-origin")]).await, "fetch metadata: same-origin");
    assert_done(app.send("POST", &[("sec-fetch-site", "none")]).await, "fetch metadata: the user's own navigation");
    assert_done(app.send("POST", &[("origin", &own)]).await, "no fetch metadata, Origin is the host");
    assert_refused(
        app.send("POST", &[("sec-fetch-site", "cross-site"), ("origin", "https://evil.test")]).await,
        "a cross-site form post",
    );
    assert_refused(app.send("POST", &[("sec-fetch-site", "same-site"), ("origin", &own)]).await, "a sibling site");
    assert_refused(app.send("POST", &[("origin", "https://evil.test")]).await, "another Origin, no fetch metadata");
    assert_refused(app.send("POST", &[("origin", "null")]).await, "an opaque origin");
    assert_done(app.send("POST", &[]).await, "neither header: not a browser, so not a forgery");
    for method in ["PUT", "PATCH", "DELETE"] {
        assert_refused(app.send(method, &[("sec-fetch-site", "cross-site")]).await, method);
    }
}

#[tokio::test]
async fn safe_methods_and_bearer_requests_are_exempt() {
    let app = App::start(None).await;
    let (status, _, body) = app.send("GET", &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!((status, body.as_str()), (200, "read"), "GET never changes state");
    let bearer = format!("Bearer {}", app.token);
    let answer = app.send("POST", &[("sec-fetch-site", "cross-site"), ("authorization", &bearer)]).await;
    assert_done(answer, "a Bearer header, which a browser never adds by itself");
}

#[tokio::test]
async fn a_forged_request_is_refused_before_its_token_is_read() {
    let app = App::start(None).await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/do", app.base))
        .header("cookie", "session=garbage")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    // 403 csrf_rejected, not 401: a forger learns nothing about the token.
    assert_refused((status, headers, response.text().await.unwrap()), "a forged request with a garbage token");
}

#[tokio::test]
async fn listed_origins_may_post_cross_origin() {
    let app = App::start(Some(Csrf::allow_origins(["https://app.example"]))).await;
    assert_done(
        app.send("POST", &[("sec-fetch-site", "cross-site"), ("origin", "https://app.example")]).await,
        "a listed origin",
    );
    assert_refused(
        app.send("POST", &[("sec-fetch-site", "cross-site"), ("origin", "https://app.example.evil.test")]).await,
        "an origin that merely starts like a listed one",
    );
}

#[tokio::test]
async fn double_submit_needs_the_header_to_match_the_cookie() {
    let app = App::start(Some(Csrf::double_submit("csrf", HeaderName::from_static("x-csrf-token")))).await;
    let client = reqwest::Client::new();
    let post = |cookie: String, header: Option<&'static str>| {
        let mut request = client.post(format!("{}/do", app.base)).header("cookie", cookie);
        if let Some(value) = header {
            request = request.header("x-csrf-token", value);
        }
        request.send()
    };
    let with = |csrf: &str| format!("session={}; csrf={csrf}", app.token);
    assert_eq!(post(with("r4nd0m"), Some("r4nd0m")).await.unwrap().status(), 200);
    for (cookie, header, what) in [
        (with("r4nd0m"), Some("other"), "a header that differs"),
        (with("r4nd0m"), None, "no header"),
        (format!("session={}", app.token), Some("r4nd0m"), "no csrf cookie"),
        (with("r4nd0m"), Some(""), "an empty header"),
    ] {
        let response = post(cookie, header).await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        assert_refused((status, headers, response.text().await.unwrap()), what);
    }
}

#[tokio::test]
async fn a_websocket_handshake_is_checked_like_an_unsafe_request() {
    // Regression (issue 17): a WebSocket handshake is a GET, and passed as a safe method, so another site
    // could open a cookie-authenticated WebSocket (cross-site WebSocket hijacking).
    let refused =
        json!({ "error": "csrf_rejected", "error_description": "the request's origin may not use the session cookie" });
    let app = App::start(None).await;
    let own = app.own_origin();
    let cross_site =
        [("origin", "https://evil.test"), ("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "websocket")];
    let (status, body) = app.websocket(&cross_site).await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()), (403, refused.clone()), "another site");
    let sibling =
        [("origin", "https://sibling.example"), ("sec-fetch-site", "same-site"), ("sec-fetch-mode", "websocket")];
    assert_eq!(app.websocket(&sibling).await.0, 403, "a sibling subdomain");
    assert_eq!(app.websocket(&[("origin", "https://evil.test")]).await.0, 403, "another Origin, no fetch metadata");
    let same = [("origin", own.as_str()), ("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "websocket")];
    assert_eq!(app.websocket(&same).await.0, 101, "the app's own page");
    assert_eq!(app.websocket(&[("origin", own.as_str())]).await.0, 101, "Origin is the host, no fetch metadata");
    assert_eq!(app.websocket(&[]).await.0, 101, "not a browser");

    // Double submit: a browser cannot add the header to a handshake, so the origin decides.
    let app = App::start(Some(Csrf::double_submit("csrf", HeaderName::from_static("x-csrf-token")))).await;
    let (status, body) = app.websocket(&cross_site).await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()), (403, refused), "double submit, another site");
    let own = app.own_origin();
    let same = [("origin", own.as_str()), ("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "websocket")];
    assert_eq!(app.websocket(&same).await.0, 101, "double submit, the app's own page");
}

#[tokio::test]
async fn over_http2_the_origin_is_compared_with_the_authority() {
    // Regression (issue 17): without fetch metadata, `Origin` was compared with `Host` only, which HTTP/2
    // requests do not carry (`:authority` instead): a same-origin request got a false 403.
    let app = App::start(None).await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let post = |origin: &str| {
        client
            .post(format!("{}/do", app.base))
            .header("cookie", format!("session={}", app.token))
            .header("origin", origin)
            .send()
    };
    let response = post(&app.own_origin()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!((response.status().as_u16(), response.text().await.unwrap()), (200, "done".to_owned()));
    let response = post("https://evil.test").await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    assert_refused((status, headers, response.text().await.unwrap()), "another Origin over HTTP/2");
}

#[tokio::test]
async fn the_defence_can_be_switched_off_explicitly() {
    let app = App::start(Some(Csrf::disabled())).await;
    assert_done(app.send("POST", &[("sec-fetch-site", "cross-site")]).await, "disabled");
}
