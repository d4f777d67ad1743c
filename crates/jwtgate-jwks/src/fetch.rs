//! One HTTP fetch of a JWK Set or a discovery document: conditional, bounded in time and size.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use http::header::{self, HeaderMap};
use reqwest::{Client, Url};
use serde::Deserialize;

/// What a fetch brought.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// A new document, with how long the server says it stays fresh, and its validators: the caller keeps
    /// them only once it has accepted the document, so that a rejected one is never confirmed by a 304.
    Body { body: String, max_age: Option<Duration>, validators: Validators },
    /// 304: the document is the one we hold.
    NotModified { max_age: Option<Duration> },
}

/// The validators of the document we hold, for a conditional GET (RFC 9110 §13.1).
#[derive(Clone, Debug, Default)]
pub(crate) struct Validators {
    etag: Option<header::HeaderValue>,
    last_modified: Option<header::HeaderValue>,
}

impl Validators {
    fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A URL as logs and errors show it: scheme, host, port and path, without user information, query or
/// fragment, which may hold credentials. `Debug` shows the same.
pub struct Shown<'a>(pub &'a Url);

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        write!(f, "{}://{}", url.scheme(), url.host_str().unwrap_or(""))?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())
    }
}

/// Why a fetch failed. For logs: it never holds a response body.
#[derive(Debug)]
pub(crate) struct FetchError(pub(crate) String);

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// GETs `url` as JSON, sending the validators we hold, within `timeout` and `max_bytes`. A 304 counts only
/// as the answer to a conditional request.
pub(crate) async fn get_json(
    client: &Client,
    url: &Url,
    validators: Option<&Validators>,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Fetched, FetchError> {
    let conditional = validators.is_some_and(|held| !held.is_empty());
    let url_shown = Shown(url);
    let url = &url_shown;
    let fetch = async {
        let mut request =
            client.get(url.0.clone()).header(header::ACCEPT, "application/jwk-set+json, application/json");
        if let Some(held) = validators {
            if let Some(etag) = &held.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = &held.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, last_modified);
            }
        }
        let mut response = request.send().await.map_err(|err| FetchError(format!("{url}: {}", describe(&err))))?;
        let max_age = max_age(response.headers());
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_MODIFIED if conditional => return Ok(Fetched::NotModified { max_age }),
            status => return Err(FetchError(format!("{url}: HTTP {status}"))),
        }
        check_content_type(response.headers()).map_err(|err| FetchError(format!("{url}: {err}")))?;
        let validators = Validators {
            etag: response.headers().get(header::ETAG).cloned(),
            last_modified: response.headers().get(header::LAST_MODIFIED).cloned(),
        };
        let body = read_body(&mut response, max_bytes).await.map_err(|err| FetchError(format!("{url}: {err}")))?;
        let body = String::from_utf8(body).map_err(|_| FetchError(format!("{url}: the response is not UTF-8")))?;
        Ok(Fetched::Body { body, max_age, validators })
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .unwrap_or_else(|_| Err(FetchError(format!("{url}: no complete answer within {timeout:?}"))))
}

/// Reads a response's body, refusing one larger than `max_bytes` as soon as it is: never more is held.
pub async fn read_body(response: &mut reqwest::Response, max_bytes: usize) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|len| len > max_bytes as u64) {
        return Err(format!("the response is larger than {max_bytes} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| describe(&err))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!("the response is larger than {max_bytes} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What went wrong with a request, in words safe to log: the kind of failure, and its source (a connection
/// or TLS error), without the URL reqwest repeats (the caller adds it once, shown) and never a body.
pub fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else if err.is_redirect() {
        "too many or refused redirects"
    } else if err.is_body() || err.is_decode() {
        "the response body could not be read"
    } else {
        "the request failed"
    };
    match std::error::Error::source(err) {
        Some(source) => format!("{what} ({source})"),
        None => what.to_owned(),
    }
}

/// Accepts `application/json`, `application/jwk-set+json` and any other `application/*+json` type, or no type
/// at all. Refuses others, such as the HTML of a login page or a proxy's error page.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let value = value.to_str().map_err(|_| "the content type is not readable".to_owned())?;
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Ok(())
    } else {
        Err(format!("the content type {essence:?} is not JSON"))
    }
}

/// `max-age` of `Cache-Control`; `no-cache` and `no-store` count as 0 (the caller applies its floor).
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
            if name.eq_ignore_ascii_case("max-age") {
                if let Ok(seconds) = argument.trim_matches('"').parse::<u64>() {
                    found = Some(Duration::from_secs(seconds));
                }
            } else if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                return Some(Duration::ZERO);
            }
        }
    }
    found
}

/// The members of a discovery document that jwtgate reads: an OpenID Provider configuration (OpenID Connect
/// Discovery 1.0 §3) or OAuth 2.0 authorization server metadata (RFC 8414 §2), which share them.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The discovery document's URL for `issuer`: `/.well-known/openid-configuration` appended to it, path
/// included, without a doubled slash (OpenID Connect Discovery §4).
pub(crate) fn discovery_url(issuer: &str) -> Result<Url, String> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    parse_url(&url)
}

/// The authorization server metadata's URL for `issuer` (RFC 8414 §3.1): `/.well-known/oauth-authorization-server`
/// inserted between the host and the issuer's path, whose final `/` is dropped. An issuer has no query or
/// fragment (§2).
pub(crate) fn oauth_discovery_url(issuer: &str) -> Result<Url, String> {
    let mut url = parse_url(issuer)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("the issuer {} has a query or a fragment, which RFC 8414 §2 forbids", Shown(&url)));
    }
    let path = url.path().strip_suffix('/').unwrap_or(url.path());
    let path = format!("/.well-known/oauth-authorization-server{path}");
    url.set_path(&path);
    Ok(url)
}

/// Reads a discovery document: its `issuer` must equal the one configured, exactly (OpenID Connect Discovery
/// §4.3, RFC 8414 §3.3), and its `jwks_uri`
/// must be a URL jwtgate would fetch.
pub(crate) fn read_discovery(body: &str, issuer: &str) -> Result<Url, String> {
    let document: Discovery = serde_json::from_str(body)
        .map_err(|_| "the discovery document is not JSON with string members issuer and jwks_uri".to_owned())?;
    if document.issuer != issuer {
        return Err(format!(
            "the discovery document names the issuer {:?}, not the configured {issuer:?}",
            document.issuer
        ));
    }
    let jwks_uri = parse_url(&document.jwks_uri).map_err(|err| format!("jwks_uri: {err}"))?;
    if issuer.starts_with("https:") && jwks_uri.scheme() != "https" {
        return Err("jwks_uri: an https issuer's keys are fetched over https only".to_owned());
    }
    Ok(jwks_uri)
}

/// Parses a URL jwtgate may fetch keys from: `https`, or `http` to a loopback address only, since keys
/// fetched in clear text over a network could be anyone's. An error shows the URL as [`Shown`] does (no
/// credentials, no query), and an unparsable one not at all: it may hold a secret.
pub(crate) fn parse_url(url: &str) -> Result<Url, String> {
    parse_endpoint(url, "keys are fetched")
}

/// Parses the URL of an endpoint jwtgate calls: https, or plain http to a loopback address only. `purpose`
/// completes "... over https" in the error message, such as "keys are fetched".
pub fn parse_endpoint(url: &str, purpose: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|err| format!("the URL is not valid: {err}"))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(format!("{} uses http; {purpose} over https (plain http only to loopback)", Shown(&parsed))),
        other => Err(format!("{} has the scheme {other:?}; {purpose} over https", Shown(&parsed))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (header::HeaderName::from_static(name), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age(&headers(&[("cache-control", "public, max-age=3600")])), Some(Duration::from_secs(3600)));
        assert_eq!(
            max_age(&headers(&[("cache-control", "Max-Age=\"60\", must-revalidate")])),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age(&headers(&[("cache-control", "no-store")])), Some(Duration::ZERO));
        assert_eq!(max_age(&headers(&[("cache-control", "max-age=soon")])), None);
        assert_eq!(max_age(&headers(&[])), None);
    }

    #[test]
    fn only_json_content_types_are_accepted() {
        for ok in ["application/json", "application/jwk-set+json", "Application/JSON; charset=utf-8"] {
            assert!(check_content_type(&headers(&[("content-type", ok)])).is_ok(), "{ok}");
        }
        assert!(check_content_type(&headers(&[])).is_ok());
        for bad in ["text/html", "text/plain", "application/jsonx"] {
            assert!(check_content_type(&headers(&[("content-type", bad)])).is_err(), "{bad}");
        }
    }

    #[test]
    fn discovery_appends_the_well_known_path_to_the_issuer_path() {
        assert_eq!(
            discovery_url("https://idp.example/realms/acme").unwrap().as_str(),
            "https://idp.example/realms/acme/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example/").unwrap().as_str(),
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn oauth_discovery_inserts_the_well_known_path_before_the_issuer_path() {
        for (issuer, document) in [
            ("https://as.example/tenant1", "https://as.example/.well-known/oauth-authorization-server/tenant1"),
            ("https://as.example/a/b/", "https://as.example/.well-known/oauth-authorization-server/a/b"),
            ("https://as.example/a//", "https://as.example/.well-known/oauth-authorization-server/a/"),
            ("https://as.example", "https://as.example/.well-known/oauth-authorization-server"),
            ("https://as.example/", "https://as.example/.well-known/oauth-authorization-server"),
            ("http://127.0.0.1:8080/t", "http://127.0.0.1:8080/.well-known/oauth-authorization-server/t"),
        ] {
            assert_eq!(oauth_discovery_url(issuer).unwrap().as_str(), document, "{issuer}");
        }
        for issuer in ["https://as.example/t?x=1", "https://as.example/t#f", "http://as.example/t", "not a url"] {
            assert!(oauth_discovery_url(issuer).is_err(), "{issuer}");
        }
        assert_eq!(
            oauth_discovery_url("https://user:secret@as.example/t?token=secret").unwrap_err(),
            "the issuer https://as.example/t has a query or a fragment, which RFC 8414 §2 forbids"
        );
    }

    #[test]
    fn discovery_trusts_only_its_own_issuer() {
        let body = r#"{"issuer":"https://idp.example","jwks_uri":"https://idp.example/jwks"}"#;
        assert_eq!(read_discovery(body, "https://idp.example").unwrap().as_str(), "https://idp.example/jwks");
        let err = read_discovery(body, "https://idp.example/").unwrap_err();
        assert!(err.contains("not the configured"), "{err}");
        assert!(read_discovery(r#"{"issuer":"x"}"#, "x").is_err());
    }

    #[test]
    fn an_https_issuer_never_sends_its_keys_over_http() {
        let body = r#"{"issuer":"https://idp.example","jwks_uri":"http://127.0.0.1:8080/jwks"}"#;
        assert_eq!(
            read_discovery(body, "https://idp.example").unwrap_err(),
            "jwks_uri: an https issuer's keys are fetched over https only"
        );
        // A loopback issuer for tests may use a loopback http jwks_uri.
        let body = r#"{"issuer":"http://127.0.0.1:9","jwks_uri":"http://127.0.0.1:9/jwks"}"#;
        assert!(read_discovery(body, "http://127.0.0.1:9").is_ok());
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let url = Url::parse("https://user:secret@idp.example:8443/realms/a/jwks?token=t0p#frag").unwrap();
        assert_eq!(Shown(&url).to_string(), "https://idp.example:8443/realms/a/jwks");
    }

    #[test]
    fn keys_are_fetched_over_https_or_from_loopback() {
        assert!(parse_url("https://idp.example/jwks").is_ok());
        for ok in ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks"] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        for bad in ["http://idp.example/jwks", "ftp://idp.example/jwks", "file:///etc/jwks.json", "not a url"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
