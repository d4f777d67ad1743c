//! `McpLayer` and `AllowedHosts` in front of a real rmcp server, over raw HTTP: per-tool policies (single
//! messages and batches), sessions bound to issuer and subject, and the host check before the token.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::sync::Arc;

use axum::Router;
use jwtgate::mcp::{AllowedHosts, McpLayer};
use jwtgate::resource::ResourceUri;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Policy, Validator};
use jwtgate_tests::{TestKey, now};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tower::ServiceBuilder;

#[derive(Debug, Clone)]
struct Tools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Tools {
    fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    #[tool(description = "Reads")]
    async fn read(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text("read")]))
    }

    #[tool(description = "Writes")]
    async fn write(&self) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::success(vec![ContentBlock::text("written")]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

const A: &str = "https://a.example";
const B: &str = "https://b.example";
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

struct Server {
    url: String,
    keys: [TestKey; 2],
    http: reqwest::Client,
}

impl Server {
    /// Two issuers, each with its key; `mcp:read` for everything, `mcp:write` for the `write` tool.
    async fn start() -> Self {
        let keys =
            [TestKey::generate(Algorithm::ES256).with_kid("a"), TestKey::generate(Algorithm::ES256).with_kid("b")];
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resource = ResourceUri::parse(&format!("http://{addr}/mcp")).unwrap();
        let validator = |issuer: &str, key: &TestKey| {
            Validator::builder(KeySet::new([key.verification_key()]).unwrap())
                .issuer(issuer)
                .audience(resource.clone())
                .build()
        };
        let validator = Validator::by_issuer([validator(A, &keys[0]), validator(B, &keys[1])]).unwrap();
        let auth = JwtAuthLayer::<Value>::new(validator).resource(resource.clone());
        let mcp = McpLayer::new().require(Policy::scope("mcp:read")).tool("write", Policy::scope("mcp:write"));
        let hosts = ["127.0.0.1", "localhost"];
        let config = StreamableHttpServerConfig::default().with_allowed_hosts(hosts);
        let rmcp = StreamableHttpService::new(|| Ok(Tools::new()), Arc::new(LocalSessionManager::default()), config);
        let endpoint = ServiceBuilder::new().layer(AllowedHosts::new(hosts)).layer(auth).layer(mcp).service(rmcp);
        let app = Router::new().route_service("/mcp", endpoint);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url: resource.to_string(), keys, http: reqwest::Client::new() }
    }

    fn token(&self, issuer: &str, sub: &str, scope: &str) -> String {
        let key = if issuer == A { &self.keys[0] } else { &self.keys[1] };
        key.sign(&json!({ "iss": issuer, "sub": sub, "aud": self.url, "scope": scope, "exp": now() + 300 }))
    }

    async fn post(&self, token: &str, session: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    }

    async fn open(&self, token: &str) -> String {
        let response = self.post(token, None, INITIALIZE).await;
        assert_eq!(response.status(), 200);
        let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(self.post(token, Some(&session), initialized).await.status(), 202);
        session
    }
}

fn call(tool: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": tool, "arguments": {} } })
}

#[tokio::test]
async fn a_tool_call_without_its_scope_is_refused_over_http_single_or_batched() {
    let server = Server::start().await;
    let reader = server.token(A, "alice", "mcp:read");
    let session = server.open(&reader).await;
    let metadata = server.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    for body in [call("write"), json!([call("read"), call("write")])] {
        for session in [Some(session.as_str()), None] {
            let response = server.post(&reader, session, &body.to_string()).await;
            assert_eq!(response.status(), 403, "{body}");
            assert_eq!(
                response.headers()["www-authenticate"],
                format!(
                    r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource", scope="mcp:write", resource_metadata="{metadata}""#
                )
                .as_str()
            );
            assert_eq!(response.headers()["cache-control"], "no-store");
            let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert_eq!(body["error"], "insufficient_scope");
        }
    }
    let read = server.post(&reader, Some(&session), &call("read").to_string()).await;
    assert_eq!(read.status(), 200);
    assert!(read.text().await.unwrap().contains(r#""text":"read""#));
    // Without the server-wide scope, even `initialize` is refused, naming that scope.
    let nothing = server.post(&server.token(A, "alice", "profile"), None, INITIALIZE).await;
    assert_eq!(nothing.status(), 403);
    assert!(nothing.headers()["www-authenticate"].to_str().unwrap().contains(r#"scope="mcp:read""#));
}

#[tokio::test]
async fn a_session_belongs_to_one_issuer_and_subject() {
    let server = Server::start().await;
    let alice_at_a = server.token(A, "alice", "mcp:read mcp:write");
    let session = server.open(&alice_at_a).await;
    let write = call("write").to_string();
    assert_eq!(server.post(&alice_at_a, Some(&session), &write).await.status(), 200);
    // The same subject at another issuer is another principal; so is another subject at the same issuer.
    for other in [server.token(B, "alice", "mcp:read mcp:write"), server.token(A, "mallory", "mcp:read mcp:write")] {
        let stolen = server.post(&other, Some(&session), &write).await;
        assert_eq!(stolen.status(), 404);
        assert_eq!(stolen.text().await.unwrap(), "Not Found: Session not found");
    }
    // Ended by its owner, the session is gone for everyone.
    let ended = server.http.delete(&server.url).bearer_auth(&alice_at_a).header("mcp-session-id", &session);
    assert!(ended.send().await.unwrap().status().is_success());
    assert_eq!(server.post(&alice_at_a, Some(&session), &write).await.status(), 404);
}

#[tokio::test]
async fn a_foreign_host_is_refused_before_the_token_is_read() {
    let server = Server::start().await;
    let port = server.url.split(':').nth(2).unwrap().trim_end_matches("/mcp").to_owned();
    for token in [None, Some(server.token(A, "alice", "mcp:read"))] {
        let mut request = server.http.post(&server.url).header("host", format!("evil.example:{port}")).body(INITIALIZE);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403);
        assert!(response.headers().get("www-authenticate").is_none());
        assert_eq!(response.text().await.unwrap(), "Forbidden: Host header is not allowed");
    }
}
