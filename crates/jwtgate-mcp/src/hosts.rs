//! The DNS-rebinding defence: `Host` and `Origin` checked against an allow-list, before anything else.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HOST, ORIGIN};
use http::{Request, Response, StatusCode};
use jwtgate_tower::ResponseBody;
use jwtgate_tower::require::ResponseFuture;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::plain;

/// A tower layer that refuses requests whose `Host`, or `Origin` when one is sent, is not on an allow-list:
/// the defence against DNS rebinding that the MCP transport specification requires. A web page that an
/// attacker's DNS points at a local or internal MCP server still sends its own host name, and is refused.
///
/// Put it outermost, before `JwtAuthLayer`, so that a foreign host gets 403 whether it sends a token or not.
/// It answers as rmcp's own check does: 403 `Forbidden: Host header is not allowed` (or `Origin`), and 400
/// for a request with no `Host` at all.
///
/// An entry without a port matches the host on any port; `host:port` matches that port only; host names
/// compare without case, and IPv6 addresses are written without brackets or with them. `Origin` (sent by
/// browsers) must name an allowed host too, whatever its scheme; `Origin: null` is refused.
///
/// ```
/// use jwtgate_mcp::AllowedHosts;
///
/// let hosts = AllowedHosts::new(["mcp.example.com", "localhost", "127.0.0.1"]);
/// assert!(hosts.allows_host("MCP.example.com:8443") && hosts.allows_host("localhost"));
/// assert!(!hosts.allows_host("evil.example"));
/// assert!(hosts.allows_origin("https://mcp.example.com") && !hosts.allows_origin("http://evil.example"));
/// ```
#[derive(Clone)]
pub struct AllowedHosts {
    /// `None`: any host.
    entries: Option<Arc<[Entry]>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    host: String,
    port: Option<u16>,
}

impl AllowedHosts {
    /// Accepts the hosts `entries` name: `host` on any port, or `host:port` on that port only.
    pub fn new<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Self {
        let entries = entries.into_iter().filter_map(|entry| split(entry.as_ref().trim())).collect();
        Self { entries: Some(entries) }
    }

    /// Accepts every host: for a server behind a proxy that checks `Host` itself.
    pub fn any() -> Self {
        Self { entries: None }
    }

    /// Whether a `Host` header value is allowed.
    pub fn allows_host(&self, host: &str) -> bool {
        let Some(entries) = &self.entries else { return true };
        split(host).is_some_and(|asked| {
            entries
                .iter()
                .any(|entry| entry.host == asked.host && entry.port.is_none_or(|allowed| asked.port == Some(allowed)))
        })
    }

    /// Whether an `Origin` header value (`scheme://host[:port]`) is allowed: its host must be.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.entries.is_none() {
            return true;
        }
        match origin.split_once("://") {
            Some((scheme, authority)) if !scheme.is_empty() && !authority.contains(['/', '@', '?', '#']) => {
                self.allows_host(authority)
            }
            _ => false,
        }
    }

    /// Why `request` is refused, if it is.
    fn refuse<B>(&self, request: &Request<B>) -> Option<Response<Bytes>> {
        // Any host: nothing to refuse.
        self.entries.as_ref()?;
        let host = match request.headers().get(HOST) {
            Some(host) => host.to_str().ok(),
            // HTTP/2 carries the host in `:authority`.
            None => request.uri().authority().map(|authority| authority.as_str()),
        };
        let Some(host) = host else {
            return Some(plain(StatusCode::BAD_REQUEST, "Bad Request: missing Host header".to_owned()));
        };
        if !self.allows_host(host) {
            return Some(plain(StatusCode::FORBIDDEN, "Forbidden: Host header is not allowed".to_owned()));
        }
        match request.headers().get(ORIGIN).map(|origin| origin.to_str()) {
            None => None,
            Some(Ok(origin)) if self.allows_origin(origin) => None,
            Some(_) => Some(plain(StatusCode::FORBIDDEN, "Forbidden: Origin header is not allowed".to_owned())),
        }
    }
}

/// A host and its port, lowercased and without IPv6 brackets; `None` for something that is no host.
fn split(value: &str) -> Option<Entry> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, rest) = rest.split_once(']')?;
        match rest {
            "" => (host, None),
            rest => (host, Some(rest.strip_prefix(':')?)),
        }
    } else if value.matches(':').count() > 1 {
        // An IPv6 address without brackets: no port.
        (value, None)
    } else {
        match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    Some(Entry { host: host.to_ascii_lowercase(), port })
}

impl fmt::Debug for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entries {
            None => f.write_str("AllowedHosts(any)"),
            Some(entries) => f.debug_tuple("AllowedHosts").field(entries).finish(),
        }
    }
}

impl<S> Layer<S> for AllowedHosts {
    type Service = AllowedHostsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AllowedHostsService { inner, hosts: self.clone() }
    }
}

/// The service [`AllowedHosts`] wraps around yours.
#[derive(Clone, Debug)]
pub struct AllowedHostsService<S> {
    inner: S,
    hosts: AllowedHosts,
}

impl<S, B, ResBody> Service<Request<B>> for AllowedHostsService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.hosts.refuse(&request) {
            Some(response) => {
                tracing::debug!("jwtgate: a request from a host or origin that is not allowed");
                ResponseFuture::refused(response)
            }
            None => ResponseFuture::inner(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_hosts_with_and_without_ports() {
        let hosts = AllowedHosts::new(["Example.com", "api.example.com:8443", "::1", "[fe80::1]:80", "bad:port"]);
        for allowed in ["example.com", "EXAMPLE.COM:3000", "api.example.com:8443", "[::1]:3000", "::1", "[fe80::1]:80"]
        {
            assert!(hosts.allows_host(allowed), "{allowed}");
        }
        for refused in [
            "api.example.com",
            "api.example.com:443",
            "evil.example",
            "example.com.evil",
            "",
            ":80",
            "[fe80::1]",
            "bad:port",
        ] {
            assert!(!hosts.allows_host(refused), "{refused}");
        }
        assert!(AllowedHosts::any().allows_host("anything") && AllowedHosts::any().allows_origin("null"));
    }

    #[test]
    fn an_origin_must_name_an_allowed_host() {
        let hosts = AllowedHosts::new(["localhost", "mcp.example.com:8443"]);
        for allowed in ["http://localhost:5173", "https://localhost", "https://mcp.example.com:8443"] {
            assert!(hosts.allows_origin(allowed), "{allowed}");
        }
        for refused in [
            "null",
            "http://evil.example",
            "https://mcp.example.com",
            "localhost",
            "http://localhost/x",
            "http://u@localhost",
        ] {
            assert!(!hosts.allows_origin(refused), "{refused}");
        }
    }
}
