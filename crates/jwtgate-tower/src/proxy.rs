//! Proxies whose headers are believed: the request's URL as the client reached it (`Forwarded`,
//! `X-Forwarded-*`), and the client certificate a TLS-terminating proxy saw.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::Extensions;
use http::header::FORWARDED;
use ipnet::IpNet;
use jwtgate_core::{ConfigError, ConfigErrorKind};

use crate::head::only;
use crate::{RequestHead, ResourceUri};

type PeerFn = dyn Fn(&Extensions) -> Option<IpAddr> + Send + Sync;

/// The proxies in front of the service whose headers jwtgate believes, and how to find the address of the peer
/// that sent a request.
///
/// A header such as `X-Forwarded-Host` is believed only when the request came straight from one of these
/// addresses; from any other peer it is ignored, so that a client cannot claim another URL or a certificate it
/// does not hold. How the peer's address is found depends on the server: axum puts it in
/// `ConnectInfo<SocketAddr>` when served with `into_make_service_with_connect_info`, and tonic in
/// `TcpConnectInfo`.
///
/// ```
/// use std::net::SocketAddr;
/// use jwtgate_tower::TrustedProxies;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[derive(Clone)] struct ConnectInfo<T>(T);
/// // With axum: `axum::extract::ConnectInfo`.
/// let proxies = TrustedProxies::new(["10.0.0.0/8", "::1"], |extensions| {
///     extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
/// })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
    peer: Arc<PeerFn>,
}

impl TrustedProxies {
    /// The proxies at `networks` (addresses such as `10.0.0.1` or `::1`, or networks such as `10.0.0.0/8`),
    /// with `peer` to find the address of the peer that sent a request in its extensions. A request whose peer
    /// `peer` cannot find is treated as coming from an untrusted peer.
    pub fn new<I, S, F>(networks: I, peer: F) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        F: Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    {
        let networks = networks
            .into_iter()
            .map(|network| {
                let network = network.as_ref().trim();
                network.parse::<IpNet>().or_else(|_| network.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    ConfigError::new(
                        ConfigErrorKind::Proxy,
                        format!("a trusted proxy {network:?} is not an IP address or network"),
                    )
                })
            })
            .collect::<Result<Arc<[IpNet]>, _>>()?;
        Ok(Self { networks, peer: Arc::new(peer) })
    }

    /// Whether the request came straight from a trusted proxy.
    pub fn trusts(&self, head: &RequestHead<'_>) -> bool {
        (self.peer)(head.extensions()).is_some_and(|peer| {
            let peer = peer.to_canonical();
            self.networks.iter().any(|network| network.contains(&peer))
        })
    }

    /// The origin (`scheme://host[:port]`) the client reached, as a trusted proxy tells it: the `proto` and
    /// `host` of `Forwarded` (RFC 7239), or else `X-Forwarded-Proto` and `X-Forwarded-Host`. `None` when the
    /// peer is not trusted, or the headers are absent, repeated or invalid: a proxy must set them, not append
    /// to what the client sent.
    pub(crate) fn forwarded_origin(&self, head: &RequestHead<'_>) -> Option<ResourceUri> {
        if !self.trusts(head) {
            return None;
        }
        let headers = head.headers();
        let (proto, host) = match only(headers, FORWARDED) {
            Some(forwarded) => forwarded_pair(forwarded)?,
            None => (
                only(headers, "x-forwarded-proto")?.trim().to_owned(),
                only(headers, "x-forwarded-host")?.trim().to_owned(),
            ),
        };
        if !proto.eq_ignore_ascii_case("https") && !proto.eq_ignore_ascii_case("http") {
            return None;
        }
        if host.is_empty() || host.contains(['/', '?', '#', '@', ',', ' ']) {
            return None;
        }
        let origin = ResourceUri::parse(&format!("{proto}://{host}")).ok()?;
        (origin.as_str() == origin.origin()).then_some(origin)
    }
}

/// `proto` and `host` of a `Forwarded` value with exactly one element.
fn forwarded_pair(value: &str) -> Option<(String, String)> {
    if value.contains(',') {
        return None;
    }
    let (mut proto, mut host) = (None, None);
    for pair in value.split(';') {
        let (name, value) = pair.split_once('=')?;
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "proto" => &mut proto,
            "host" => &mut host,
            _ => continue,
        };
        if slot.replace(value.to_owned()).is_some() {
            return None;
        }
    }
    Some((proto?, host?))
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedProxies").field("networks", &self.networks).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use http::Request;

    use super::*;

    #[derive(Clone)]
    struct Peer(SocketAddr);

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(["10.0.0.0/8", "::1"], |extensions| extensions.get::<Peer>().map(|peer| peer.0.ip()))
            .unwrap()
    }

    fn request(peer: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/orders?x=1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(()).unwrap();
        request.extensions_mut().insert(Peer(peer.parse().unwrap()));
        request
    }

    fn origin(request: &Request<()>) -> Option<String> {
        proxies().forwarded_origin(&RequestHead::new(request)).map(|origin| origin.as_str().to_owned())
    }

    #[test]
    fn a_trusted_proxy_names_the_origin() {
        let forwarded = [("forwarded", r#"for=1.2.3.4;proto=https;host="API.example.com""#)];
        assert_eq!(origin(&request("10.1.2.3:5000", &forwarded)).as_deref(), Some("https://api.example.com"));
        let x = [("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com:8443")];
        assert_eq!(origin(&request("[::1]:5000", &x)).as_deref(), Some("https://api.example.com:8443"));
        // An IPv4 peer seen through an IPv6 socket is the same peer.
        assert_eq!(origin(&request("[::ffff:10.0.0.9]:1", &x)).as_deref(), Some("https://api.example.com:8443"));
    }

    #[test]
    fn an_untrusted_peer_or_an_appended_header_names_nothing() {
        let x = [("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com")];
        assert_eq!(origin(&request("192.168.1.1:5000", &x)), None);
        let mut no_peer = request("10.0.0.1:1", &x);
        no_peer.extensions_mut().clear();
        assert_eq!(origin(&no_peer), None);
        for headers in [
            &[("forwarded", "proto=https;host=evil.example, proto=https;host=api.example.com")][..],
            &[("x-forwarded-proto", "https"), ("x-forwarded-host", "a.example"), ("x-forwarded-host", "b.example")],
            &[("x-forwarded-proto", "ftp"), ("x-forwarded-host", "api.example.com")],
            &[("x-forwarded-proto", "https"), ("x-forwarded-host", "user@api.example.com")],
            &[("x-forwarded-proto", "https"), ("x-forwarded-host", "api.example.com/path")],
            &[("forwarded", "proto=https;proto=http;host=api.example.com")],
            &[("x-forwarded-proto", "https")],
        ] {
            assert_eq!(origin(&request("10.0.0.1:1", headers)), None, "{headers:?}");
        }
    }

    #[test]
    fn proxies_are_addresses_or_networks() {
        let peer = |_: &Extensions| None;
        assert!(TrustedProxies::new(["10.0.0.1", "fd00::/8", " 127.0.0.1 "], peer).is_ok());
        let error = TrustedProxies::new(["proxy.internal"], peer).unwrap_err();
        assert_eq!(error.kind(), ConfigErrorKind::Proxy);
        assert!(error.to_string().contains("proxy.internal"));
    }
}
