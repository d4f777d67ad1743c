//! The MCP example, driven from outside over raw HTTP as `shared/mcp-example-contract.md` (and
//! `examples/mcp/README.md`) describes it: a real process, real rmcp.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::process::Stdio;
use std::time::Duration;

use jwtgate::Algorithm;
use jwtgate_test::{DpopKey, JwksServer};
use jwtgate_tests::{TestKey, now, start_listening, start_listening_with_log};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const ISSUER: &str = "https://issuer.test";
const ALGS: &str = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA";
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

fn command(vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate-example-mcp"));
    command.env("MCP_ADDR", "127.0.0.1:0").envs(vars.iter().copied());
    command
}

struct Mcp {
    _child: Child,
    /// `http://127.0.0.1:<port>/mcp`: the resource, and where MCP is served.
    url: String,
    origin: String,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn challenge(&self) -> &str {
        self.headers.get("www-authenticate").map_or("", |value| value.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON: {}", self.text))
    }

    /// The JSON-RPC message of an SSE answer: its last `data:` line that holds one.
    fn message(&self) -> Value {
        self.text
            .lines()
            .rev()
            .filter_map(|line| line.strip_prefix("data:"))
            .find_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .unwrap_or_else(|| panic!("no JSON-RPC message in: {}", self.text))
    }

    fn session(&self) -> String {
        self.headers["mcp-session-id"].to_str().unwrap().to_owned()
    }
}

impl Mcp {
    async fn start(vars: &[(&str, &str)]) -> Self {
        let (child, url) = start_listening(command(vars)).await;
        let origin = url.strip_suffix("/mcp").unwrap().to_owned();
        Self { _child: child, url, origin, http: reqwest::Client::new() }
    }

    fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.origin)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Answer { status, headers, text: response.text().await.unwrap() }
    }

    /// `POST /mcp` with `body`, as an MCP client sends it.
    async fn post(&self, token: Option<&str>, session: Option<&str>, body: &str) -> Answer {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        self.send(request).await
    }

    /// Opens a session for `token`: `initialize`, then `notifications/initialized`.
    async fn open(&self, token: &str) -> String {
        let answer = self.post(Some(token), None, INITIALIZE).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let session = answer.session();
        assert_eq!(self.post(Some(token), Some(&session), INITIALIZED).await.status, 202);
        session
    }

    /// `POST /mcp` with `body`, `token` under the `DPoP` scheme, and a fresh proof of `client`.
    async fn post_dpop(&self, client: &DpopKey, token: &str, session: Option<&str>, body: &str) -> Answer {
        let proof = client.proof("POST", &self.url).access_token(token).build();
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(body.to_owned());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        self.send(request).await
    }

    async fn call(&self, token: &str, session: Option<&str>, tool: &str) -> Answer {
        let body =
            json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": tool, "arguments": {} } });
        self.post(Some(token), session, &body.to_string()).await
    }
}

/// A key and its JWK Set file, for `MCP_JWKS_FILE`; the directory is removed when the guard drops.
struct KeyFile {
    key: TestKey,
    path: String,
    dir: std::path::PathBuf,
}

impl KeyFile {
    fn new(name: &str, key: TestKey) -> Self {
        let dir = std::env::temp_dir().join(format!("jwtgate-mcp-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("jwks.json");
        std::fs::write(&file, json!({ "keys": [key.jwk()] }).to_string()).unwrap();
        Self { key, path: file.to_str().unwrap().to_owned(), dir }
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A token of `key` for `resource` with `scope`, and `extra` claims on top.
fn token(key: &TestKey, resource: &str, scope: &str, extra: Value) -> String {
    let mut claims = json!({
        "iss": ISSUER, "sub": "alice", "aud": resource, "scope": scope, "client_id": "client-a",
        "iat": now(), "exp": now() + 300,
    });
    if let Value::Object(extra) = extra {
        claims.as_object_mut().unwrap().extend(extra);
    }
    key.sign(&claims)
}

async fn with_key_file(name: &str, vars: &[(&str, &str)]) -> (Mcp, KeyFile) {
    let file = KeyFile::new(name, TestKey::generate(Algorithm::ES256).with_kid("k1"));
    let mut all = vec![("MCP_JWKS_FILE", file.path.as_str()), ("MCP_ISSUER", ISSUER)];
    all.extend_from_slice(vars);
    (Mcp::start(&all).await, file)
}

#[tokio::test]
async fn the_metadata_is_public_at_both_urls() {
    let (mcp, _file) = with_key_file("metadata", &[]).await;
    let expected = json!({
        "resource": mcp.url,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["mcp:read", "mcp:write"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ALGS.split(' ').collect::<Vec<_>>(),
        "dpop_bound_access_tokens_required": false,
    });
    for url in [mcp.metadata_url(), format!("{}/.well-known/oauth-protected-resource", mcp.origin)] {
        let answer = mcp.send(mcp.http.get(&url)).await;
        assert_eq!((answer.status, answer.json()), (200, expected.clone()), "{url}");
        assert_eq!(answer.headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn every_refusal_names_the_metadata_and_the_scopes_with_bearer_first() {
    let (mcp, file) = with_key_file("challenges", &[]).await;
    let metadata = format!(r#"resource_metadata="{}""#, mcp.metadata_url());
    let missing = mcp.post(None, None, INITIALIZE).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.challenge(), format!(r#"Bearer scope="mcp:read mcp:write", {metadata}"#));
    assert_eq!(missing.json(), json!({ "error": "unauthorized", "error_description": "no bearer token was sent" }));

    let expired = token(&file.key, &mcp.url, "mcp:read", json!({ "exp": now() - 120 }));
    let bad = mcp.post(Some(&expired), None, INITIALIZE).await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.challenge(),
        format!(
            r#"Bearer error="invalid_token", error_description="the token has expired", scope="mcp:read mcp:write", {metadata}"#
        )
    );
    assert_eq!(bad.json(), json!({ "error": "invalid_token", "error_description": "the token has expired" }));

    // `aud` must name the resource: scheme and host compare without case, the path exactly.
    let upper = mcp.url.replace("http://127.0.0.1", "HTTP://127.0.0.1");
    assert_eq!(mcp.post(Some(&token(&file.key, &upper, "mcp:read", json!({}))), None, INITIALIZE).await.status, 200);
    for aud in [json!(format!("{}2", mcp.url)), json!(format!("{}/", mcp.url)), json!(mcp.origin), json!("api")] {
        let answer = mcp.post(Some(&token(&file.key, "", "mcp:read", json!({ "aud": aud }))), None, INITIALIZE).await;
        assert_eq!(answer.status, 401, "{aud}");
        assert_eq!(answer.json()["error_description"], "the token's audience is not accepted", "{aud}");
    }
    let mut no_aud = json!({ "iss": ISSUER, "sub": "alice", "exp": now() + 300 });
    let answer = mcp.post(Some(&file.key.sign(&no_aud)), None, INITIALIZE).await;
    assert_eq!((answer.status, answer.json()["error_description"].as_str()), (401, Some("the token has no aud claim")));
    // `iss` must be MCP_ISSUER, and `exp` is required.
    no_aud["aud"] = json!(mcp.url);
    no_aud["iss"] = json!("https://other.test");
    assert_eq!(mcp.post(Some(&file.key.sign(&no_aud)), None, INITIALIZE).await.status, 401);
    let no_exp = json!({ "iss": ISSUER, "sub": "alice", "aud": mcp.url });
    let answer = mcp.post(Some(&file.key.sign(&no_exp)), None, INITIALIZE).await;
    assert_eq!(answer.json()["error_description"], "the token has no exp claim");

    // A token in the query string is never read.
    let good = token(&file.key, &mcp.url, "mcp:read", json!({}));
    let query = mcp.http.post(format!("{}?access_token={good}", mcp.url)).body(INITIALIZE);
    let query =
        query.header("content-type", "application/json").header("accept", "application/json, text/event-stream");
    let answer = mcp.send(query).await;
    assert_eq!(
        (answer.status, answer.challenge()),
        (401, format!(r#"Bearer scope="mcp:read mcp:write", {metadata}"#).as_str())
    );
}

#[tokio::test]
async fn a_tool_without_its_scopes_is_a_403_in_any_session_state_and_in_a_batch() {
    let (mcp, file) = with_key_file("tools", &[]).await;
    let reader = token(&file.key, &mcp.url, "mcp:read", json!({}));
    let session = mcp.open(&reader).await;
    // tools/list: three tools, each with a name, a description and an inputSchema.
    let list = mcp.post(Some(&reader), Some(&session), r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
    let tools = list.message()["result"]["tools"].as_array().unwrap().clone();
    let mut names: Vec<&str> = tools.iter().map(|tool| tool["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["admin-action", "test_simple_text", "whoami"]);
    assert!(tools.iter().all(|tool| tool["description"].is_string() && tool["inputSchema"]["type"] == "object"));

    let whoami = mcp.call(&reader, Some(&session), "whoami").await;
    let text = whoami.message()["result"]["content"][0]["text"].as_str().unwrap().to_owned();
    assert!(text.contains("alice") && text.contains("mcp:read") && text.contains("client-a"), "{text}");
    let simple = mcp.call(&reader, Some(&session), "test_simple_text").await;
    assert_eq!(simple.message()["result"]["content"][0]["text"], "This is a simple text response for testing.");

    let forbidden_challenge = format!(
        r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource", scope="mcp:write", resource_metadata="{}""#,
        mcp.metadata_url()
    );
    let batch = json!([
        { "jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": { "name": "whoami", "arguments": {} } },
        { "jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": { "name": "admin-action", "arguments": {} } },
    ])
    .to_string();
    for answer in [
        mcp.call(&reader, Some(&session), "admin-action").await,
        mcp.call(&reader, None, "admin-action").await,
        mcp.post(Some(&reader), Some(&session), &batch).await,
    ] {
        assert_eq!(answer.status, 403, "{}", answer.text);
        assert_eq!(answer.challenge(), forbidden_challenge);
        assert_eq!(
            answer.json(),
            json!({ "error": "insufficient_scope", "error_description": "the token does not grant access to this resource" })
        );
    }
    let writer = token(&file.key, &mcp.url, "mcp:read mcp:write", json!({}));
    let session = mcp.open(&writer).await;
    let done = mcp.call(&writer, Some(&session), "admin-action").await;
    assert_eq!(done.message()["result"]["content"][0]["text"], "admin action done");
}

#[tokio::test]
async fn required_scopes_apply_to_every_request_and_the_401_asks_for_them() {
    let (mcp, file) = with_key_file("required", &[("MCP_REQUIRED_SCOPES", "mcp:read")]).await;
    let missing = mcp.post(None, None, INITIALIZE).await;
    assert!(
        missing.challenge().starts_with(r#"Bearer scope="mcp:read", resource_metadata="#),
        "{}",
        missing.challenge()
    );
    let nothing = token(&file.key, &mcp.url, "profile", json!({}));
    let refused = mcp.post(Some(&nothing), None, INITIALIZE).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.challenge().contains(r#"error="insufficient_scope""#)
            && refused.challenge().contains(r#"scope="mcp:read""#)
    );
    assert_eq!(mcp.post(Some(&token(&file.key, &mcp.url, "mcp:read", json!({}))), None, INITIALIZE).await.status, 200);
}

#[tokio::test]
async fn a_session_is_its_openers_alone_and_a_token_without_sub_opens_none() {
    let (mcp, file) = with_key_file("sessions", &[]).await;
    let alice = token(&file.key, &mcp.url, "mcp:read mcp:write", json!({}));
    let bob = token(&file.key, &mcp.url, "mcp:read mcp:write", json!({ "sub": "bob" }));
    let session = mcp.open(&alice).await;
    assert_eq!(mcp.call(&alice, Some(&session), "whoami").await.status, 200);
    let stolen = mcp.call(&bob, Some(&session), "whoami").await;
    assert_eq!((stolen.status, stolen.text.as_str()), (404, "Not Found: Session not found"));
    let stream = mcp.http.get(&mcp.url).bearer_auth(&bob).header("mcp-session-id", &session);
    assert_eq!(mcp.send(stream.header("accept", "text/event-stream")).await.status, 404);
    // Each session of hers is her own.
    let second = mcp.open(&alice).await;
    assert_ne!(second, session);

    let mut anonymous = json!({ "iss": ISSUER, "aud": mcp.url, "scope": "mcp:read", "exp": now() + 300 });
    let refused = mcp.post(Some(&file.key.sign(&anonymous)), None, INITIALIZE).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    anonymous["sub"] = json!("carol");
    assert_eq!(mcp.post(Some(&file.key.sign(&anonymous)), None, INITIALIZE).await.status, 200);
}

#[tokio::test]
async fn a_host_outside_the_allowed_hosts_is_refused() {
    let (mcp, file) = with_key_file("hosts", &[]).await;
    let good = token(&file.key, &mcp.url, "mcp:read", json!({}));
    let port = mcp.origin.rsplit(':').next().unwrap().to_owned();
    let post = |host: String| {
        mcp.http
            .post(&mcp.url)
            .bearer_auth(&good)
            .header("host", host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(INITIALIZE)
    };
    assert_eq!(mcp.send(post(format!("evil.example:{port}"))).await.status, 403);
    assert_eq!(mcp.send(post(format!("localhost:{port}"))).await.status, 200);
    // Refused before the token is even looked at.
    let anonymous = mcp.http.post(&mcp.url).header("host", "evil.example").body(INITIALIZE);
    let anonymous = mcp.send(anonymous).await;
    assert_eq!((anonymous.status, anonymous.text.as_str()), (403, "Forbidden: Host header is not allowed"));
    // A browser's `Origin` must name an allowed host too.
    let origin = |origin: &str| post(format!("localhost:{port}")).header("origin", origin);
    let evil = mcp.send(origin("http://evil.example")).await;
    assert_eq!((evil.status, evil.text.as_str()), (403, "Forbidden: Origin header is not allowed"));
    assert_eq!(mcp.send(origin("null")).await.status, 403);
    assert_eq!(mcp.send(origin("http://localhost:5173")).await.status, 200);
    drop(mcp);

    let (mcp, file) = with_key_file("hosts-listed", &[("MCP_ALLOWED_HOSTS", "mcp.example.com:8443")]).await;
    let good = token(&file.key, &mcp.url, "mcp:read", json!({}));
    let post = |host: &str| {
        mcp.http
            .post(&mcp.url)
            .bearer_auth(&good)
            .header("host", host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(INITIALIZE)
    };
    assert_eq!(mcp.send(post("mcp.example.com:8443")).await.status, 200);
    assert_eq!(mcp.send(post("mcp.example.com:9443")).await.status, 403);
    assert_eq!(mcp.send(post("127.0.0.1")).await.status, 403);
}

#[tokio::test]
async fn a_key_file_without_an_issuer_accepts_any_iss_and_a_token_without_kid_when_one_key_fits() {
    let file = KeyFile::new("any-iss", TestKey::generate(Algorithm::ES256).with_kid("only"));
    let mcp = Mcp::start(&[("MCP_JWKS_FILE", &file.path)]).await;
    let other_issuer = token(&file.key, &mcp.url, "mcp:read", json!({ "iss": "https://anyone.test" }));
    assert_eq!(mcp.post(Some(&other_issuer), None, INITIALIZE).await.status, 200);
    // The same key without `kid` in the header: exactly one key has ES256.
    let header = r#"{"alg":"ES256","typ":"JWT"}"#;
    let claims = json!({ "sub": "alice", "aud": mcp.url, "scope": "mcp:read", "exp": now() + 300 });
    let no_kid = file.key.sign_raw(header, &claims.to_string());
    assert_eq!(mcp.post(Some(&no_kid), None, INITIALIZE).await.status, 200);
    // No issuer: the metadata names no authorization server.
    let metadata = mcp.send(mcp.http.get(mcp.metadata_url())).await.json();
    assert!(metadata.get("authorization_servers").is_none(), "{metadata}");
}

#[tokio::test]
async fn an_issuer_that_starts_after_the_example_is_used_from_the_first_request_after_it_is_up() {
    let key = TestKey::generate(Algorithm::RS256).with_kid("r1");
    // The issuer's address is chosen, and nothing listens there yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let issuer = format!("http://{addr}/tenant");
    let mcp = Mcp::start(&[("MCP_ISSUER", &issuer)]).await;
    let mut claims = json!({ "iss": issuer, "sub": "alice", "aud": mcp.url, "scope": "mcp:read", "exp": now() + 300 });
    let good = key.sign(&claims);
    let down = mcp.post(Some(&good), None, INITIALIZE).await;
    assert_eq!(down.status, 503, "{}", down.text);
    assert!(down.headers.contains_key("retry-after"));

    // The authorization server publishes RFC 8414 metadata only for its issuer's path; the example finds it.
    let server = JwksServer::start_at(addr, json!({ "keys": [key.jwk()] })).await;
    assert_eq!(mcp.post(Some(&good), None, INITIALIZE).await.status, 200, "the first request after it is up");
    assert_eq!((server.discoveries(), server.fetches()), (1, 1));
    // The metadata names it.
    let metadata = mcp.send(mcp.http.get(mcp.metadata_url())).await.json();
    assert_eq!(metadata["authorization_servers"], json!([issuer]));
    // A key rotated in under a new kid is fetched on first sight.
    let next = TestKey::generate(Algorithm::RS256).with_kid("r2");
    server.set_keys(json!({ "keys": [key.jwk(), next.jwk()] }));
    claims["sub"] = json!("bob");
    assert_eq!(mcp.post(Some(&next.sign(&claims)), None, INITIALIZE).await.status, 200);
}

#[tokio::test]
async fn with_no_configuration_it_prints_a_working_token_and_how_to_call_it() {
    let (child, url, log) = start_listening_with_log(command(&[])).await;
    assert!(log.iter().any(|line| line.contains("for development only")), "{log:?}");
    let token = log.iter().find(|line| line.matches('.').count() == 2 && !line.contains(' ')).unwrap().clone();
    assert!(
        log.iter().any(|line| line.starts_with("curl ") && line.contains(&token) && line.contains(&url)),
        "{log:?}"
    );
    let origin = url.strip_suffix("/mcp").unwrap().to_owned();
    let mcp = Mcp { _child: child, url, origin, http: reqwest::Client::new() };
    let session = mcp.open(&token).await;
    let done = mcp.call(&token, Some(&session), "admin-action").await;
    assert_eq!(done.message()["result"]["content"][0]["text"], "admin action done", "every scope");
}

#[tokio::test]
async fn a_bad_configuration_exits_with_status_2_and_one_line() {
    for vars in [
        vec![("MCP_ADDR", "nowhere")],
        vec![("MCP_RESOURCE", "mcp.example.com/mcp")],
        vec![("MCP_JWKS_FILE", "/nonexistent/jwks.json")],
        vec![("MCP_TOOL_SCOPES", "admin-action")],
        vec![("MCP_DPOP", "maybe")],
        vec![("MCP_JWKS_URL", "ftp://keys.test/jwks")],
    ] {
        let mut command = command(&[]);
        command.envs(vars.iter().copied()).stdout(Stdio::null()).stderr(Stdio::piped());
        let output = tokio::time::timeout(Duration::from_secs(20), command.output()).await.unwrap().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{vars:?}: {stderr}");
        assert!(stderr.contains(vars[0].0), "{vars:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_signal_sent_the_moment_it_listens_stops_it_with_status_0() {
    jwtgate_tests::assert_stops_cleanly_on_signals(|| command(&[])).await;
}

fn challenges(answer: &Answer) -> Vec<&str> {
    answer.headers.get_all("www-authenticate").iter().map(|value| value.to_str().unwrap()).collect()
}

#[tokio::test]
async fn dpop_is_allowed_by_default_with_htu_the_resource() {
    let (mcp, file) = with_key_file("dpop", &[]).await;
    let metadata = format!(r#"resource_metadata="{}""#, mcp.metadata_url());
    // No credentials: Bearer first, then DPoP, each with the scopes and the metadata.
    let missing = mcp.post(None, None, INITIALIZE).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        challenges(&missing),
        [
            format!(r#"Bearer scope="mcp:read mcp:write", {metadata}"#),
            format!(r#"DPoP scope="mcp:read mcp:write", algs="{ALGS}", {metadata}"#),
        ]
    );
    let client = DpopKey::generate(Algorithm::ES256);
    let bound = token(&file.key, &mcp.url, "mcp:read", json!({ "cnf": { "jkt": client.thumbprint() } }));
    let opened = mcp.post_dpop(&client, &bound, None, INITIALIZE).await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    let session = opened.session();
    assert_eq!(mcp.post_dpop(&client, &bound, Some(&session), INITIALIZED).await.status, 202);
    let body =
        json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": "whoami", "arguments": {} } });
    let whoami = mcp.post_dpop(&client, &bound, Some(&session), &body.to_string()).await;
    assert!(whoami.message()["result"]["content"][0]["text"].as_str().unwrap().contains("alice"));
    // A tool without its scopes under DPoP: a DPoP insufficient_scope, from McpLayer.
    let body = json!({ "jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": { "name": "admin-action", "arguments": {} } });
    let forbidden = mcp.post_dpop(&client, &bound, Some(&session), &body.to_string()).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        challenges(&forbidden),
        [format!(
            r#"DPoP error="insufficient_scope", error_description="the token does not grant access to this resource", scope="mcp:write", algs="{ALGS}", {metadata}"#
        )]
    );
    // The bound token as a bearer token.
    let downgrade = mcp.post(Some(&bound), None, INITIALIZE).await;
    assert_eq!(downgrade.status, 401);
    assert_eq!(
        downgrade.json()["error_description"],
        "the token is sender-constrained and cannot be used as a bearer token"
    );
}

#[tokio::test]
async fn dpop_required_and_off() {
    let (mcp, file) = with_key_file("dpop-required", &[("MCP_DPOP", "required")]).await;
    let metadata = format!(r#"resource_metadata="{}""#, mcp.metadata_url());
    let missing = mcp.post(None, None, INITIALIZE).await;
    assert_eq!(challenges(&missing), [format!(r#"DPoP scope="mcp:read mcp:write", algs="{ALGS}", {metadata}"#)]);
    let unbound = token(&file.key, &mcp.url, "mcp:read", json!({}));
    let bearer = mcp.post(Some(&unbound), None, INITIALIZE).await;
    assert_eq!(bearer.status, 401);
    assert!(challenges(&bearer)[0].starts_with(r#"DPoP error="invalid_token""#), "{:?}", challenges(&bearer));
    let answer = mcp.send(mcp.http.get(mcp.metadata_url())).await;
    assert_eq!(answer.json()["dpop_bound_access_tokens_required"], true);

    let (mcp, _file) = with_key_file("dpop-off", &[("MCP_DPOP", "off")]).await;
    let missing = mcp.post(None, None, INITIALIZE).await;
    assert_eq!(
        challenges(&missing),
        [format!(r#"Bearer scope="mcp:read mcp:write", resource_metadata="{}""#, mcp.metadata_url())]
    );
    let answer = mcp.send(mcp.http.get(mcp.metadata_url())).await;
    assert!(answer.json().get("dpop_signing_alg_values_supported").is_none());
}
