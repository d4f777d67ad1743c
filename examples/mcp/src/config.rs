//! The example's configuration, read from `MCP_*` environment variables (see `README.md`).

use std::net::SocketAddr;
use std::path::PathBuf;

use jwtgate::KeySet;
use jwtgate::keys::AlgorithmMapping;
use jwtgate::resource::ResourceUri;

/// Where the keys that sign tokens come from.
pub(crate) enum Keys {
    /// `MCP_JWKS_FILE`.
    File(KeySet),
    /// `MCP_JWKS_URL`, fetched on demand.
    Url(String),
    /// `MCP_ISSUER`'s RFC 8414 metadata, else its OpenID configuration, fetched on demand.
    Discover(String),
    /// Nothing configured: an ephemeral HS256 key, for development only.
    Ephemeral,
}

pub(crate) struct Config {
    pub(crate) addr: SocketAddr,
    /// `MCP_RESOURCE`, when set; otherwise `http://` + the address the example listens on + `/mcp`.
    pub(crate) resource: Option<ResourceUri>,
    pub(crate) issuer: Option<String>,
    pub(crate) keys: Keys,
    pub(crate) authorization_servers: Vec<String>,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) tool_scopes: Vec<(String, Vec<String>)>,
    /// `MCP_DPOP`: `None` for `off`, else whether DPoP is `required`.
    pub(crate) dpop: Option<bool>,
    /// `MCP_ALLOWED_HOSTS`: `None` for any `Host`; an empty list for the default (see [`Config::allowed_hosts`]).
    hosts: Option<Vec<String>>,
}

impl Config {
    /// Reads the configuration through `var`, which returns a variable's value or `None` when it is unset.
    /// The error is one line that names the variable at fault, never a secret it holds.
    pub(crate) fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let addr = match var("MCP_ADDR") {
            Some(addr) => addr.parse().map_err(|_| format!("MCP_ADDR is not a socket address: {addr:?}"))?,
            None => SocketAddr::from(([127, 0, 0, 1], 3001)),
        };
        let resource = match var("MCP_RESOURCE") {
            Some(resource) => Some(ResourceUri::parse(&resource).map_err(|err| format!("MCP_RESOURCE: {err}"))?),
            None => None,
        };
        let issuer = var("MCP_ISSUER").filter(|issuer| !issuer.is_empty());
        let keys = match (var("MCP_JWKS_FILE"), var("MCP_JWKS_URL"), &issuer) {
            (Some(_), Some(_), _) => return Err("MCP_JWKS_FILE and MCP_JWKS_URL cannot both be set".into()),
            (Some(path), None, _) => Keys::File(
                KeySet::from_jwks_file(PathBuf::from(&path), &AlgorithmMapping::new())
                    .map_err(|err| format!("MCP_JWKS_FILE: {err}"))?,
            ),
            (None, Some(url), _) => Keys::Url(url),
            (None, None, Some(issuer)) => Keys::Discover(issuer.clone()),
            (None, None, None) => Keys::Ephemeral,
        };
        let authorization_servers = match var("MCP_AUTHORIZATION_SERVERS") {
            Some(servers) => list(&servers, ','),
            None => issuer.iter().cloned().collect(),
        };
        let scopes_supported = list(&var("MCP_SCOPES_SUPPORTED").unwrap_or_else(|| "mcp:read mcp:write".into()), ' ');
        let required_scopes = list(&var("MCP_REQUIRED_SCOPES").unwrap_or_default(), ' ');
        let tool_scopes = tool_scopes(&var("MCP_TOOL_SCOPES").unwrap_or_else(|| "admin-action=mcp:write".into()))?;
        let dpop = match var("MCP_DPOP").as_deref().map(str::trim) {
            None | Some("allowed") => Some(false),
            Some("required") => Some(true),
            Some("off") => None,
            Some(other) => return Err(format!("MCP_DPOP must be off, allowed or required, not {other:?}")),
        };
        let hosts = match var("MCP_ALLOWED_HOSTS") {
            Some(hosts) if hosts.trim() == "*" => None,
            Some(hosts) => {
                let hosts = list(&hosts, ',');
                if hosts.is_empty() {
                    return Err("MCP_ALLOWED_HOSTS names no host; use * for any".into());
                }
                Some(hosts)
            }
            None => Some(Vec::new()),
        };
        Ok(Self {
            addr,
            resource,
            issuer,
            keys,
            authorization_servers,
            scopes_supported,
            required_scopes,
            tool_scopes,
            dpop,
            hosts,
        })
    }

    /// The protected resource: `MCP_RESOURCE`, else `http://` + the address the example listens on
    /// (`bound`, with the port it was given when `MCP_ADDR` asks for any) + `/mcp`.
    pub(crate) fn resource(&self, bound: SocketAddr) -> Result<ResourceUri, String> {
        match &self.resource {
            Some(resource) => Ok(resource.clone()),
            None => ResourceUri::parse(&format!("http://{bound}/mcp")).map_err(|err| err.to_string()),
        }
    }

    /// The `Host` values accepted (an entry without a port matches any port), `None` for any: `MCP_ALLOWED_HOSTS`,
    /// else `localhost`, `127.0.0.1` and the host of `resource`.
    pub(crate) fn allowed_hosts(&self, resource: &ResourceUri) -> Option<Vec<String>> {
        let mut hosts = self.hosts.clone()?;
        if hosts.is_empty() {
            hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            if let Some(host) = host_of(resource.origin()).filter(|host| !hosts.contains(host)) {
                hosts.push(host);
            }
        }
        Some(hosts)
    }

    /// The scopes a 401 for missing credentials asks for: `MCP_REQUIRED_SCOPES`, else `MCP_SCOPES_SUPPORTED`.
    pub(crate) fn challenge_scopes(&self) -> &[String] {
        if self.required_scopes.is_empty() { &self.scopes_supported } else { &self.required_scopes }
    }
}

/// The items of `value` split at `separator`, trimmed, without empty ones.
fn list(value: &str, separator: char) -> Vec<String> {
    value.split(separator).map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

/// `tool=scope scope,tool=scope`.
fn tool_scopes(value: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    list(value, ',')
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((tool, scopes)) if !tool.trim().is_empty() && !list(scopes, ' ').is_empty() => {
                Ok((tool.trim().to_owned(), list(scopes, ' ')))
            }
            _ => Err(format!("MCP_TOOL_SCOPES: {entry:?} is not tool=scope [scope...]")),
        })
        .collect()
}

/// The host of an origin `scheme://host[:port]`, without the port.
fn host_of(origin: &str) -> Option<String> {
    let authority = origin.split_once("://")?.1;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => authority.split(':').next()?,
    };
    Some(host.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = config(&[]).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:3001");
        assert_eq!(config.resource(config.addr).unwrap().as_str(), "http://127.0.0.1:3001/mcp");
        assert!(matches!(config.keys, Keys::Ephemeral));
        assert_eq!(config.scopes_supported, ["mcp:read", "mcp:write"]);
        assert_eq!(config.challenge_scopes(), ["mcp:read", "mcp:write"]);
        assert_eq!(config.tool_scopes, [("admin-action".to_owned(), vec!["mcp:write".to_owned()])]);
        let resource = config.resource(config.addr).unwrap();
        assert_eq!(config.allowed_hosts(&resource).unwrap(), ["localhost", "127.0.0.1"]);
        assert!(config.authorization_servers.is_empty());
    }

    #[test]
    fn every_variable_is_read() {
        let config = config(&[
            ("MCP_RESOURCE", "https://MCP.example.com/mcp"),
            ("MCP_ISSUER", "https://auth.example.com"),
            ("MCP_SCOPES_SUPPORTED", "a b"),
            ("MCP_REQUIRED_SCOPES", "a"),
            ("MCP_TOOL_SCOPES", "x=b c, y = a"),
            ("MCP_DPOP", "off"),
        ])
        .unwrap();
        assert_eq!(config.resource.as_ref().unwrap().as_str(), "https://mcp.example.com/mcp");
        assert!(matches!(config.keys, Keys::Discover(ref issuer) if issuer == "https://auth.example.com"));
        assert_eq!(config.authorization_servers, ["https://auth.example.com"]);
        assert_eq!(config.challenge_scopes(), ["a"]);
        assert_eq!(config.tool_scopes[1], ("y".to_owned(), vec!["a".to_owned()]));
        assert_eq!(config.dpop, None);
        assert_eq!(self::config(&[]).unwrap().dpop, Some(false), "allowed by default");
        assert_eq!(self::config(&[("MCP_DPOP", "required")]).unwrap().dpop, Some(true));
        let resource = config.resource(config.addr).unwrap();
        assert_eq!(config.allowed_hosts(&resource).unwrap(), ["localhost", "127.0.0.1", "mcp.example.com"]);
        let any = self::config(&[("MCP_ALLOWED_HOSTS", "*")]).unwrap();
        assert!(any.allowed_hosts(&resource).is_none());
        let listed = self::config(&[("MCP_ALLOWED_HOSTS", "a.test, b.test:8443")]).unwrap();
        assert_eq!(listed.allowed_hosts(&resource).unwrap(), ["a.test", "b.test:8443"]);
    }

    #[test]
    fn misconfigurations_are_one_line_errors_naming_the_variable() {
        for (vars, expected) in [
            (vec![("MCP_ADDR", "nope")], "MCP_ADDR is not a socket address"),
            (vec![("MCP_RESOURCE", "mcp")], "MCP_RESOURCE: the resource identifier"),
            (vec![("MCP_JWKS_FILE", "/nonexistent.json")], "MCP_JWKS_FILE: cannot read"),
            (vec![("MCP_JWKS_FILE", "a"), ("MCP_JWKS_URL", "b")], "cannot both be set"),
            (vec![("MCP_TOOL_SCOPES", "admin-action")], "MCP_TOOL_SCOPES"),
            (vec![("MCP_TOOL_SCOPES", "x=")], "MCP_TOOL_SCOPES"),
            (vec![("MCP_DPOP", "sometimes")], "MCP_DPOP must be off, allowed or required"),
            (vec![("MCP_ALLOWED_HOSTS", " , ")], "MCP_ALLOWED_HOSTS names no host"),
        ] {
            let err = config(&vars).err().unwrap_or_else(|| panic!("{vars:?} was accepted"));
            assert!(err.contains(expected), "{vars:?}: {err}");
            assert!(!err.contains('\n'));
        }
    }
}
