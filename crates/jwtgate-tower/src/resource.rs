//! A protected resource's identifier (RFC 8707 §2, RFC 9728 §1.2), in its canonical form, and the URL of its
//! metadata (RFC 9728 §3.1).

use std::fmt;
use std::str::FromStr;

use http::Uri;
use jwtgate_core::{ConfigError, ConfigErrorKind, ExpectedAudience};

/// The path that RFC 9728 §3.1 inserts between a resource's host and its path to locate its metadata.
pub const METADATA_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// A protected resource's identifier, such as `https://api.example.com` or `https://mcp.example.com/mcp`: the
/// value of the `aud` claim that tokens for it carry (RFC 8707), the `resource` of its metadata (RFC 9728), and
/// what MCP calls the server's canonical URI.
///
/// [`ResourceUri::parse`] keeps one form of each identifier, so that two spellings of one resource compare
/// equal:
/// - the scheme, `http` or `https`, and the host are lowercased;
/// - a default port (443 for `https`, 80 for `http`) is dropped;
/// - a path of `/` alone is dropped (`https://api.example.com/` is `https://api.example.com`), while any other
///   path is kept as written, a final slash included;
/// - a query is kept.
///
/// It refuses a relative reference, another scheme, credentials (`user@`), and a fragment, which RFC 8707 §2
/// forbids.
///
/// ```
/// use jwtgate_tower::ResourceUri;
///
/// let resource = ResourceUri::parse("HTTPS://MCP.Example.com:443/mcp")?;
/// assert_eq!(resource.as_str(), "https://mcp.example.com/mcp");
/// assert_eq!(resource.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
/// assert!(resource.is_audience("https://mcp.example.com/mcp"));
/// assert!(!resource.is_audience("https://mcp.example.com/other"));
/// # Ok::<(), jwtgate_core::ConfigError>(())
/// ```
///
/// A validator accepts tokens for the resource with `.audience(resource.clone())`: `aud` must then name it, as
/// [`is_audience`](Self::is_audience) compares.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResourceUri {
    /// The canonical form.
    canonical: String,
    /// Where the origin (`scheme://host[:port]`) ends in `canonical`.
    origin_end: usize,
}

impl ResourceUri {
    /// Parses and canonicalizes `uri` (see [`ResourceUri`]).
    pub fn parse(uri: &str) -> Result<Self, ConfigError> {
        Self::canonicalize(uri).map_err(|why| {
            ConfigError::new(ConfigErrorKind::Resource, format!("the resource identifier {}: {why}", Shown(uri)))
        })
    }

    fn canonicalize(uri: &str) -> Result<Self, &'static str> {
        if uri.contains('#') {
            return Err("has a fragment, which RFC 8707 §2 forbids");
        }
        let parsed = Uri::from_str(uri).map_err(|_| "is not a valid URI")?;
        let (Some(scheme), Some(authority)) = (parsed.scheme_str(), parsed.authority()) else {
            return Err("is not an absolute URI with a scheme and a host");
        };
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err("has a scheme other than https or http"),
        };
        if authority.as_str().contains('@') {
            return Err("holds credentials");
        }
        let host = authority.host();
        if host.is_empty() {
            return Err("has no host");
        }
        // `http` does not check the port: after the host there may be nothing, a bare `:`, or `:` and a number.
        let port = match authority.as_str().strip_prefix(host) {
            Some("" | ":") => None,
            Some(_) => Some(authority.port_u16().ok_or("has an invalid port")?),
            None => return Err("has an invalid authority"),
        };
        let mut canonical = format!("{scheme}://{}", host.to_ascii_lowercase());
        if let Some(port) = port.filter(|port| *port != default_port) {
            canonical.push_str(&format!(":{port}"));
        }
        let origin_end = canonical.len();
        let path = parsed.path();
        if path != "/" {
            canonical.push_str(path);
        }
        if let Some(query) = parsed.query() {
            canonical.push('?');
            canonical.push_str(query);
        }
        Ok(Self { canonical, origin_end })
    }

    /// The canonical form, such as `https://mcp.example.com/mcp`.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The origin, `scheme://host[:port]`.
    pub fn origin(&self) -> &str {
        &self.canonical[..self.origin_end]
    }

    /// The resource's path on its server, where it is mounted: `/mcp` for `https://host/mcp`, `/` for a
    /// resource without a path. Without the query.
    pub fn path(&self) -> &str {
        let rest = &self.canonical[self.origin_end..];
        match rest.split('?').next() {
            Some("") | None => "/",
            Some(path) => path,
        }
    }

    /// The path of the resource's metadata on its own server, for mounting the metadata service: the well-known
    /// path, then the resource's path and query (RFC 9728 §3.1). `/.well-known/oauth-protected-resource` for a
    /// resource without a path, `/.well-known/oauth-protected-resource/mcp` for `https://host/mcp`.
    pub fn metadata_path(&self) -> String {
        format!("{METADATA_WELL_KNOWN}{}", &self.canonical[self.origin_end..])
    }

    /// The URL of the resource's metadata (RFC 9728 §3.1): its origin, then [`metadata_path`](Self::metadata_path).
    /// Challenges name it in `resource_metadata`.
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.origin(), self.metadata_path())
    }

    /// Whether `aud`, one of a token's audiences, names this resource: equal once canonicalized, so that the
    /// scheme and the host compare without case, and `https://host/` equals `https://host`. The path and
    /// query compare exactly: a sibling resource (`https://host/mcp2`) is another audience.
    pub fn is_audience(&self, aud: &str) -> bool {
        aud == self.canonical || Self::canonicalize(aud).is_ok_and(|other| other.canonical == self.canonical)
    }
}

impl From<ResourceUri> for ExpectedAudience {
    fn from(resource: ResourceUri) -> Self {
        ExpectedAudience::with_comparison(resource.canonical, |canonical, aud| {
            ResourceUri::canonicalize(aud).is_ok_and(|other| other.canonical == canonical)
        })
    }
}

impl From<&ResourceUri> for ExpectedAudience {
    fn from(resource: &ResourceUri) -> Self {
        resource.clone().into()
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl fmt::Debug for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResourceUri").field(&self.canonical).finish()
    }
}

impl FromStr for ResourceUri {
    type Err = ConfigError;

    fn from_str(uri: &str) -> Result<Self, ConfigError> {
        Self::parse(uri)
    }
}

/// A resource identifier as an error shows it: its scheme, host, valid port and path, never a query or a
/// fragment, which may hold a secret; and nothing at all of a string with an `@` anywhere (credentials may
/// hide behind a `?` or a `#`, where a parser reads them as a host) or that is not a URI.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = self.0.find(['?', '#']).unwrap_or(self.0.len());
        let uri = match Uri::from_str(&self.0[..cut]) {
            Ok(uri) if !self.0.contains('@') => uri,
            _ => return f.write_str("(not shown)"),
        };
        match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                write!(f, "{scheme}://{}", authority.host())?;
                if let Some(port) = authority.port_u16() {
                    write!(f, ":{port}")?;
                }
                f.write_str(uri.path().trim_end_matches('/'))
            }
            _ => f.write_str("(not shown)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_resource_has_one_canonical_form() {
        for (uri, canonical) in [
            ("https://api.example.com", "https://api.example.com"),
            ("https://api.example.com/", "https://api.example.com"),
            ("HTTPS://API.Example.COM", "https://api.example.com"),
            ("https://api.example.com:443/mcp", "https://api.example.com/mcp"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("https://api.example.com:8443/mcp/", "https://api.example.com:8443/mcp/"),
            ("https://api.example.com/Path/Case", "https://api.example.com/Path/Case"),
            ("https://api.example.com/mcp?tenant=a", "https://api.example.com/mcp?tenant=a"),
            ("http://[::1]:3000/mcp", "http://[::1]:3000/mcp"),
            ("https://api.example.com:/mcp", "https://api.example.com/mcp"),
        ] {
            assert_eq!(ResourceUri::parse(uri).unwrap().as_str(), canonical, "{uri}");
        }
    }

    #[test]
    fn what_is_no_resource_identifier_is_refused_and_never_repeated_whole() {
        for (uri, message) in [
            ("api.example.com", "the resource identifier (not shown): is not an absolute URI with a scheme and a host"),
            ("/mcp", "the resource identifier (not shown): is not an absolute URI with a scheme and a host"),
            (
                "ftp://api.example.com",
                "the resource identifier ftp://api.example.com: has a scheme other than https or http",
            ),
            (
                "https://api.example.com/mcp#part",
                "the resource identifier https://api.example.com/mcp: has a fragment, which RFC 8707 §2 forbids",
            ),
            ("https://user:secret@api.example.com/mcp", "the resource identifier (not shown): holds credentials"),
            ("https://user:p?ss@api.example.com/mcp", "the resource identifier (not shown): has an invalid port"),
            (
                "https://user:p#ss@api.example.com/mcp",
                "the resource identifier (not shown): has a fragment, which RFC 8707 §2 forbids",
            ),
            (
                "https://api.example.com:8443x/mcp",
                "the resource identifier https://api.example.com/mcp: has an invalid port",
            ),
            ("https://api.example.com:99999", "the resource identifier https://api.example.com: has an invalid port"),
            ("not a uri at all", "the resource identifier (not shown): is not a valid URI"),
            ("", "the resource identifier (not shown): is not a valid URI"),
        ] {
            let error = ResourceUri::parse(uri).unwrap_err();
            assert_eq!(error.kind(), ConfigErrorKind::Resource, "{uri}");
            assert_eq!(error.to_string(), message, "{uri}");
        }
    }

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        for (uri, url) in [
            ("https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"),
            ("https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"),
            ("https://api.example.com/mcp", "https://api.example.com/.well-known/oauth-protected-resource/mcp"),
            (
                "https://api.example.com:8443/a/b",
                "https://api.example.com:8443/.well-known/oauth-protected-resource/a/b",
            ),
            ("https://api.example.com/r?t=1", "https://api.example.com/.well-known/oauth-protected-resource/r?t=1"),
        ] {
            assert_eq!(ResourceUri::parse(uri).unwrap().metadata_url(), url, "{uri}");
        }
        let resource = ResourceUri::parse("https://api.example.com/mcp").unwrap();
        assert_eq!(resource.metadata_path(), "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(resource.origin(), "https://api.example.com");
        assert_eq!(resource.path(), "/mcp");
        assert_eq!(ResourceUri::parse("https://api.example.com/").unwrap().path(), "/");
        assert_eq!(ResourceUri::parse("https://api.example.com?t=1").unwrap().path(), "/");
        assert_eq!(ResourceUri::parse("https://api.example.com/a/b?t=1").unwrap().path(), "/a/b");
    }

    #[test]
    fn an_audience_names_the_resource_in_any_spelling_of_its_scheme_and_host_only() {
        let resource = ResourceUri::parse("https://mcp.example.com/mcp").unwrap();
        for aud in ["https://mcp.example.com/mcp", "HTTPS://MCP.EXAMPLE.COM/mcp", "https://mcp.example.com:443/mcp"] {
            assert!(resource.is_audience(aud), "{aud}");
        }
        for aud in [
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com/mcp2",
            "https://mcp.example.com",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://mcp.example.com:junk/mcp",
            "https://evil.example/mcp",
            "mcp",
            "",
        ] {
            assert!(!resource.is_audience(aud), "{aud}");
        }
        let root = ResourceUri::parse("https://api.example.com").unwrap();
        assert!(root.is_audience("https://api.example.com/"));
        // The validator's audience compares as `is_audience` does.
        let expected = ExpectedAudience::from(&resource);
        assert_eq!(expected.as_str(), "https://mcp.example.com/mcp");
        assert!(expected.matches("HTTPS://MCP.EXAMPLE.COM/mcp") && !expected.matches("https://mcp.example.com/mcp2"));
    }
}
