//! jwtgate for MCP servers (Model Context Protocol, streamable HTTP): what a `JwtAuthLayer` alone cannot do
//! in front of an MCP server.
//!
//! - **A policy per tool.** An MCP server answers every `tools/call` inside a JSON-RPC result, so a tool that
//!   refuses a caller can only say so in the body, with HTTP 200. The MCP authorization specification asks
//!   for an HTTP 403 `insufficient_scope` naming the scopes the client should ask for. [`McpLayer`] reads the
//!   JSON-RPC body (single messages and batches) before the server runs, checks the policy of each tool it
//!   calls, and answers the refusal itself, through the `JwtAuthLayer`'s responder; the body goes on to the
//!   server unchanged.
//! - **Sessions bound to their principal.** A session that one principal opened (its `Mcp-Session-Id`) is
//!   refused to any other, so that a leaked session id is no way into someone else's session (MCP security
//!   best practices, session hijacking).
//! - **The DNS-rebinding defence before anything else.** [`AllowedHosts`] refuses a foreign `Host` or
//!   `Origin` with 403 before `JwtAuthLayer` runs, so that such a request is refused whether it carries a
//!   token or not.
//!
//! Put it after `JwtAuthLayer`, in front of the MCP service, with the metadata routes outside both:
//!
//! ```
//! use jwtgate_core::Policy;
//! use jwtgate_mcp::McpLayer;
//!
//! let mcp = McpLayer::new()
//!     .require(Policy::scope("mcp:read"))
//!     .tool("admin-action", Policy::scope("mcp:write"));
//! // Router::new().nest_service("/mcp", ServiceBuilder::new().layer(auth).layer(mcp).service(rmcp_service))
//! # let _ = mcp;
//! ```
//!
//! See `docs/mcp.md` and `examples/mcp`.

mod body;
mod hosts;
mod sessions;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, Method, Request, Response};
use http_body::Body;
use http_body_util::Full;
use jwtgate_core::{ErrorKind, Policy, Principal};
use jwtgate_tower::{Access, Rejection, RequestHead, ResponseBody, respond, server_error};
use tower_layer::Layer;
use tower_service::Service;

use body::{Calls, Read};
pub use hosts::{AllowedHosts, AllowedHostsService};
use sessions::{Owner, Sessions};

/// The header that carries an MCP session's id (MCP streamable HTTP transport).
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");

/// The largest JSON-RPC body [`McpLayer`] reads by default: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How many sessions [`McpLayer`] remembers the principal of, by default.
pub const DEFAULT_SESSION_CAPACITY: usize = 10_000;

/// A tower layer for an MCP server behind a `JwtAuthLayer`: a policy for the whole server, a policy per tool
/// checked before the server runs, and sessions bound to the principal that opened them. See the
/// [crate] documentation.
///
/// For each request, in order:
/// 1. The principal that `JwtAuthLayer` put in the request must satisfy the server-wide policy
///    ([`require`](Self::require)); `initialize`, `tools/list`, notifications and every other method need
///    only that.
/// 2. A request in a session (`Mcp-Session-Id`) must come from the principal that opened it, compared by
///    issuer and subject; otherwise it gets 404, as an unknown session does, and the client starts a new one.
///    A token without `sub` cannot open a session (403).
/// 3. A `POST` body, read up to [`max_body_bytes`](Self::max_body_bytes), is parsed as JSON-RPC: each
///    `tools/call` in it (a single message or a batch) must satisfy its tool's policy
///    ([`tool`](Self::tool)), or the whole request gets 403 `insufficient_scope` with the tool's scopes (or
///    401 `insufficient_user_authentication` for a step-up policy), and the tool never runs. A body that is
///    not JSON goes on unchanged, for the server to answer as it always does.
///
/// Refusals come from the `JwtAuthLayer`'s responder, so they carry the same `resource_metadata` as its own.
#[derive(Clone)]
pub struct McpLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    server: Policy,
    tools: HashMap<String, Policy>,
    max_body_bytes: usize,
    /// Shared by the layer's clones, even by those whose other settings differ.
    sessions: Option<Arc<Sessions>>,
}

impl McpLayer {
    /// A layer with no server-wide policy beyond a valid token, no tool policies, bodies of up to
    /// [`DEFAULT_MAX_BODY_BYTES`], and sessions bound to their principal (up to
    /// [`DEFAULT_SESSION_CAPACITY`]).
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                server: Policy::all([]),
                tools: HashMap::new(),
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                sessions: Some(Arc::new(Sessions::new(DEFAULT_SESSION_CAPACITY))),
            }),
        }
    }

    /// The configuration, to change: shared with no clone of this layer nor with any service built before.
    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The policy every MCP request must satisfy, such as the scopes a client needs to use the server at
    /// all. Call it again to require several.
    #[must_use]
    pub fn require(mut self, policy: Policy) -> Self {
        let config = self.config_mut();
        config.server = Policy::all([config.server.clone(), policy]);
        self
    }

    /// The policy a `tools/call` of the tool `name` must satisfy, on top of the server-wide one. A tool
    /// without a policy needs only the server-wide one.
    #[must_use]
    pub fn tool(mut self, name: impl Into<String>, policy: Policy) -> Self {
        self.config_mut().tools.insert(name.into(), policy);
        self
    }

    /// The largest request body read, in bytes. A larger one gets 413, as rmcp answers it, and the server
    /// never sees it. Default [`DEFAULT_MAX_BODY_BYTES`], rmcp's own limit.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.config_mut().max_body_bytes = limit;
        self
    }

    /// How many sessions to remember the principal of. Past it, the least used sessions are forgotten, and a
    /// request in a forgotten session gets 404, which makes the client start a new one: never a session
    /// without its principal. Default [`DEFAULT_SESSION_CAPACITY`].
    #[must_use]
    pub fn session_capacity(mut self, capacity: usize) -> Self {
        self.config_mut().sessions = Some(Arc::new(Sessions::new(capacity)));
        self
    }

    /// Stops binding sessions to their principal: for a server in stateless mode, which opens no sessions.
    /// Binding is on by default.
    #[must_use]
    pub fn unbound_sessions(mut self) -> Self {
        self.config_mut().sessions = None;
        self
    }
}

impl Default for McpLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for McpLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tools: Vec<&String> = self.config.tools.keys().collect();
        tools.sort();
        f.debug_struct("McpLayer")
            .field("require", &self.config.server)
            .field("tools", &tools)
            .field("max_body_bytes", &self.config.max_body_bytes)
            .field("bound_sessions", &self.config.sessions.is_some())
            .finish()
    }
}

impl<S> Layer<S> for McpLayer {
    type Service = McpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        McpService { inner, config: self.config.clone() }
    }
}

/// The service [`McpLayer`] wraps around an MCP server. The server sees each request with its body read
/// whole, as `Full<Bytes>`.
pub struct McpService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: Clone> Clone for McpService<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), config: self.config.clone() }
    }
}

impl<S: fmt::Debug> fmt::Debug for McpService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpService").field("inner", &self.inner).finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResBody> Service<Request<B>> for McpService<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready is the one that is called.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(serve(inner, config, request))
    }
}

/// One request through the layer's checks, then the server.
async fn serve<S, B, ResBody>(
    mut inner: S,
    config: Arc<Config>,
    request: Request<B>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>>,
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let principal = {
        let head = RequestHead::from_parts(&parts);
        match decide(&config.server, &head) {
            Ok(principal) => principal,
            Err(response) => return Ok(own(response)),
        }
    };
    let owner = Owner::of(&principal);
    let session = parts.headers.get(SESSION_HEADER).cloned();
    if let (Some(sessions), Some(id)) = (&config.sessions, &session)
        && !sessions.is_owned_by(id, owner.as_ref())
    {
        tracing::debug!("jwtgate: an MCP session used by another principal, or unknown: 404");
        return Ok(own(body::session_not_found()));
    }

    let bytes = match body::read(body, config.max_body_bytes).await {
        Read::Whole(bytes) => bytes,
        Read::TooLarge => return Ok(own(body::too_large(config.max_body_bytes))),
        Read::Failed => return Ok(own(body::unreadable())),
    };
    if parts.method == Method::POST {
        let calls = Calls::parse(&bytes);
        let head = RequestHead::from_parts(&parts);
        if calls.initializes && session.is_none() && config.sessions.is_some() && owner.is_none() {
            // A session that no principal owns could be taken over by anyone: none is opened.
            tracing::debug!("jwtgate: a token without sub cannot open an MCP session");
            return Ok(own(respond(&Rejection::new(&ErrorKind::Forbidden.into(), head))));
        }
        let policies: Vec<Policy> =
            calls.tools.iter().filter_map(|name| config.tools.get(name.as_str())).cloned().collect();
        if !policies.is_empty() {
            let policy = Policy::all(policies);
            if let Err(response) = decide(&policy, &head) {
                return Ok(own(response));
            }
        }
    }

    let method = parts.method.clone();
    let response = inner.call(Request::from_parts(parts, Full::new(bytes))).await?;
    if let Some(sessions) = &config.sessions {
        sessions.after(&method, session.as_ref(), &response, owner);
    }
    Ok(response.map(ResponseBody::inner))
}

/// The principal, when it satisfies `policy`; otherwise the refusal, through the layer's responder.
#[allow(clippy::result_large_err, reason = "the refusal is sent as it is, and is the rare path")]
fn decide(policy: &Policy, head: &RequestHead<'_>) -> Result<Arc<Principal>, Response<Bytes>> {
    match Access::decide(policy, head.extensions()) {
        Access::Granted(principal) => Ok(principal),
        refused => {
            Err(refused.refusal(policy, head).map_or_else(|| server_error(Access::NO_LAYER), |(_, response)| response))
        }
    }
}

fn own<B>(response: Response<Bytes>) -> Response<ResponseBody<B>> {
    response.map(ResponseBody::own)
}

/// `Infallible` futures' errors never happen; a helper for tests.
#[cfg(test)]
fn never(error: std::convert::Infallible) -> ! {
    match error {}
}

#[cfg(test)]
mod tests;
