//! The demo's configuration, read from `JWTGATE_*` environment variables (see examples/demo/README.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jwtgate::jwe::DecryptionKeys;
use jwtgate::resource::ResourceUri;
use jwtgate::{KeySet, Secret, keys::AlgorithmMapping};

/// Where the verification keys come from.
pub(crate) enum Keys {
    /// A JWK Set file.
    File(KeySet),
    /// A remote JWK Set, with the keys of a file if one is set too.
    Remote { file: Option<KeySet>, remote: Remote },
    /// No keys configured: an ephemeral HS256 secret, for development only.
    Ephemeral(Secret),
    /// No keys configured, and an introspection endpoint: opaque tokens only, no ephemeral key.
    None,
}

/// `JWTGATE_INTROSPECTION_*`: opaque tokens, asked about at the authorization server (RFC 7662).
pub(crate) struct IntrospectionSettings {
    pub(crate) url: String,
    /// The demo's client id and secret, sent as HTTP Basic.
    pub(crate) client: Option<(String, Secret)>,
    /// How long an active answer is reused, never past the token's `exp`.
    pub(crate) cache: Duration,
}

/// A remote JWK Set: where it is, and how often it is fetched.
pub(crate) struct Remote {
    pub(crate) location: Location,
    pub(crate) cooldown: Duration,
    pub(crate) refresh: Duration,
}

pub(crate) enum Location {
    /// `JWTGATE_JWKS_URL`.
    Jwks(String),
    /// `JWTGATE_OIDC_ISSUER`, discovered.
    Discover(String),
}

/// Where revocations are stored.
pub(crate) enum Revocations {
    /// This process's memory.
    Memory,
    /// Redis, asked on every request (`JWTGATE_REDIS_MODE` unset or `direct`).
    Redis(RedisAt),
    /// A local replica kept in sync with Redis, trusted for this long without hearing from Redis
    /// (`JWTGATE_REDIS_MODE=replicated`).
    Replicated { at: RedisAt, staleness: Duration },
}

/// Where Redis is.
pub(crate) enum RedisAt {
    /// One server, `JWTGATE_REDIS_URL`.
    Url(String),
    /// A Redis Cluster's seed nodes, `JWTGATE_REDIS_CLUSTER_URLS`.
    Cluster(Vec<String>),
}

pub(crate) struct Config {
    pub(crate) addr: SocketAddr,
    pub(crate) keys: Keys,
    pub(crate) issuer: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: Duration,
    pub(crate) cookie: String,
    pub(crate) max_token_bytes: usize,
    pub(crate) revocations: Revocations,
    /// `JWTGATE_PUBLIC_URL`, when set: the demo's origin as clients reach it.
    pub(crate) public_url: Option<ResourceUri>,
    /// `JWTGATE_RESOURCE`, when set: the protected resource's identifier.
    pub(crate) resource: Option<ResourceUri>,
    /// What `GET /sensitive` asks of the user's authentication.
    pub(crate) step_up: StepUp,
    /// DPoP (RFC 9449).
    pub(crate) dpop: DpopSettings,
    /// Opaque tokens (RFC 7662).
    pub(crate) introspection: Option<IntrospectionSettings>,
    /// `JWTGATE_REDIS_WAIT_REPLICAS`: how many replicas must hold a revocation before it is confirmed.
    pub(crate) wait_replicas: u32,
    /// Encrypted tokens: `JWTGATE_JWE_KEYS_FILE` and `JWTGATE_JWE_REQUIRED`.
    pub(crate) jwe: Option<JweSettings>,
}

/// `JWTGATE_JWE_KEYS_FILE` and `JWTGATE_JWE_REQUIRED`.
pub(crate) struct JweSettings {
    /// The private keys that decrypt tokens.
    pub(crate) keys: DecryptionKeys,
    /// Whether a token that is not encrypted is refused.
    pub(crate) required: bool,
}

/// `JWTGATE_DPOP`, `JWTGATE_DPOP_NONCE` and `JWTGATE_DPOP_IAT_SECS`.
pub(crate) struct DpopSettings {
    /// `None` for `off`; otherwise whether DPoP is `required`.
    pub(crate) required: Option<bool>,
    /// Whether proofs must carry a nonce the demo issued.
    pub(crate) nonce: bool,
    /// How far a proof's `iat` may be from the clock.
    pub(crate) iat_window: Duration,
}

/// What `GET /sensitive` asks of the user's authentication (RFC 9470).
pub(crate) struct StepUp {
    /// `JWTGATE_STEP_UP_ACR`.
    pub(crate) acr: String,
    /// `JWTGATE_STEP_UP_MAX_AGE_SECS`.
    pub(crate) max_age: Duration,
}

impl Config {
    /// Reads the configuration through `var`, which returns a variable's value or `None` when it is unset.
    /// The error is one line that names the problem.
    pub(crate) fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        if var("JWTGATE_OIDC_ISSUER").is_some() && var("JWTGATE_JWKS_URL").is_some() {
            return Err("JWTGATE_OIDC_ISSUER and JWTGATE_JWKS_URL cannot both be set".into());
        }
        if let (Some(oidc), Some(issuer)) = (var("JWTGATE_OIDC_ISSUER"), var("JWTGATE_ISSUER"))
            && oidc != issuer
        {
            return Err("JWTGATE_ISSUER differs from JWTGATE_OIDC_ISSUER".into());
        }
        let cooldown = Duration::from_secs(number(&var, "JWTGATE_JWKS_COOLDOWN_SECS", 10)?);
        let refresh = Duration::from_secs(number(&var, "JWTGATE_JWKS_REFRESH_SECS", 300)?);
        if refresh.is_zero() {
            return Err("JWTGATE_JWKS_REFRESH_SECS must be positive".into());
        }

        let addr = match var("JWTGATE_ADDR") {
            Some(addr) => addr.parse().map_err(|_| format!("JWTGATE_ADDR is not a socket address: {addr:?}"))?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };
        let file = match var("JWTGATE_JWKS_FILE") {
            Some(path) => {
                let set = KeySet::from_jwks_file(PathBuf::from(&path), &AlgorithmMapping::new())
                    .map_err(|err| format!("JWTGATE_JWKS_FILE: {err}"))?;
                if let Some(index) = set.keys().iter().position(|key| key.kid().is_none()) {
                    return Err(format!("JWTGATE_JWKS_FILE: {path}: keys[{index}] has no kid"));
                }
                Some(set)
            }
            None => None,
        };
        let oidc_issuer = var("JWTGATE_OIDC_ISSUER");
        let location = match (var("JWTGATE_JWKS_URL"), &oidc_issuer) {
            (Some(url), _) => Some(Location::Jwks(url)),
            (None, Some(issuer)) => Some(Location::Discover(issuer.clone())),
            (None, None) => None,
        };
        let remote = location.map(|location| Remote { location, cooldown, refresh });
        let introspection = introspection(&var)?;
        let jwe = jwe(&var)?;
        let keys = match (file, remote) {
            (file, Some(remote)) => Keys::Remote { file, remote },
            (Some(file), None) => Keys::File(file),
            // An encrypted token holds a signed one, whose signature needs keys that introspection alone lacks.
            (None, None) if introspection.is_some() && jwe.is_some() => {
                return Err("JWTGATE_JWE_KEYS_FILE needs signing keys for the tokens inside: set JWTGATE_JWKS_FILE, \
                            JWTGATE_JWKS_URL or JWTGATE_OIDC_ISSUER"
                    .into());
            }
            (None, None) if introspection.is_some() => Keys::None,
            (None, None) => Keys::Ephemeral(ephemeral_secret()?),
        };
        // Discovery sets the issuer.
        let issuer = oidc_issuer.or_else(|| var("JWTGATE_ISSUER")).unwrap_or_else(|| "jwtgate-demo".into());
        let audiences: Vec<String> = var("JWTGATE_AUDIENCE")
            .unwrap_or_else(|| "jwtgate-demo".into())
            .split(',')
            .map(str::trim)
            .filter(|aud| !aud.is_empty())
            .map(String::from)
            .collect();
        if audiences.is_empty() {
            return Err("JWTGATE_AUDIENCE names no audience".into());
        }
        let leeway = Duration::from_secs(number(&var, "JWTGATE_LEEWAY_SECS", 30)?);
        let cookie = var("JWTGATE_COOKIE").unwrap_or_else(|| "access_token".into());
        if cookie.is_empty() || !cookie.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)) {
            return Err(format!("JWTGATE_COOKIE is not a valid cookie name: {cookie:?}"));
        }
        let max_token_bytes = number(&var, "JWTGATE_MAX_TOKEN_BYTES", 8192)?;
        if max_token_bytes == 0 {
            return Err("JWTGATE_MAX_TOKEN_BYTES must be positive".into());
        }
        let revocations = revocations(&var)?;
        let wait_replicas = number(&var, "JWTGATE_REDIS_WAIT_REPLICAS", 0)?;
        if wait_replicas > 0 && matches!(revocations, Revocations::Memory) {
            return Err("JWTGATE_REDIS_WAIT_REPLICAS needs JWTGATE_REDIS_URL or JWTGATE_REDIS_CLUSTER_URLS".into());
        }
        let public_url = match var("JWTGATE_PUBLIC_URL") {
            Some(url) => {
                let url = ResourceUri::parse(&url).map_err(|err| format!("JWTGATE_PUBLIC_URL: {err}"))?;
                if url.as_str() != url.origin() {
                    return Err("JWTGATE_PUBLIC_URL must be an origin (scheme://host[:port]), with no path".into());
                }
                Some(url)
            }
            None => None,
        };
        let resource = match var("JWTGATE_RESOURCE") {
            Some(resource) => {
                let resource = ResourceUri::parse(&resource).map_err(|err| format!("JWTGATE_RESOURCE: {err}"))?;
                let origin =
                    public_url.as_ref().map_or_else(|| format!("http://{addr}"), |url| url.origin().to_owned());
                if ResourceUri::parse(&origin).ok().as_ref().map(ResourceUri::origin) != Some(resource.origin()) {
                    return Err("JWTGATE_RESOURCE must have the origin of JWTGATE_PUBLIC_URL".into());
                }
                Some(resource)
            }
            None => None,
        };
        let acr = var("JWTGATE_STEP_UP_ACR").unwrap_or_else(|| "urn:jwtgate:mfa".into());
        if acr.is_empty() {
            return Err("JWTGATE_STEP_UP_ACR is empty".into());
        }
        let max_age = Duration::from_secs(number(&var, "JWTGATE_STEP_UP_MAX_AGE_SECS", 300)?);
        let step_up = StepUp { acr, max_age };
        let dpop = dpop(&var)?;
        Ok(Self {
            addr,
            keys,
            issuer,
            audiences,
            leeway,
            cookie,
            max_token_bytes,
            revocations,
            public_url,
            resource,
            step_up,
            dpop,
            introspection,
            wait_replicas,
            jwe,
        })
    }

    /// The demo's origin as clients reach it: `JWTGATE_PUBLIC_URL`, else `http://` and the address it listens
    /// on. The base of DPoP's `htu`.
    pub(crate) fn origin(&self, bound: SocketAddr) -> String {
        self.public_url.as_ref().map_or_else(|| format!("http://{bound}"), |url| url.origin().to_owned())
    }

    /// Where Redis is, when revocations are stored there: the DPoP replay store shares it.
    pub(crate) fn redis(&self) -> Option<&RedisAt> {
        match &self.revocations {
            Revocations::Memory => None,
            Revocations::Redis(at) | Revocations::Replicated { at, .. } => Some(at),
        }
    }

    /// The protected resource: `JWTGATE_RESOURCE`, else `JWTGATE_PUBLIC_URL`, else `http://` and the address
    /// the demo listens on (`bound`, the port it was given when `JWTGATE_ADDR` asks for any).
    pub(crate) fn resource(&self, bound: SocketAddr) -> Result<ResourceUri, String> {
        match (&self.resource, &self.public_url) {
            (Some(resource), _) | (None, Some(resource)) => Ok(resource.clone()),
            (None, None) => ResourceUri::parse(&format!("http://{bound}"))
                .map_err(|err| format!("the listen address is no URL origin: {err}")),
        }
    }
}

fn revocations(var: &impl Fn(&str) -> Option<String>) -> Result<Revocations, String> {
    let url = match (var("JWTGATE_REDIS_URL"), var("JWTGATE_REDIS_CLUSTER_URLS")) {
        (Some(_), Some(_)) => {
            return Err("JWTGATE_REDIS_URL and JWTGATE_REDIS_CLUSTER_URLS cannot both be set".into());
        }
        (Some(url), None) => Some(RedisAt::Url(url)),
        (None, Some(urls)) => {
            let nodes: Vec<String> =
                urls.split(',').map(str::trim).filter(|url| !url.is_empty()).map(String::from).collect();
            if nodes.is_empty() {
                return Err("JWTGATE_REDIS_CLUSTER_URLS names no node".into());
            }
            Some(RedisAt::Cluster(nodes))
        }
        (None, None) => None,
    };
    let staleness = match var("JWTGATE_REDIS_STALE_SECS") {
        Some(_) => Some(number::<u64>(var, "JWTGATE_REDIS_STALE_SECS", 5)?),
        None => None,
    };
    if staleness == Some(0) {
        return Err("JWTGATE_REDIS_STALE_SECS must be positive".into());
    }
    match (var("JWTGATE_REDIS_MODE").as_deref(), url) {
        (Some("replicated"), Some(at)) => {
            Ok(Revocations::Replicated { at, staleness: Duration::from_secs(staleness.unwrap_or(5)) })
        }
        (Some("replicated"), None) => {
            Err("JWTGATE_REDIS_MODE=replicated needs JWTGATE_REDIS_URL or JWTGATE_REDIS_CLUSTER_URLS".into())
        }
        (Some(mode), _) if mode != "direct" => {
            Err(format!("JWTGATE_REDIS_MODE must be direct or replicated, not {mode:?}"))
        }
        _ if staleness.is_some() => Err("JWTGATE_REDIS_STALE_SECS needs JWTGATE_REDIS_MODE=replicated".into()),
        (Some(_), None) => Err("JWTGATE_REDIS_MODE needs JWTGATE_REDIS_URL or JWTGATE_REDIS_CLUSTER_URLS".into()),
        (_, Some(at)) => Ok(Revocations::Redis(at)),
        (None, None) => Ok(Revocations::Memory),
    }
}

fn jwe(var: &impl Fn(&str) -> Option<String>) -> Result<Option<JweSettings>, String> {
    let required = match var("JWTGATE_JWE_REQUIRED").as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(format!("JWTGATE_JWE_REQUIRED must be true or false, not {other:?}")),
    };
    match var("JWTGATE_JWE_KEYS_FILE") {
        Some(path) => {
            let keys = DecryptionKeys::from_jwks_file(PathBuf::from(&path))
                .map_err(|err| format!("JWTGATE_JWE_KEYS_FILE: {err}"))?;
            Ok(Some(JweSettings { keys, required }))
        }
        None if required => Err("JWTGATE_JWE_REQUIRED=true needs JWTGATE_JWE_KEYS_FILE".into()),
        None => Ok(None),
    }
}

fn introspection(var: &impl Fn(&str) -> Option<String>) -> Result<Option<IntrospectionSettings>, String> {
    let cache = Duration::from_secs(number(var, "JWTGATE_INTROSPECTION_CACHE_SECS", 30)?);
    let client = match (var("JWTGATE_INTROSPECTION_CLIENT_ID"), var("JWTGATE_INTROSPECTION_CLIENT_SECRET")) {
        (Some(id), Some(secret)) => Some((id, Secret::new(secret))),
        (None, None) => None,
        (Some(_), None) => {
            return Err("JWTGATE_INTROSPECTION_CLIENT_ID needs JWTGATE_INTROSPECTION_CLIENT_SECRET".into());
        }
        (None, Some(_)) => {
            return Err("JWTGATE_INTROSPECTION_CLIENT_SECRET needs JWTGATE_INTROSPECTION_CLIENT_ID".into());
        }
    };
    let Some(url) = var("JWTGATE_INTROSPECTION_URL") else {
        let set = ["JWTGATE_INTROSPECTION_CLIENT_ID", "JWTGATE_INTROSPECTION_CACHE_SECS"]
            .into_iter()
            .find(|name| var(name).is_some());
        return match set {
            Some(name) => Err(format!("{name} needs JWTGATE_INTROSPECTION_URL")),
            None => Ok(None),
        };
    };
    Ok(Some(IntrospectionSettings { url, client, cache }))
}

fn dpop(var: &impl Fn(&str) -> Option<String>) -> Result<DpopSettings, String> {
    let required = match var("JWTGATE_DPOP").as_deref().map(str::trim) {
        None | Some("allowed") => Some(false),
        Some("required") => Some(true),
        Some("off") => None,
        Some(other) => return Err(format!("JWTGATE_DPOP must be off, allowed or required, not {other:?}")),
    };
    let nonce = match var("JWTGATE_DPOP_NONCE").as_deref().map(str::trim) {
        None | Some("off") => false,
        Some("on") => true,
        Some(other) => return Err(format!("JWTGATE_DPOP_NONCE must be on or off, not {other:?}")),
    };
    let iat_window = Duration::from_secs(number(var, "JWTGATE_DPOP_IAT_SECS", 60)?);
    if iat_window.is_zero() {
        return Err("JWTGATE_DPOP_IAT_SECS must be positive".into());
    }
    Ok(DpopSettings { required, nonce, iat_window })
}

fn number<T: std::str::FromStr>(var: &impl Fn(&str) -> Option<String>, name: &str, default: T) -> Result<T, String> {
    match var(name) {
        Some(value) => value.trim().parse().map_err(|_| format!("{name} is not a non-negative integer: {value:?}")),
        None => Ok(default),
    }
}

fn ephemeral_secret() -> Result<Secret, String> {
    let mut bytes = vec![0; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "cannot generate a random development key".to_owned())?;
    Ok(Secret::new(bytes))
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
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(
            (config.issuer.as_str(), config.audiences.as_slice()),
            ("jwtgate-demo", &["jwtgate-demo".into()][..])
        );
        assert_eq!(
            (config.leeway.as_secs(), config.cookie.as_str(), config.max_token_bytes),
            (30, "access_token", 8192)
        );
        assert!(matches!(config.keys, Keys::Ephemeral(_)));
        assert_eq!(config.resource("127.0.0.1:3000".parse().unwrap()).unwrap().as_str(), "http://127.0.0.1:3000");
        assert_eq!((config.step_up.acr.as_str(), config.step_up.max_age.as_secs()), ("urn:jwtgate:mfa", 300));
    }

    #[test]
    fn the_resource_follows_the_contract() {
        let bound = "127.0.0.1:4000".parse().unwrap();
        let public = config(&[("JWTGATE_PUBLIC_URL", "https://API.example.com:443/")]).unwrap();
        assert_eq!(public.resource(bound).unwrap().as_str(), "https://api.example.com");
        let resource = config(&[
            ("JWTGATE_PUBLIC_URL", "https://api.example.com"),
            ("JWTGATE_RESOURCE", "https://api.example.com/v1"),
        ])
        .unwrap();
        assert_eq!(resource.resource(bound).unwrap().as_str(), "https://api.example.com/v1");
        let on_addr = config(&[("JWTGATE_ADDR", "127.0.0.1:4000"), ("JWTGATE_RESOURCE", "http://127.0.0.1:4000/r")]);
        assert_eq!(on_addr.unwrap().resource(bound).unwrap().as_str(), "http://127.0.0.1:4000/r");
        let step_up = config(&[("JWTGATE_STEP_UP_ACR", "urn:hwk"), ("JWTGATE_STEP_UP_MAX_AGE_SECS", "60")]).unwrap();
        assert_eq!((step_up.step_up.acr.as_str(), step_up.step_up.max_age.as_secs()), ("urn:hwk", 60));
    }

    #[test]
    fn remote_keys_follow_the_contract() {
        let discovered = config(&[("JWTGATE_OIDC_ISSUER", "https://idp.test/realm")]).unwrap();
        assert_eq!(discovered.issuer, "https://idp.test/realm", "discovery sets the issuer");
        let Keys::Remote { file: None, remote } = discovered.keys else { panic!("remote keys only") };
        assert!(matches!(remote.location, Location::Discover(ref issuer) if issuer == "https://idp.test/realm"));
        assert_eq!((remote.cooldown.as_secs(), remote.refresh.as_secs()), (10, 300));

        let url = config(&[
            ("JWTGATE_JWKS_URL", "https://idp.test/jwks"),
            ("JWTGATE_JWKS_COOLDOWN_SECS", "3"),
            ("JWTGATE_JWKS_REFRESH_SECS", "60"),
        ])
        .unwrap();
        assert_eq!(url.issuer, "jwtgate-demo");
        let Keys::Remote { remote, .. } = url.keys else { panic!("remote keys") };
        assert!(matches!(remote.location, Location::Jwks(ref url) if url == "https://idp.test/jwks"));
        assert_eq!((remote.cooldown.as_secs(), remote.refresh.as_secs()), (3, 60));

        let same = config(&[("JWTGATE_OIDC_ISSUER", "https://a.test"), ("JWTGATE_ISSUER", "https://a.test")]);
        assert_eq!(same.unwrap().issuer, "https://a.test");
    }

    #[test]
    fn revocations_follow_the_contract() {
        assert!(matches!(config(&[]).unwrap().revocations, Revocations::Memory));
        let direct = config(&[("JWTGATE_REDIS_URL", "redis://r")]).unwrap();
        assert!(matches!(direct.revocations, Revocations::Redis(RedisAt::Url(ref url)) if url == "redis://r"));
        let direct = config(&[("JWTGATE_REDIS_URL", "redis://r"), ("JWTGATE_REDIS_MODE", "direct")]).unwrap();
        assert!(matches!(direct.revocations, Revocations::Redis(_)));
        let replicated = config(&[("JWTGATE_REDIS_URL", "redis://r"), ("JWTGATE_REDIS_MODE", "replicated")]).unwrap();
        assert!(matches!(
            replicated.revocations,
            Revocations::Replicated { at: RedisAt::Url(ref url), staleness } if url == "redis://r" && staleness.as_secs() == 5
        ));
        let replicated = config(&[
            ("JWTGATE_REDIS_URL", "redis://r"),
            ("JWTGATE_REDIS_MODE", "replicated"),
            ("JWTGATE_REDIS_STALE_SECS", "2"),
        ])
        .unwrap();
        assert!(
            matches!(replicated.revocations, Revocations::Replicated { staleness, .. } if staleness.as_secs() == 2)
        );
        let cluster = config(&[("JWTGATE_REDIS_CLUSTER_URLS", "redis://a:7000, redis://b:7001,")]).unwrap();
        assert!(matches!(cluster.revocations, Revocations::Redis(RedisAt::Cluster(ref nodes)) if nodes.len() == 2));
        for vars in [
            &[("JWTGATE_REDIS_URL", "redis://r"), ("JWTGATE_REDIS_CLUSTER_URLS", "redis://a:7000")][..],
            &[("JWTGATE_REDIS_CLUSTER_URLS", " , ")],
            &[("JWTGATE_REDIS_WAIT_REPLICAS", "1")],
            &[("JWTGATE_REDIS_URL", "redis://r"), ("JWTGATE_REDIS_WAIT_REPLICAS", "one")],
        ] {
            assert!(config(vars).is_err(), "{vars:?}");
        }
        let waiting = config(&[("JWTGATE_REDIS_CLUSTER_URLS", "redis://a:7000"), ("JWTGATE_REDIS_WAIT_REPLICAS", "1")]);
        assert_eq!(waiting.unwrap().wait_replicas, 1);
    }

    #[test]
    fn jwe_settings_follow_the_contract() {
        assert!(config(&[]).unwrap().jwe.is_none());
        for (vars, error) in [
            (&[("JWTGATE_JWE_REQUIRED", "yes")][..], "JWTGATE_JWE_REQUIRED must be true or false"),
            (&[("JWTGATE_JWE_REQUIRED", "true")], "JWTGATE_JWE_REQUIRED=true needs JWTGATE_JWE_KEYS_FILE"),
            (&[("JWTGATE_JWE_KEYS_FILE", "/nonexistent/jwe.json")], "JWTGATE_JWE_KEYS_FILE: cannot read"),
        ] {
            let err = config(vars).err().unwrap_or_else(|| panic!("{vars:?} was accepted"));
            assert!(err.starts_with(error), "{err}");
        }
        assert!(config(&[("JWTGATE_JWE_REQUIRED", "false")]).unwrap().jwe.is_none());
    }

    #[test]
    fn dpop_settings_follow_the_contract() {
        let defaults = config(&[]).unwrap().dpop;
        assert_eq!((defaults.required, defaults.nonce, defaults.iat_window.as_secs()), (Some(false), false, 60));
        let set = config(&[("JWTGATE_DPOP", "required"), ("JWTGATE_DPOP_NONCE", "on"), ("JWTGATE_DPOP_IAT_SECS", "5")])
            .unwrap()
            .dpop;
        assert_eq!((set.required, set.nonce, set.iat_window.as_secs()), (Some(true), true, 5));
        assert_eq!(config(&[("JWTGATE_DPOP", "off")]).unwrap().dpop.required, None);
        for (vars, error) in [
            (("JWTGATE_DPOP", "yes"), "JWTGATE_DPOP must be off, allowed or required"),
            (("JWTGATE_DPOP_NONCE", "1"), "JWTGATE_DPOP_NONCE must be on or off"),
            (("JWTGATE_DPOP_IAT_SECS", "0"), "JWTGATE_DPOP_IAT_SECS must be positive"),
            (("JWTGATE_DPOP_IAT_SECS", "-1"), "JWTGATE_DPOP_IAT_SECS is not a non-negative integer"),
        ] {
            let err = config(&[vars]).err().unwrap_or_else(|| panic!("{vars:?} was accepted"));
            assert!(err.starts_with(error), "{err}");
        }
    }

    #[test]
    fn audiences_are_a_comma_separated_list() {
        let config = config(&[("JWTGATE_AUDIENCE", "a, b,,c")]).unwrap();
        assert_eq!(config.audiences, ["a", "b", "c"]);
    }

    #[test]
    fn misconfigurations_are_one_line_errors() {
        for (vars, expected) in [
            (vec![("JWTGATE_ADDR", "nope")], "JWTGATE_ADDR is not a socket address"),
            (vec![("JWTGATE_LEEWAY_SECS", "-1")], "JWTGATE_LEEWAY_SECS is not a non-negative integer"),
            (
                vec![("JWTGATE_JWKS_FILE", "/nonexistent/jwks.json")],
                "JWTGATE_JWKS_FILE: cannot read /nonexistent/jwks.json",
            ),
            (vec![("JWTGATE_JWKS_REFRESH_SECS", "0")], "JWTGATE_JWKS_REFRESH_SECS must be positive"),
            (vec![("JWTGATE_JWKS_COOLDOWN_SECS", "ten")], "JWTGATE_JWKS_COOLDOWN_SECS is not a non-negative integer"),
            (vec![("JWTGATE_OIDC_ISSUER", "https://a"), ("JWTGATE_JWKS_URL", "https://b")], "cannot both be set"),
            (vec![("JWTGATE_OIDC_ISSUER", "https://a"), ("JWTGATE_ISSUER", "https://b")], "differs"),
            (vec![("JWTGATE_COOKIE", "a b")], "JWTGATE_COOKIE is not a valid cookie name"),
            (vec![("JWTGATE_PUBLIC_URL", "api.example.com")], "JWTGATE_PUBLIC_URL: the resource identifier"),
            (vec![("JWTGATE_PUBLIC_URL", "https://api.example.com/v1")], "JWTGATE_PUBLIC_URL must be an origin"),
            (vec![("JWTGATE_RESOURCE", "https://a#b")], "JWTGATE_RESOURCE: the resource identifier"),
            (
                vec![("JWTGATE_PUBLIC_URL", "https://a.example"), ("JWTGATE_RESOURCE", "https://b.example/r")],
                "JWTGATE_RESOURCE must have the origin of JWTGATE_PUBLIC_URL",
            ),
            (vec![("JWTGATE_RESOURCE", "https://b.example/r")], "JWTGATE_RESOURCE must have the origin"),
            (vec![("JWTGATE_STEP_UP_ACR", "")], "JWTGATE_STEP_UP_ACR is empty"),
            (
                vec![("JWTGATE_STEP_UP_MAX_AGE_SECS", "5m")],
                "JWTGATE_STEP_UP_MAX_AGE_SECS is not a non-negative integer",
            ),
            (vec![("JWTGATE_REDIS_MODE", "replicated")], "JWTGATE_REDIS_MODE=replicated needs JWTGATE_REDIS_URL"),
            (vec![("JWTGATE_REDIS_MODE", "direct")], "JWTGATE_REDIS_MODE needs JWTGATE_REDIS_URL"),
            (
                vec![("JWTGATE_REDIS_URL", "redis://r"), ("JWTGATE_REDIS_MODE", "fast")],
                "JWTGATE_REDIS_MODE must be direct or replicated",
            ),
            (
                vec![("JWTGATE_REDIS_URL", "redis://r"), ("JWTGATE_REDIS_STALE_SECS", "5")],
                "JWTGATE_REDIS_STALE_SECS needs JWTGATE_REDIS_MODE=replicated",
            ),
            (
                vec![
                    ("JWTGATE_REDIS_URL", "redis://r"),
                    ("JWTGATE_REDIS_MODE", "replicated"),
                    ("JWTGATE_REDIS_STALE_SECS", "0"),
                ],
                "JWTGATE_REDIS_STALE_SECS must be positive",
            ),
            (
                vec![
                    ("JWTGATE_REDIS_URL", "redis://r"),
                    ("JWTGATE_REDIS_MODE", "replicated"),
                    ("JWTGATE_REDIS_STALE_SECS", "x"),
                ],
                "JWTGATE_REDIS_STALE_SECS is not a non-negative integer",
            ),
        ] {
            let err = config(&vars).err().unwrap_or_else(|| panic!("{vars:?} was accepted"));
            assert!(err.starts_with(expected) || err.contains(expected), "{vars:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
