use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use jwtgate_core::Authority;
use jwtgate_tower::{Anonymous, Authenticated};
use tower::ServiceExt;

use http::{HeaderValue, StatusCode};

use super::*;

/// An MCP server stand-in: it echoes the body, opens a session on `initialize`, and counts its calls.
#[derive(Clone)]
struct Echo(Arc<AtomicUsize>);

impl Service<Request<Full<Bytes>>> for Echo {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let opens = request.headers().get(SESSION_HEADER).is_none() && request.method() == Method::POST;
            let body = request.into_body().collect().await.unwrap_or_else(|error| never(error)).to_bytes();
            let mut response = Response::new(Full::new(body.clone()));
            if opens && body.windows(10).any(|window| window == b"initialize") {
                response.headers_mut().insert(SESSION_HEADER, HeaderValue::from_static("session-1"));
            }
            Ok(response)
        })
    }
}

fn principal(subject: Option<&str>, scopes: &[&str]) -> Principal {
    scopes.iter().fold(Principal::new(subject.map(str::to_owned)), |p, scope| p.with(Authority::Scope, *scope))
}

struct Sent {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

async fn send(
    layer: &McpLayer,
    server: &Echo,
    method: Method,
    who: Option<Principal>,
    session: Option<&str>,
    body: &str,
) -> Sent {
    let mut request = Request::builder().method(method).uri("/mcp");
    if let Some(session) = session {
        request = request.header(SESSION_HEADER, session);
    }
    let mut request = request.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    match who {
        Some(principal) => request.extensions_mut().insert(Authenticated::new(principal)),
        None => request.extensions_mut().insert(Anonymous).map(|_| unreachable!()),
    };
    let response = layer.layer(server.clone()).oneshot(request).await.unwrap_or_else(|error| never(error));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.ok().map(|collected| collected.to_bytes()).unwrap_or_default();
    Sent { status: parts.status, headers: parts.headers, body: String::from_utf8(body.to_vec()).unwrap() }
}

const CALL_ADMIN: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin-action"}}"#;
const CALL_WHOAMI: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami"}}"#;
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;

fn layer() -> McpLayer {
    McpLayer::new().require(Policy::scope("mcp:read")).tool("admin-action", Policy::scope("mcp:write"))
}

#[tokio::test]
async fn a_tool_call_without_the_tools_scopes_is_a_403_before_the_server_runs() {
    let server = Echo(Arc::default());
    let reader = || Some(principal(Some("alice"), &["mcp:read"]));
    for body in [CALL_ADMIN.to_owned(), format!("[{CALL_WHOAMI},{CALL_ADMIN}]")] {
        let sent = send(&layer(), &server, Method::POST, reader(), None, &body).await;
        assert_eq!(sent.status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            sent.headers["www-authenticate"],
            r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource", scope="mcp:write""#
        );
        assert_eq!(sent.headers["cache-control"], "no-store");
        assert!(sent.body.contains(r#""error":"insufficient_scope""#), "{}", sent.body);
    }
    assert_eq!(server.0.load(Ordering::SeqCst), 0, "the server never ran");
    // Other tools and methods need only the server-wide policy; the body reaches the server unchanged.
    for body in [CALL_WHOAMI, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, "not json at all"] {
        let sent = send(&layer(), &server, Method::POST, reader(), None, body).await;
        assert_eq!((sent.status, sent.body.as_str()), (StatusCode::OK, body));
    }
    let writer = Some(principal(Some("alice"), &["mcp:read", "mcp:write"]));
    assert_eq!(send(&layer(), &server, Method::POST, writer, None, CALL_ADMIN).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_server_wide_policy_and_the_layer_in_front_come_first() {
    let server = Echo(Arc::default());
    let nobody = send(&layer(), &server, Method::POST, Some(principal(Some("a"), &[])), None, CALL_WHOAMI).await;
    assert_eq!(nobody.status, StatusCode::FORBIDDEN);
    assert!(nobody.headers["www-authenticate"].to_str().unwrap().ends_with(r#"scope="mcp:read""#));
    let anonymous = send(&layer(), &server, Method::POST, None, None, CALL_WHOAMI).await;
    assert_eq!(
        (anonymous.status, anonymous.headers["www-authenticate"].to_str().unwrap()),
        (StatusCode::UNAUTHORIZED, "Bearer")
    );
    let request = Request::builder().method(Method::POST).body(Full::new(Bytes::from_static(b"{}"))).unwrap();
    let response = layer().layer(server.clone()).oneshot(request).await.unwrap_or_else(|error| never(error));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "no JwtAuthLayer in front");
    assert_eq!(server.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_session_belongs_to_the_principal_that_opened_it() {
    let server = Echo(Arc::default());
    let layer = layer();
    let alice = || Some(principal(Some("alice"), &["mcp:read"]));
    let mallory = || Some(principal(Some("mallory"), &["mcp:read", "mcp:write"]));
    let opened = send(&layer, &server, Method::POST, alice(), None, INITIALIZE).await;
    assert_eq!(
        (opened.status, &opened.headers[SESSION_HEADER]),
        (StatusCode::OK, &HeaderValue::from_static("session-1"))
    );
    assert_eq!(
        send(&layer, &server, Method::POST, alice(), Some("session-1"), CALL_WHOAMI).await.status,
        StatusCode::OK
    );
    let calls = server.0.load(Ordering::SeqCst);
    for method in [Method::POST, Method::GET, Method::DELETE] {
        let stolen = send(&layer, &server, method.clone(), mallory(), Some("session-1"), CALL_WHOAMI).await;
        assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(stolen.body, "Not Found: Session not found");
    }
    let unknown = send(&layer, &server, Method::POST, alice(), Some("session-2"), CALL_WHOAMI).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(server.0.load(Ordering::SeqCst), calls, "the server never saw them");
    // Ended by its owner, the session is nobody's.
    assert_eq!(send(&layer, &server, Method::DELETE, alice(), Some("session-1"), "").await.status, StatusCode::OK);
    assert_eq!(
        send(&layer, &server, Method::POST, alice(), Some("session-1"), CALL_WHOAMI).await.status,
        StatusCode::NOT_FOUND
    );
    // A token without `sub` cannot open one.
    let anonymous = send(&layer, &server, Method::POST, Some(principal(None, &["mcp:read"])), None, INITIALIZE).await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);
    // Without binding, sessions are the server's business alone.
    let unbound = McpLayer::new().unbound_sessions();
    assert_eq!(
        send(&unbound, &server, Method::POST, mallory(), Some("session-9"), CALL_WHOAMI).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_never_reaches_the_server() {
    let server = Echo(Arc::default());
    let small = layer().max_body_bytes(64);
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#, "x".repeat(100));
    let sent = send(&small, &server, Method::POST, Some(principal(Some("a"), &["mcp:read"])), None, &big).await;
    assert_eq!(sent.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(sent.body, "Payload Too Large: request body exceeds 64 bytes");
    assert_eq!(server.0.load(Ordering::SeqCst), 0);
}

#[test]
fn a_clone_configured_further_leaves_the_original_as_it_was() {
    let original = McpLayer::new().tool("a", Policy::scope("s"));
    let changed = original.clone().tool("b", Policy::scope("t")).max_body_bytes(10);
    let (original, changed) = (format!("{original:?}"), format!("{changed:?}"));
    assert!(original.contains(r#"tools: ["a"]"#) && original.contains("max_body_bytes: 4194304"), "{original}");
    assert!(changed.contains(r#"tools: ["a", "b"]"#) && changed.contains("max_body_bytes: 10"), "{changed}");
}
