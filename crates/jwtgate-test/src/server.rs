//! An in-process JWK Set and OpenID Connect discovery server under the test's control: it serves the keys
//! you give it, counts every request exactly, and can answer slowly, with an error, with malformed or huge
//! bodies, or with 304.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};

/// How the server misbehaves.
#[derive(Clone, Debug, Default)]
pub enum Fault {
    /// It answers properly.
    #[default]
    None,
    /// It answers with this status and an empty body.
    Status(u16),
    /// It answers 200 with this body (malformed JSON, say).
    Body(String),
    /// It answers 200 with this many bytes of a JSON-looking body, with a `Content-Length`.
    Huge(usize),
    /// It answers 200 with this many bytes, without a `Content-Length` (chunked).
    HugeChunked(usize),
    /// It waits this long before answering properly.
    Delay(Duration),
    /// It answers properly, but as `text/html`.
    Html,
}

#[derive(Debug, Default)]
struct ServerState {
    jwks: Value,
    etag: Option<String>,
    last_modified: Option<String>,
    cache_control: Option<String>,
    content_type: Option<&'static str>,
    fault: Fault,
    issuer_in_discovery: Option<String>,
    /// Whether the RFC 8414 document is served (otherwise 404).
    without_oauth_metadata: bool,
    fetches: usize,
    in_flight: usize,
    not_modified: usize,
    conditional: usize,
    discoveries: usize,
}

/// The server. Its JWK Set is at [`JwksServer::jwks_url`]; its discovery document, for the issuer
/// [`JwksServer::issuer`] (`http://<addr>/tenant`), at `<issuer>/.well-known/openid-configuration` (OpenID
/// Connect) and at `http://<addr>/.well-known/oauth-authorization-server/tenant` (RFC 8414).
#[derive(Clone, Debug)]
pub struct JwksServer {
    addr: SocketAddr,
    state: Arc<Mutex<ServerState>>,
}

impl JwksServer {
    /// Serves `jwks` (a JWK Set) on a free loopback port, until the test's runtime ends.
    pub async fn start(jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        Self::start_on(listener, jwks)
    }

    /// Serves `jwks` at `addr`, which a test chose beforehand: for an issuer that comes up after the
    /// server that trusts it.
    pub async fn start_at(addr: SocketAddr, jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the chosen address");
        Self::start_on(listener, jwks)
    }

    fn start_on(listener: tokio::net::TcpListener, jwks: Value) -> Self {
        let state = Arc::new(Mutex::new(ServerState {
            jwks,
            content_type: Some("application/json"),
            ..ServerState::default()
        }));
        let app = Router::new()
            .route("/jwks", get(jwks_route))
            .route("/tenant/.well-known/openid-configuration", get(discovery_route))
            .route("/.well-known/oauth-authorization-server/tenant", get(oauth_discovery_route))
            .with_state(state.clone());
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { addr, state }
    }

    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().expect("server state")
    }

    /// `http://<addr>/jwks`.
    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// `http://<addr>/tenant`, the issuer its discovery document names (unless overridden).
    pub fn issuer(&self) -> String {
        format!("http://{}/tenant", self.addr)
    }

    /// Serves another JWK Set from now on.
    pub fn set_keys(&self, jwks: Value) {
        self.state().jwks = jwks;
    }

    /// Misbehaves from now on.
    pub fn set_fault(&self, fault: Fault) {
        self.state().fault = fault;
    }

    /// Sends this `ETag` (a quoted string) and honours `If-None-Match` with 304.
    pub fn set_etag(&self, etag: &str) {
        self.state().etag = Some(etag.to_owned());
    }

    /// Sends this `Last-Modified` and honours `If-Modified-Since` (equal) with 304.
    pub fn set_last_modified(&self, date: &str) {
        self.state().last_modified = Some(date.to_owned());
    }

    /// Sends this `Cache-Control`.
    pub fn set_cache_control(&self, value: &str) {
        self.state().cache_control = Some(value.to_owned());
    }

    /// Sends this `Content-Type` (`None`: no such header).
    pub fn set_content_type(&self, value: Option<&'static str>) {
        self.state().content_type = value;
    }

    /// Whether the RFC 8414 authorization server metadata is served (by default) or answers 404, as for
    /// a provider that publishes only its OpenID configuration.
    pub fn set_oauth_metadata(&self, served: bool) {
        self.state().without_oauth_metadata = !served;
    }

    /// Makes discovery documents name `issuer` instead of the server's own.
    pub fn set_discovered_issuer(&self, issuer: &str) {
        self.state().issuer_in_discovery = Some(issuer.to_owned());
    }

    /// How many requests for the JWK Set arrived, answered or not.
    pub fn fetches(&self) -> usize {
        self.state().fetches
    }

    /// How many requests for the JWK Set are being answered now.
    pub fn in_flight(&self) -> usize {
        self.state().in_flight
    }

    /// How many requests for the JWK Set were conditional (`If-None-Match` or `If-Modified-Since`).
    pub fn conditional(&self) -> usize {
        self.state().conditional
    }

    /// How many were answered 304.
    pub fn not_modified(&self) -> usize {
        self.state().not_modified
    }

    /// How many requests for the discovery document arrived.
    pub fn discoveries(&self) -> usize {
        self.state().discoveries
    }
}

/// Holds `in_flight` up while a request is being answered, even if the client goes away.
struct InFlight(Arc<Mutex<ServerState>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.lock() {
            state.in_flight -= 1;
        }
    }
}

async fn jwks_route(State(state): State<Arc<Mutex<ServerState>>>, headers: HeaderMap) -> Response {
    let fault = {
        let mut locked = state.lock().expect("server state");
        locked.fetches += 1;
        locked.in_flight += 1;
        locked.fault.clone()
    };
    let _in_flight = InFlight(state.clone());
    if let Fault::Delay(delay) = fault {
        tokio::time::sleep(delay).await;
    }
    let mut locked = state.lock().expect("server state");
    let if_none_match = headers.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok());
    let if_modified_since = headers.get(header::IF_MODIFIED_SINCE).and_then(|value| value.to_str().ok());
    if if_none_match.is_some() || if_modified_since.is_some() {
        locked.conditional += 1;
    }
    let mut response = match &fault {
        Fault::Status(status) => return StatusCode::from_u16(*status).expect("status").into_response(),
        Fault::Body(body) => body.clone().into_response(),
        Fault::Huge(len) => huge(*len).into_response(),
        Fault::HugeChunked(len) => Response::new(Body::new(Unsized(Some(Bytes::from(huge(*len)))))),
        Fault::None | Fault::Delay(_) | Fault::Html => {
            let unchanged = match (&locked.etag, if_none_match, &locked.last_modified, if_modified_since) {
                (Some(etag), Some(sent), _, _) => etag == sent,
                (_, _, Some(date), Some(sent)) => date == sent,
                _ => false,
            };
            if unchanged {
                locked.not_modified += 1;
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                locked.jwks.to_string().into_response()
            }
        }
    };
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    let content_type = if matches!(fault, Fault::Html) { Some("text/html") } else { locked.content_type };
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    for (name, value) in [
        (header::ETAG, &locked.etag),
        (header::LAST_MODIFIED, &locked.last_modified),
        (header::CACHE_CONTROL, &locked.cache_control),
    ] {
        if let Some(value) = value {
            headers.insert(name, HeaderValue::from_str(value).expect("header value"));
        }
    }
    response
}

fn huge(len: usize) -> String {
    let mut body = String::from(r#"{"keys":[],"padding":""#);
    body.push_str(&"x".repeat(len.saturating_sub(body.len() + 2)));
    body.push_str("\"}");
    body
}

async fn oauth_discovery_route(State(state): State<Arc<Mutex<ServerState>>>, headers: HeaderMap) -> Response {
    if state.lock().expect("server state").without_oauth_metadata {
        return StatusCode::NOT_FOUND.into_response();
    }
    discovery_route(State(state), headers).await
}

async fn discovery_route(State(state): State<Arc<Mutex<ServerState>>>, headers: HeaderMap) -> Response {
    let mut locked = state.lock().expect("server state");
    locked.discoveries += 1;
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok()).unwrap_or_default();
    let own = format!("http://{host}/tenant");
    let issuer = locked.issuer_in_discovery.clone().unwrap_or(own);
    let document = json!({ "issuer": issuer, "jwks_uri": format!("http://{host}/jwks") });
    ([(header::CONTENT_TYPE, "application/json")], document.to_string()).into_response()
}

/// A body with no size hint, which hyper sends chunked.
struct Unsized(Option<Bytes>);

impl http_body::Body for Unsized {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|bytes| Ok(http_body::Frame::data(bytes))))
    }
}
