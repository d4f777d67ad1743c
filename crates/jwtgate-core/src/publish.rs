//! The public half of a signing key, as a JWK to publish in a JWK Set.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::ConfigError;
use crate::algorithm::{Algorithm, KeyType};
use crate::jwk::AlgorithmMapping;
use crate::key::{Key, pem_label};
use crate::keypair::{self, PublicMembers};

/// The public half of an asymmetric signing key, as a JWK (RFC 7517) ready to publish in a JWK Set.
///
/// It holds the public members of its key type only (`n` and `e` for RSA, `crv`, `x` and `y` for EC, `crv`
/// and `x` for Ed25519), with `kid`, `alg` and `use: "sig"`. It can never carry a private member (`d`, `p`,
/// `q`, `dp`, `dq`, `qi`, `oth`) nor an HMAC secret (`k`): HMAC keys are refused, because a secret that is
/// published is no longer a secret.
///
/// ```
/// # fn main() -> Result<(), jwtgate_core::ConfigError> {
/// # let pem = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
/// use jwtgate_core::{Algorithm, PublicJwk};
///
/// // The signing key's PEM (PKCS#8), or its public key: either gives the same public JWK.
/// let jwk = PublicJwk::from_pem(Algorithm::ES256, pem, "2026-11")?;
/// let json = serde_json::to_value(&jwk).unwrap();
/// assert_eq!(json["kid"], "2026-11");
/// assert!(json.get("d").is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PublicJwk {
    inner: Arc<Inner>,
}

struct Inner {
    kid: String,
    alg: Algorithm,
    members: PublicMembers,
    key: Key,
}

impl PublicJwk {
    /// The public JWK of a key in PEM, for `alg`, named `kid`.
    ///
    /// `pem` is the signing key itself (`PRIVATE KEY` in PKCS#8 for every type, `RSA PRIVATE KEY` in PKCS#1,
    /// or `EC PRIVATE KEY` in SEC1), or its public half (`PUBLIC KEY`, `RSA PUBLIC KEY`, or a `CERTIFICATE`). Only the public half
    /// is kept. Refuses HMAC algorithms, an empty `kid`, a key whose type or curve does not fit `alg`, and RSA
    /// keys outside 2048 to 8192 bits. Errors never quote the PEM.
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>, kid: impl Into<String>) -> Result<Self, ConfigError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(ConfigError::key("a published key needs a non-empty kid".to_owned()));
        }
        if alg.key_type() == KeyType::Oct {
            return Err(ConfigError::key(format!("{alg} uses a secret, which is never published in a JWK Set")));
        }
        let pem = pem.as_ref();
        let label = pem_label(pem).ok_or_else(|| ConfigError::key("not a PEM document".to_owned()))?;
        let wrong = || ConfigError::key(format!("the PEM {label} is not a key usable with {alg}"));
        match label {
            // Only the public half of the key pair is kept.
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                let (_, members) = keypair::parse_private(alg, label, pem)?;
                Self::from_members(alg, kid, members)
            }
            "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => {
                let key = match alg.key_type() {
                    KeyType::Rsa => DecodingKey::from_rsa_pem(pem),
                    KeyType::Ec => DecodingKey::from_ec_pem(pem),
                    _ => DecodingKey::from_ed_pem(pem),
                }
                .map_err(|_| wrong())?;
                let der = key.try_get_as_bytes().map_err(|_| wrong())?;
                Self::from_members(alg, kid, PublicMembers::of_public(alg, der).ok_or_else(wrong)?)
            }
            other => Err(ConfigError::key(format!(
                "PEM holds a {other:?}; expected a PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY, PUBLIC KEY, RSA PUBLIC \
                 KEY or CERTIFICATE"
            ))),
        }
    }

    /// A public JWK from its members, read back as a verification key: this checks the curve against `alg`
    /// and the RSA size, and gives the key a validator of your own tokens uses.
    pub(crate) fn from_members(alg: Algorithm, kid: String, members: PublicMembers) -> Result<Self, ConfigError> {
        let key = Key::from_jwk(&Members { kid: &kid, alg, members: &members.0 }.render(), &AlgorithmMapping::new())?;
        Ok(Self { inner: Arc::new(Inner { kid, alg, members, key }) })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The algorithm the key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The verification key for this public key, with its `kid`: what a [`Validator`](crate::Validator) of
    /// the tokens you sign trusts.
    pub fn key(&self) -> &Key {
        &self.inner.key
    }

    /// The JWK as JSON text.
    pub fn to_json(&self) -> String {
        self.members().render()
    }

    fn members(&self) -> Members<'_> {
        Members { kid: &self.inner.kid, alg: self.inner.alg, members: &self.inner.members.0 }
    }
}

/// A public JWK's members, written in a fixed order: the key type's members, then `use`, `alg` and `kid`.
struct Members<'a> {
    kid: &'a str,
    alg: Algorithm,
    members: &'a [(&'static str, String)],
}

impl Members<'_> {
    fn render(&self) -> String {
        serde_json::to_string(self).expect("a map of strings serializes")
    }
}

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len() + 3))?;
        for (name, value) in self.members {
            map.serialize_entry(name, value)?;
        }
        map.serialize_entry("use", "sig")?;
        map.serialize_entry("alg", &self.alg.to_string())?;
        map.serialize_entry("kid", self.kid)?;
        map.end()
    }
}

impl Serialize for PublicJwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.members().serialize(serializer)
    }
}

impl PartialEq for PublicJwk {
    fn eq(&self, other: &Self) -> bool {
        self.inner.kid == other.inner.kid
            && self.inner.alg == other.inner.alg
            && self.inner.members == other.inner.members
    }
}

impl Eq for PublicJwk {}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicJwk").field("kid", &self.inner.kid).field("alg", &self.inner.alg).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on unexpected errors")]

    use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256};
    use serde_json::Value;

    use super::*;

    const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

    fn members(jwk: &PublicJwk) -> Vec<String> {
        let json: Value = serde_json::from_str(&jwk.to_json()).unwrap();
        json.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn the_public_half_of_each_key_type_has_only_public_members() {
        for (alg, pair, expected) in [
            (Algorithm::RS256, KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap(), &["kty", "n", "e"][..]),
            (Algorithm::PS384, KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap(), &["kty", "n", "e"]),
            (Algorithm::ES256, KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap(), &["kty", "crv", "x", "y"]),
            (Algorithm::ES384, KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap(), &["kty", "crv", "x", "y"]),
            (Algorithm::EdDSA, KeyPair::generate_for(&PKCS_ED25519).unwrap(), &["kty", "crv", "x"]),
        ] {
            let from_private = PublicJwk::from_pem(alg, pair.serialize_pem(), "k1").unwrap();
            let from_public = PublicJwk::from_pem(alg, pair.public_key_pem(), "k1").unwrap();
            assert_eq!(from_private, from_public, "{alg}: the private and the public PEM give one JWK");
            let mut names = members(&from_private);
            names.sort();
            let mut want: Vec<String> =
                expected.iter().chain(&["use", "alg", "kid"]).map(|s| (*s).to_owned()).collect();
            want.sort();
            assert_eq!(names, want, "{alg}");
            for private in PRIVATE_MEMBERS {
                assert!(!from_private.to_json().contains(&format!("\"{private}\"")), "{alg} leaks {private}");
            }
            assert_eq!(from_private.key().kid(), Some("k1"));
            assert_eq!(from_private.key().algorithm(), alg);
        }
    }

    #[test]
    fn refusals_name_the_problem_and_never_quote_the_key() {
        let p256 = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = p256.serialize_pem();
        let cases = [
            (PublicJwk::from_pem(Algorithm::HS256, &pem, "k"), "never published"),
            (PublicJwk::from_pem(Algorithm::ES256, &pem, ""), "non-empty kid"),
            (PublicJwk::from_pem(Algorithm::ES384, &pem, "k"), "ES384"),
            (PublicJwk::from_pem(Algorithm::RS256, &pem, "k"), "RS256"),
            (PublicJwk::from_pem(Algorithm::ES256, "not pem", "k"), "not a PEM document"),
            (
                PublicJwk::from_pem(
                    Algorithm::ES256,
                    "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n",
                    "k",
                ),
                "not a key usable with ES256",
            ),
            (
                PublicJwk::from_pem(
                    Algorithm::ES256,
                    "-----BEGIN OPENSSH PRIVATE KEY-----\nAA==\n-----END OPENSSH PRIVATE KEY-----\n",
                    "k",
                ),
                "expected a PRIVATE KEY",
            ),
        ];
        let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        for (result, expected) in cases {
            let message = result.unwrap_err().to_string();
            assert!(message.contains(expected), "{message:?} should mention {expected:?}");
            assert!(!message.contains(&body[..20]), "the error quotes the key");
        }
    }

    #[test]
    fn debug_shows_the_kid_and_algorithm_only() {
        let pair = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        let jwk = PublicJwk::from_pem(Algorithm::EdDSA, pair.serialize_pem(), "ed-1").unwrap();
        assert_eq!(format!("{jwk:?}"), r#"PublicJwk { kid: "ed-1", alg: EdDSA, .. }"#);
    }
}
