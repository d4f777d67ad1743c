//! An MCP server (Model Context Protocol, streamable HTTP, on the official Rust SDK `rmcp`) protected by
//! jwtgate as an OAuth 2.0 resource server, the way the MCP authorization specification (2025-11-25) asks:
//! - its protected resource metadata (RFC 9728) at the path-inserted well-known URL and at the root;
//! - every 401 and 403 challenge names that metadata, and a 401 without credentials names the scopes to
//!   ask for;
//! - tokens must carry the server's canonical URI in `aud` (RFC 8707);
//! - a policy per tool, checked before rmcp runs, so that a missing scope is an HTTP 403
//!   `insufficient_scope`;
//! - each session bound to the principal that opened it;
//! - `Host` checked against an allow-list (DNS rebinding).
//!
//! ```text
//! cargo run --release -p jwtgate-example-mcp
//! ```
//!
//! See `examples/mcp/README.md` for its configuration and interface, and `docs/mcp.md` for the steps.

mod config;
mod tools;

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use config::{Config, Keys};
use jwtgate::dpop::Dpop;
use jwtgate::jwks::RemoteKeySet;
use jwtgate::keys::{SigningKey, TrustedKeys};
use jwtgate::mcp::{AllowedHosts, McpLayer};
use jwtgate::resource::ResourceUri;
use jwtgate::responses::Rfc6750Responder;
use jwtgate::{Algorithm, JwtAuthLayer, KeySet, Policy, Secret, Validator, guards::AuthorityMapping};
use jwtgate_example_support::say;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tower::ServiceBuilder;

use tools::Tools;

/// The exit status of a misconfiguration.
const EXIT_CONFIG: u8 = 2;

/// The keys that verify tokens, and, with none configured, the development key that signs the sample token.
fn keys(config: &Config) -> Result<(TrustedKeys, Option<SigningKey>), String> {
    Ok(match &config.keys {
        Keys::File(set) => (set.clone().into(), None),
        // On demand: nothing is fetched before a request needs the keys, and the first request after the
        // authorization server comes up gets them, whenever it comes up.
        Keys::Url(url) => {
            let keys = RemoteKeySet::jwks(url).on_demand().build().map_err(|err| format!("MCP_JWKS_URL: {err}"))?;
            (keys.into(), None)
        }
        Keys::Discover(issuer) => {
            let keys =
                RemoteKeySet::discover_any(issuer).on_demand().build().map_err(|err| format!("MCP_ISSUER: {err}"))?;
            (keys.into(), None)
        }
        Keys::Ephemeral => {
            let mut bytes = vec![0; 32];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "cannot generate a development key".to_owned())?;
            let signer = SigningKey::hmac(Algorithm::HS256, &Secret::new(bytes), "development")
                .map_err(|err| err.to_string())?;
            let set = KeySet::new([signer.verification_key().clone()]).map_err(|err| err.to_string())?;
            (set.into(), Some(signer))
        }
    })
}

/// The whole app: the MCP endpoint behind `JwtAuthLayer` and `McpLayer`, the metadata outside them.
fn app(config: &Config, keys: TrustedKeys, resource: &ResourceUri) -> Result<Router, String> {
    let mut validator =
        Validator::builder(keys).authorities(AuthorityMapping::default().scp()).audience(resource.clone());
    if let Some(issuer) = &config.issuer {
        validator = validator.issuer(issuer.clone());
    }
    // Every challenge names the metadata; the 401s also name the scopes to ask for.
    let mut responder = Rfc6750Responder::new().resource_metadata(resource).required_scopes(config.challenge_scopes());
    let mut auth = JwtAuthLayer::<Value>::new(validator.build()).resource(resource.clone());
    if let Some(required) = config.dpop {
        // A proof's `htu` is the resource: its origin, and the path the request is sent to.
        let dpop = if required { Dpop::required(resource.origin()) } else { Dpop::allowed(resource.origin()) };
        let dpop = dpop.map_err(|err| err.to_string())?;
        responder = responder.dpop(&dpop);
        auth = auth.dpop(dpop);
    }
    let auth = auth.responder(responder);

    let scopes = |scopes: &[String]| Policy::all(scopes.iter().map(Policy::scope));
    let mut mcp = McpLayer::new();
    if !config.required_scopes.is_empty() {
        mcp = mcp.require(scopes(&config.required_scopes));
    }
    for (tool, tool_scopes) in &config.tool_scopes {
        mcp = mcp.tool(tool.clone(), scopes(tool_scopes));
    }

    // The metadata, from the layer itself (`resource`, the validator's issuer, `bearer_methods_supported`), so
    // that the two cannot disagree; `MCP_AUTHORIZATION_SERVERS` and `MCP_SCOPES_SUPPORTED` say the rest.
    let metadata = auth
        .metadata()
        .map_err(|err| err.to_string())?
        .authorization_servers(config.authorization_servers.iter().cloned())
        .scopes_supported(config.scopes_supported.iter().cloned())
        .serve_at_root()
        .into_service()
        .map_err(|err| err.to_string())?;
    // DNS rebinding: `Host`, and `Origin` when a browser sends one, are checked first, so that a foreign host
    // gets 403 with or without a token. rmcp checks `Host` again against the same list.
    let (hosts, server) = match config.allowed_hosts(resource) {
        Some(hosts) => (AllowedHosts::new(&hosts), StreamableHttpServerConfig::default().with_allowed_hosts(hosts)),
        None => (AllowedHosts::any(), StreamableHttpServerConfig::default().disable_allowed_hosts()),
    };
    let rmcp = StreamableHttpService::new(|| Ok(Tools::new()), Arc::new(LocalSessionManager::default()), server);
    let endpoint = ServiceBuilder::new().layer(hosts).layer(auth).layer(mcp).service(rmcp);

    let mut app = Router::new().route_service(resource.path(), endpoint);
    for path in metadata.paths() {
        app = app.route_service(path, metadata.clone());
    }
    Ok(app)
}

/// A token for the development key: every scope, 15 minutes.
fn sample_token(signer: &SigningKey, config: &Config, resource: &ResourceUri) -> Result<String, String> {
    let now = jwtgate::__private::unix_now();
    let claims = json!({
        "iss": "jwtgate-example-mcp",
        "sub": "demo",
        "aud": resource.as_str(),
        "client_id": "jwtgate-example-mcp",
        "scope": config.scopes_supported.join(" "),
        "iat": now,
        "exp": now + 15 * 60,
    });
    signer.sign("at+jwt", &claims).map_err(|err| err.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    jwtgate_example_support::init_logs();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("jwtgate-example-mcp: {message}");
            ExitCode::from(code)
        }
    }
}

async fn run() -> Result<(), (u8, String)> {
    let misconfigured = |message: String| (EXIT_CONFIG, format!("configuration error: {message}"));
    let config = Config::from_lookup(|name| std::env::var(name).ok()).map_err(misconfigured)?;
    let (keys, signer) = keys(&config).map_err(misconfigured)?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|err| (1, format!("cannot listen on {}: {err}", config.addr)))?;
    let addr = listener.local_addr().unwrap_or(config.addr);
    let resource = config.resource(addr).map_err(misconfigured)?;
    let app = app(&config, keys, &resource).map_err(misconfigured)?;
    // The signal handlers go in before `listening on` is printed: a signal sent the moment the line appears
    // must stop the example cleanly (status 0), not kill it.
    let signal = jwtgate_example_support::shutdown_signal()
        .map_err(|err| (1, format!("cannot listen for SIGINT and SIGTERM: {err}")))?;

    if let Some(signer) = &signer {
        tracing::warn!("no issuer or key set configured: using an ephemeral HS256 key, for development only");
        let token = sample_token(signer, &config, &resource).map_err(|err| (1, err))?;
        say("sample token (sub \"demo\", every scope, valid 15 minutes; development key):");
        say(&token);
        say(&format!(
            "curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \
             -H 'Accept: application/json, text/event-stream' -d '{}' http://{addr}{}",
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#,
            resource.path(),
        ));
    }
    say(&format!("listening on http://{addr}{}", resource.path()));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            signal.await;
            tracing::info!("shutting down");
        })
        .await
        .map_err(|err| (1, format!("server error: {err}")))
}
