//! JSON Web Keys (RFC 7517) and JWK Sets, as verification keys.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ConfigError;
use crate::algorithm::{Algorithm, KeyType};
use crate::key::{Key, KeySet};

/// The algorithm to give a JWK that has no `alg` member, by key type.
///
/// jwtgate never guesses an algorithm across key families: a JWK without `alg` is refused unless its `kty`
/// is mapped here. The mapping must keep each key type to an algorithm of that type.
///
/// ```
/// use jwtgate_core::{Algorithm, AlgorithmMapping, KeyType};
/// let mapping = AlgorithmMapping::new().map(KeyType::Rsa, Algorithm::RS256)?;
/// # Ok::<(), jwtgate_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct AlgorithmMapping {
    by_type: HashMap<KeyType, Algorithm>,
}

impl AlgorithmMapping {
    /// An empty mapping: every JWK must carry its own `alg`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives JWKs of type `kty` without `alg` the algorithm `alg`. Refuses an algorithm of another key type.
    pub fn map(mut self, kty: KeyType, alg: Algorithm) -> Result<Self, ConfigError> {
        if alg.key_type() != kty {
            return Err(ConfigError::key(format!(
                "cannot map {kty} keys to {alg}, an algorithm for {} keys",
                alg.key_type()
            )));
        }
        self.by_type.insert(kty, alg);
        Ok(self)
    }

    fn get(&self, kty: KeyType) -> Option<Algorithm> {
        self.by_type.get(&kty).copied()
    }
}

/// The members of a JWK that jwtgate reads. Unknown members are ignored.
#[derive(Deserialize)]
struct JwkRepr<'a> {
    kty: &'a str,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<&'a str>,
    #[serde(default, rename = "use")]
    use_: Option<&'a str>,
    #[serde(default)]
    key_ops: Option<Vec<&'a str>>,
    #[serde(default)]
    crv: Option<&'a str>,
    #[serde(default)]
    n: Option<&'a str>,
    #[serde(default)]
    e: Option<&'a str>,
    #[serde(default)]
    x: Option<&'a str>,
    #[serde(default)]
    y: Option<&'a str>,
    #[serde(default)]
    k: Option<&'a str>,
}

#[derive(Deserialize)]
struct JwkSetRepr<'a> {
    #[serde(borrow)]
    keys: Vec<&'a RawValue>,
}

impl Key {
    /// A key from one JWK (RFC 7517) in JSON.
    ///
    /// `oct` keys are HMAC secrets (`k`, base64url); `RSA`, `EC` and `OKP` keys are public keys. The key's
    /// `alg` must be supported and fit its type and curve; a key without `alg` takes its algorithm from
    /// `mapping` or is refused. Keys whose `use` is not `sig`, or whose `key_ops` lack `verify`, are refused.
    pub fn from_jwk(json: &str, mapping: &AlgorithmMapping) -> Result<Self, ConfigError> {
        let repr: JwkRepr<'_> =
            serde_json::from_str(json).map_err(|err| ConfigError::key(format!("invalid JWK: {}", json_error(&err))))?;
        let kid = repr.kid.clone();
        let key = key_from_repr(&repr, mapping).map_err(|err| match &kid {
            Some(kid) => err.context(&format!("key {kid:?}")),
            None => err,
        })?;
        Ok(match kid {
            Some(kid) => key.with_kid(kid),
            None => key,
        })
    }
}

fn key_from_repr(jwk: &JwkRepr<'_>, mapping: &AlgorithmMapping) -> Result<Key, ConfigError> {
    let kty = match jwk.kty {
        "oct" => KeyType::Oct,
        "RSA" => KeyType::Rsa,
        "EC" => KeyType::Ec,
        "OKP" => KeyType::Okp,
        other => return Err(ConfigError::key(format!("unsupported key type {other:?}"))),
    };
    if let Some(use_) = jwk.use_
        && use_ != "sig"
    {
        return Err(ConfigError::key(format!("key use is {use_:?}, not \"sig\"")));
    }
    if let Some(ops) = &jwk.key_ops
        && !ops.contains(&"verify")
    {
        return Err(ConfigError::key("key_ops does not allow \"verify\"".to_owned()));
    }
    let alg = match jwk.alg {
        Some(alg) => alg.parse::<Algorithm>().map_err(|_| ConfigError::key(format!("unsupported alg {alg:?}")))?,
        None => mapping.get(kty).ok_or_else(|| {
            ConfigError::key(format!("{kty} key has no alg, and no algorithm is mapped for {kty} keys"))
        })?,
    };
    if alg.key_type() != kty {
        return Err(ConfigError::key(format!("alg {alg} does not fit a key of type {kty}")));
    }
    match kty {
        KeyType::Oct => Key::hmac_bytes(alg, &member(jwk.k, "k")?),
        KeyType::Rsa => Key::rsa_components(alg, &member(jwk.n, "n")?, &member(jwk.e, "e")?),
        KeyType::Ec => {
            let (crv, len) = match alg {
                Algorithm::ES256 => ("P-256", 32),
                _ => ("P-384", 48),
            };
            if jwk.crv != Some(crv) {
                return Err(ConfigError::key(format!("{alg} needs curve {crv}, not {:?}", jwk.crv.unwrap_or(""))));
            }
            let (x, y) = (member(jwk.x, "x")?, member(jwk.y, "y")?);
            if x.len() != len || y.len() != len {
                return Err(ConfigError::key(format!("EC coordinates for {crv} must be {len} bytes")));
            }
            let point: Vec<u8> = [&[0x04][..], &x, &y].concat();
            Key::public(alg, &point)
        }
        KeyType::Okp => {
            if jwk.crv != Some("Ed25519") {
                return Err(ConfigError::key(format!("EdDSA needs curve Ed25519, not {:?}", jwk.crv.unwrap_or(""))));
            }
            Key::public(alg, &member(jwk.x, "x")?)
        }
    }
}

/// base64url as key files are written in practice: without padding as RFC 7517 says, or with it. Key files
/// are the operator's own configuration; tokens, which come from clients, are decoded strictly.
const KEY_MEMBER: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn member(value: Option<&str>, name: &str) -> Result<Vec<u8>, ConfigError> {
    let value = value.ok_or_else(|| ConfigError::key(format!("missing member {name:?}")))?;
    KEY_MEMBER.decode(value).map_err(|_| ConfigError::key(format!("member {name:?} is not base64url")))
}

/// A description of a JSON error that never quotes the input (which may hold a secret).
fn json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match err.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not valid JSON",
        Category::Data => "not of the expected shape",
        Category::Eof => "truncated",
    };
    format!("{what} at line {} column {}", err.line(), err.column())
}

impl KeySet {
    /// A key set from a JWK Set (RFC 7517 §5) in JSON, such as `{"keys": [...]}`.
    ///
    /// Every key must load as [`Key::from_jwk`] describes; the first one that does not fails the whole set,
    /// with an error naming it. Duplicate `kid`s and an empty set are refused.
    pub fn from_jwks(json: &str, mapping: &AlgorithmMapping) -> Result<Self, ConfigError> {
        let set: JwkSetRepr<'_> = serde_json::from_str(json)
            .map_err(|err| ConfigError::key(format!("invalid JWK Set: {}", json_error(&err))))?;
        let keys = set
            .keys
            .iter()
            .enumerate()
            .map(|(index, raw)| Key::from_jwk(raw.get(), mapping).map_err(|err| err.context(&format!("keys[{index}]"))))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// Reads [`KeySet::from_jwks`]'s input from a file. The error names the file.
    pub fn from_jwks_file(path: impl AsRef<Path>, mapping: &AlgorithmMapping) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path)
            .map_err(|err| ConfigError::key(format!("cannot read {}: {err}", path.display())))?;
        Self::from_jwks(&json, mapping).map_err(|err| err.context(&path.display().to_string()))
    }
}

/// A key of a provider's JWK Set that [`KeySet::from_remote_jwks`] left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    index: usize,
    kid: Option<String>,
    reason: ConfigError,
}

impl SkippedKey {
    /// The key's position in the set's `keys` array.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Why it was left out.
    pub fn reason(&self) -> &ConfigError {
        &self.reason
    }
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "keys[{}] (kid {kid:?}): {}", self.index, self.reason),
            None => write!(f, "keys[{}]: {}", self.index, self.reason),
        }
    }
}

impl KeySet {
    /// A key set from a JWK Set that someone else publishes, such as an identity provider's `jwks_uri`.
    ///
    /// Unlike [`KeySet::from_jwks`], which reads the operator's own file and refuses it whole for one bad
    /// key, this keeps every usable key and reports the others as [`SkippedKey`]s: keys whose `use` is not
    /// `sig`, whose `key_ops` lack `verify`, whose `kty`, `alg` or curve is not supported, that have no `alg`
    /// and no mapping, whose material is invalid, or whose `kid` an earlier key already has. `oct` keys are
    /// always skipped: a shared secret served over the network is no secret. It fails only when the document
    /// is not a JWK Set, or when no usable key remains.
    pub fn from_remote_jwks(json: &str, mapping: &AlgorithmMapping) -> Result<(Self, Vec<SkippedKey>), ConfigError> {
        let set: JwkSetRepr<'_> = serde_json::from_str(json)
            .map_err(|err| ConfigError::key(format!("invalid JWK Set: {}", json_error(&err))))?;
        let mut keys: Vec<Key> = Vec::with_capacity(set.keys.len());
        let mut skipped = Vec::new();
        for (index, raw) in set.keys.iter().enumerate() {
            let repr = match serde_json::from_str::<JwkRepr<'_>>(raw.get()) {
                Ok(repr) => repr,
                Err(err) => {
                    let reason = ConfigError::key(format!("invalid JWK: {}", json_error(&err)));
                    skipped.push(SkippedKey { index, kid: None, reason });
                    continue;
                }
            };
            let kid = repr.kid.clone();
            let loaded = if repr.kty == "oct" {
                Err(ConfigError::key("oct keys (shared secrets) are never trusted from a remote JWK Set".to_owned()))
            } else if kid.as_deref().is_some_and(|kid| keys.iter().any(|key| key.kid() == Some(kid))) {
                Err(ConfigError::key("an earlier key has the same kid".to_owned()))
            } else {
                key_from_repr(&repr, mapping)
            };
            match loaded {
                Ok(key) => keys.push(match kid {
                    Some(kid) => key.with_kid(kid),
                    None => key,
                }),
                Err(reason) => skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        if keys.is_empty() {
            return Err(ConfigError::key(format!(
                "the JWK Set has no usable signature key ({} skipped)",
                skipped.len()
            )));
        }
        Ok((Self::new(keys)?, skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // 32 test-only bytes 0..31

    fn oct(alg: &str) -> String {
        format!(r#"{{"kty":"oct","kid":"h","alg":"{alg}","k":"{SECRET_B64}"}}"#)
    }

    #[test]
    fn oct_keys_are_hmac_secrets() {
        let key = Key::from_jwk(&oct("HS256"), &AlgorithmMapping::new()).unwrap();
        assert_eq!((key.kid(), key.algorithm()), (Some("h"), Algorithm::HS256));
    }

    #[test]
    fn an_alg_that_does_not_fit_the_key_type_is_refused() {
        let err = Key::from_jwk(&oct("RS256"), &AlgorithmMapping::new()).unwrap_err();
        assert_eq!(err.to_string(), r#"key "h": alg RS256 does not fit a key of type oct"#);
    }

    #[test]
    fn unsupported_algs_are_refused() {
        for alg in ["none", "ES512", "RSA-OAEP", "hs256"] {
            let err = Key::from_jwk(&oct(alg), &AlgorithmMapping::new()).unwrap_err();
            assert!(err.to_string().contains("unsupported alg"), "{alg}: {err}");
        }
    }

    #[test]
    fn a_missing_alg_needs_an_explicit_mapping_of_the_same_type() {
        let json = format!(r#"{{"kty":"oct","k":"{SECRET_B64}"}}"#);
        let err = Key::from_jwk(&json, &AlgorithmMapping::new()).unwrap_err();
        assert_eq!(err.to_string(), "oct key has no alg, and no algorithm is mapped for oct keys");
        let mapping = AlgorithmMapping::new().map(KeyType::Oct, Algorithm::HS256).unwrap();
        assert_eq!(Key::from_jwk(&json, &mapping).unwrap().algorithm(), Algorithm::HS256);
        // The secret is 32 bytes: too short for HS384, whose keys are at least 48 (RFC 7518 §3.2).
        let mapping = AlgorithmMapping::new().map(KeyType::Oct, Algorithm::HS384).unwrap();
        let err = Key::from_jwk(&json, &mapping).unwrap_err();
        assert_eq!(err.to_string(), "HMAC secret is 32 bytes; HS384 requires at least 48");
        assert!(AlgorithmMapping::new().map(KeyType::Oct, Algorithm::RS256).is_err());
    }

    #[test]
    fn key_members_may_carry_base64_padding() {
        let json = format!(r#"{{"kty":"oct","alg":"HS256","k":"{SECRET_B64}="}}"#);
        assert!(Key::from_jwk(&json, &AlgorithmMapping::new()).is_ok());
        let json = r#"{"kty":"oct","alg":"HS256","k":"AAEC+/8="}"#;
        assert!(Key::from_jwk(json, &AlgorithmMapping::new()).unwrap_err().to_string().contains("base64url"));
    }

    #[test]
    fn short_oct_keys_are_refused() {
        let json = r#"{"kty":"oct","alg":"HS256","k":"c2hvcnQ"}"#;
        let err = Key::from_jwk(json, &AlgorithmMapping::new()).unwrap_err();
        assert_eq!(err.to_string(), "HMAC secret is 5 bytes; HS256 requires at least 32");
    }

    #[test]
    fn encryption_keys_are_refused() {
        let json = format!(r#"{{"kty":"oct","alg":"HS256","use":"enc","k":"{SECRET_B64}"}}"#);
        assert!(Key::from_jwk(&json, &AlgorithmMapping::new()).unwrap_err().to_string().contains("use"));
        let json = format!(r#"{{"kty":"oct","alg":"HS256","key_ops":["sign"],"k":"{SECRET_B64}"}}"#);
        assert!(Key::from_jwk(&json, &AlgorithmMapping::new()).unwrap_err().to_string().contains("key_ops"));
    }

    #[test]
    fn remote_sets_skip_bad_keys_and_never_trust_secrets() {
        let json = format!(
            r#"{{"keys":[{},{{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}},{{"kty":"EC","kid":"odd","alg":"ES512"}},{{"kty":"X"}},7]}}"#,
            oct("HS256")
        );
        let err = KeySet::from_remote_jwks(&json, &AlgorithmMapping::new()).unwrap_err();
        assert_eq!(err.to_string(), "the JWK Set has no usable signature key (5 skipped)");

        let good = r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let json = format!(r#"{{"keys":[{good},{},{good}]}}"#, oct("HS256"));
        let (set, skipped) = KeySet::from_remote_jwks(&json, &AlgorithmMapping::new()).unwrap();
        assert_eq!(set.keys().len(), 1);
        let reasons: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                r#"keys[1] (kid "h"): oct keys (shared secrets) are never trusted from a remote JWK Set"#,
                r#"keys[2] (kid "ed"): an earlier key has the same kid"#,
            ]
        );
        assert!(KeySet::from_remote_jwks("<html>", &AlgorithmMapping::new()).is_err());
    }

    #[test]
    fn jwk_set_errors_name_the_key_and_never_quote_the_input() {
        let err =
            KeySet::from_jwks(r#"{"keys":[{"kty":"oct","alg":"HS256","k":"not base64!"}]}"#, &AlgorithmMapping::new())
                .unwrap_err();
        assert_eq!(err.to_string(), r#"keys[0]: member "k" is not base64url"#);
        let err = KeySet::from_jwks(r#"{"keys": [ "secretvalue" "#, &AlgorithmMapping::new()).unwrap_err();
        assert!(!err.to_string().contains("secretvalue"), "{err}");
        let dup = format!(r#"{{"keys":[{},{}]}}"#, oct("HS256"), oct("HS256"));
        assert_eq!(
            KeySet::from_jwks(&dup, &AlgorithmMapping::new()).unwrap_err().to_string(),
            r#"two keys have the kid "h""#
        );
    }
}
