//! Verification keys: each bound to one algorithm and an optional `kid`, prepared once at load time.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use aws_lc_rs::{hmac, rsa};
use jsonwebtoken::DecodingKey;

use crate::ConfigError;
use crate::algorithm::{Algorithm, KeyType};
use crate::secret::Secret;

/// The shortest HMAC secret jwtgate accepts, in bytes.
pub const MIN_HMAC_SECRET_BYTES: usize = 32;
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// A verification key, bound to exactly one [`Algorithm`] and an optional key id (`kid`).
///
/// A token is checked against a key only when its `alg` header equals the key's algorithm: an `RS512` token
/// is refused by an `RS256` key, and `HS512` by an `HS256` secret. Key material is parsed and prepared when
/// the key is built, never per request. `Debug` shows the algorithm and the `kid`, never the material.
#[derive(Clone)]
pub struct Key {
    kid: Option<Arc<str>>,
    alg: Algorithm,
    verifier: Arc<Verifier>,
}

#[allow(clippy::large_enum_variant, reason = "one per key, behind an Arc; boxing would add a hop per verification")]
enum Verifier {
    Hmac(hmac::Key),
    Public(ParsedPublicKey),
}

impl Key {
    /// An HMAC key (`HS256`, `HS384` or `HS512`) from a secret.
    ///
    /// Refuses an algorithm that is not HMAC, and a secret shorter than the hash's output (RFC 7518 §3.2): 32
    /// bytes for HS256 ([`MIN_HMAC_SECRET_BYTES`]), 48 for HS384, 64 for HS512. Read the secret from
    /// configuration, for example with [`Secret::from_env`]; never hard-code it.
    pub fn hmac(alg: Algorithm, secret: &Secret) -> Result<Self, ConfigError> {
        Self::hmac_bytes(alg, secret.expose())
    }

    pub(crate) fn hmac_bytes(alg: Algorithm, secret: &[u8]) -> Result<Self, ConfigError> {
        let hmac_alg = match alg {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            Algorithm::HS512 => hmac::HMAC_SHA512,
            other => return Err(wrong_type(other, KeyType::Oct)),
        };
        // RFC 7518 §3.2: a key at least as long as the hash's output, and never under 32 bytes.
        let minimum = hmac_alg.digest_algorithm().output_len().max(MIN_HMAC_SECRET_BYTES);
        if secret.len() < minimum {
            return Err(ConfigError::key(format!(
                "HMAC secret is {} bytes; {alg} requires at least {minimum}",
                secret.len()
            )));
        }
        Ok(Self::from_verifier(alg, Verifier::Hmac(hmac::Key::new(hmac_alg, secret))))
    }

    /// A public key from PEM: an RSA, EC or Ed25519 public key (`PUBLIC KEY` or `RSA PUBLIC KEY`), or an X.509
    /// `CERTIFICATE` whose public key is used.
    ///
    /// Refuses private keys, a key whose type does not fit `alg` (an EC key for `RS256`, a P-384 key for
    /// `ES256`), RSA keys outside 2048 to 8192 bits, and HMAC algorithms (secrets are not PEM).
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let pem = pem.as_ref();
        let label = pem_label(pem).ok_or_else(|| ConfigError::key("not a PEM document".to_owned()))?;
        if !matches!(label, "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE") {
            return Err(ConfigError::key(format!(
                "PEM holds a {label:?}; expected a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE"
            )));
        }
        let wrong_type = || ConfigError::key(format!("PEM does not hold a public key usable with {alg}"));
        let decoded = match alg.key_type() {
            KeyType::Rsa => DecodingKey::from_rsa_pem(pem),
            KeyType::Ec => DecodingKey::from_ec_pem(pem),
            KeyType::Okp => DecodingKey::from_ed_pem(pem),
            KeyType::Oct => return Err(ConfigError::key(format!("{alg} uses a secret, not a PEM key"))),
        }
        .map_err(|_| wrong_type())?;
        let bytes = decoded.try_get_as_bytes().map_err(|_| wrong_type())?;
        Self::public(alg, bytes)
    }

    /// Reads [`Key::from_pem`]'s input from a file. The error names the file.
    pub fn from_pem_file(alg: Algorithm, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let pem =
            std::fs::read(path).map_err(|err| ConfigError::key(format!("cannot read {}: {err}", path.display())))?;
        Self::from_pem(alg, pem).map_err(|err| err.context(&path.display().to_string()))
    }

    /// A public key from DER bytes in the form aws-lc-rs takes for `alg`: PKCS#1 or SubjectPublicKeyInfo for
    /// RSA, an uncompressed point for EC, 32 raw bytes for Ed25519.
    pub(crate) fn public(alg: Algorithm, bytes: &[u8]) -> Result<Self, ConfigError> {
        let parsed = match alg.key_type() {
            KeyType::Rsa => {
                let bits = rsa::PublicKey::from_der(bytes)
                    .map_err(|_| ConfigError::key("invalid RSA public key".to_owned()))?
                    .modulus_len()
                    * 8;
                check_rsa_bits(bits)?;
                ParsedPublicKey::new(verification_algorithm(alg), bytes)
            }
            KeyType::Ec | KeyType::Okp => ParsedPublicKey::new(verification_algorithm(alg), bytes),
            KeyType::Oct => return Err(wrong_type(alg, KeyType::Rsa)),
        }
        .map_err(|_| ConfigError::key(format!("the public key is not a valid {} key for {alg}", curve_name(alg))))?;
        Ok(Self::from_verifier(alg, Verifier::Public(parsed)))
    }

    pub(crate) fn rsa_components(alg: Algorithm, n: &[u8], e: &[u8]) -> Result<Self, ConfigError> {
        let n = strip_leading_zeros(n);
        // The first byte is not zero once stripped, so its leading zeros are fewer than 8; an empty (or
        // all-zero) modulus has no bits at all.
        let bits = n.len().saturating_mul(8).saturating_sub(n.first().map_or(0, |b| b.leading_zeros() as usize));
        check_rsa_bits(bits)?;
        let params = rsa_parameters(alg).ok_or_else(|| wrong_type(alg, KeyType::Rsa))?;
        let parsed = sig::RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(params)
            .map_err(|_| ConfigError::key("invalid RSA public key".to_owned()))?;
        Ok(Self::from_verifier(alg, Verifier::Public(parsed)))
    }

    fn from_verifier(alg: Algorithm, verifier: Verifier) -> Self {
        Self { kid: None, alg, verifier: Arc::new(verifier) }
    }

    /// Sets the key id that tokens name in their `kid` header to select this key.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(Arc::from(kid.into()));
        self
    }

    /// The key id, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn kid_arc(&self) -> Option<Arc<str>> {
        self.kid.clone()
    }

    /// The one algorithm this key accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Checks `signature` over `message` (`base64url(header) "." base64url(claims)`). HMAC tags are compared
    /// in constant time by aws-lc-rs.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &*self.verifier {
            Verifier::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

fn rsa_parameters(alg: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

fn verification_algorithm(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    match (rsa_parameters(alg), alg) {
        (Some(params), _) => params,
        (None, Algorithm::ES256) => &sig::ECDSA_P256_SHA256_FIXED,
        (None, Algorithm::ES384) => &sig::ECDSA_P384_SHA384_FIXED,
        // HMAC never reaches here: `Key::public` refuses `KeyType::Oct` first.
        (None, _) => &sig::ED25519,
    }
}

fn curve_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "P-256",
        Algorithm::ES384 => "P-384",
        Algorithm::EdDSA => "Ed25519",
        _ => "RSA",
    }
}

fn check_rsa_bits(bits: usize) -> Result<(), ConfigError> {
    if (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(ConfigError::key(format!("RSA key has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are required")))
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The label of the first PEM block (`PUBLIC KEY` in `-----BEGIN PUBLIC KEY-----`).
pub(crate) fn pem_label(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = text[start..].find("-----")?;
    Some(&text[start..start + len])
}

/// The keys a [`Validator`](crate::Validator) trusts.
///
/// A token with a `kid` header is checked against the key with that `kid` only. A token without `kid` is
/// checked only when exactly one key has its algorithm. Either way a token causes at most one signature
/// verification. Two keys with the same `kid` are refused.
#[derive(Clone, Debug)]
pub struct KeySet {
    keys: Vec<Key>,
    by_kid: HashMap<Arc<str>, usize>,
    /// For each algorithm, the index of the only key with that algorithm, or `None` when there are several.
    by_alg: HashMap<Algorithm, Option<usize>>,
}

impl From<Key> for KeySet {
    /// A set of one key, which cannot fail: one key is never a duplicate.
    fn from(key: Key) -> Self {
        let mut by_kid = HashMap::new();
        if let Some(kid) = &key.kid {
            by_kid.insert(kid.clone(), 0);
        }
        let by_alg = HashMap::from([(key.alg, Some(0))]);
        Self { keys: vec![key], by_kid, by_alg }
    }
}

impl KeySet {
    /// A key set of the given keys. Refuses an empty set and duplicate `kid`s.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Result<Self, ConfigError> {
        let keys: Vec<Key> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(ConfigError::key("the key set is empty".to_owned()));
        }
        let mut by_kid = HashMap::new();
        let mut by_alg: HashMap<Algorithm, Option<usize>> = HashMap::new();
        for (index, key) in keys.iter().enumerate() {
            if let Some(kid) = &key.kid
                && by_kid.insert(kid.clone(), index).is_some()
            {
                return Err(ConfigError::key(format!("two keys have the kid {kid:?}")));
            }
            by_alg.entry(key.alg).and_modify(|only| *only = None).or_insert(Some(index));
        }
        Ok(Self { keys, by_kid, by_alg })
    }

    /// The keys, in the order they were given.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The key a token with this `kid` (or none) and `alg` must be verified with, or why there is none.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&Key, crate::ErrorKind> {
        let key = match kid {
            Some(kid) => self.by_kid(kid),
            None => self.only_for(alg)?,
        }
        .ok_or(crate::ErrorKind::UnknownKey)?;
        if key.alg == alg { Ok(key) } else { Err(crate::ErrorKind::AlgorithmMismatch) }
    }

    /// The key with this `kid`.
    pub(crate) fn by_kid(&self, kid: &str) -> Option<&Key> {
        self.by_kid.get(kid).map(|&index| &self.keys[index])
    }

    /// The only key for `alg`: `Ok(None)` when there is none, and `UnknownKey` when there are several, since
    /// a token without `kid` cannot choose between them.
    pub(crate) fn only_for(&self, alg: Algorithm) -> Result<Option<&Key>, crate::ErrorKind> {
        match self.by_alg.get(&alg) {
            None => Ok(None),
            Some(Some(index)) => Ok(Some(&self.keys[*index])),
            Some(None) => Err(crate::ErrorKind::UnknownKey),
        }
    }

    /// Whether a key has this `kid`.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }
}

/// The error for a key of the wrong type for `alg`.
fn wrong_type(alg: Algorithm, found: KeyType) -> ConfigError {
    ConfigError::key(format!("{alg} needs a {} key, not {found}", alg.key_type()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    fn secret(len: usize) -> Secret {
        Secret::new(vec![7; len])
    }

    #[test]
    fn one_key_is_a_key_set_without_a_fallible_constructor() {
        for key in [
            Key::hmac(Algorithm::HS256, &secret(32)).unwrap(),
            Key::hmac(Algorithm::HS256, &secret(32)).unwrap().with_kid("k"),
        ] {
            let from = KeySet::from(key.clone());
            let new = KeySet::new([key]).unwrap();
            assert_eq!((from.keys.len(), &from.by_kid, &from.by_alg), (new.keys.len(), &new.by_kid, &new.by_alg));
        }
    }

    #[test]
    fn an_rsa_modulus_that_is_empty_or_all_zeros_is_refused_without_a_panic() {
        // Regression (issue 17): the bit count underflowed (a panic with overflow checks on, as in tests and
        // debug builds) for a JWK whose `n` was empty or all zeros.
        for n in [&[][..], &[0][..], &[0; 256][..]] {
            let err = Key::rsa_components(Algorithm::RS256, n, &[1, 0, 1]).unwrap_err();
            assert_eq!(err.to_string(), "RSA key has 0 bits; 2048 to 8192 are required");
        }
        for n in ["", "AA", "AAAAAAAA"] {
            let jwk = format!(r#"{{"kty":"RSA","alg":"RS256","n":"{n}","e":"AQAB"}}"#);
            assert!(Key::from_jwk(&jwk, &crate::AlgorithmMapping::new()).is_err(), "n = {n:?}");
            let set = format!(r#"{{"keys":[{jwk}]}}"#);
            assert!(KeySet::from_remote_jwks(&set, &crate::AlgorithmMapping::new()).is_err(), "n = {n:?}");
        }
    }

    #[test]
    fn hmac_secrets_shorter_than_the_hash_output_are_refused() {
        // RFC 7518 §3.2: at least as long as the hash's output.
        for (alg, minimum) in [(Algorithm::HS256, 32), (Algorithm::HS384, 48), (Algorithm::HS512, 64)] {
            let err = Key::hmac(alg, &secret(minimum - 1)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("HMAC secret is {} bytes; {alg} requires at least {minimum}", minimum - 1)
            );
            assert!(Key::hmac(alg, &secret(minimum)).is_ok(), "{alg}");
            assert!(SigningKey::hmac(alg, &secret(minimum - 1), "k").is_err(), "{alg} signing");
        }
    }

    #[test]
    fn hmac_secrets_are_refused_for_other_algorithms() {
        let err = Key::hmac(Algorithm::RS256, &secret(32)).unwrap_err();
        assert_eq!(err.to_string(), "RS256 needs a RSA key, not oct");
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = Key::hmac(Algorithm::HS256, &secret(40)).unwrap().with_kid("k1");
        assert_eq!(format!("{key:?}"), r#"Key { kid: Some("k1"), alg: HS256, .. }"#);
    }

    #[test]
    fn duplicate_kids_and_empty_sets_are_refused() {
        let key = Key::hmac(Algorithm::HS256, &secret(32)).unwrap().with_kid("same");
        let err = KeySet::new([key.clone(), key]).unwrap_err();
        assert_eq!(err.to_string(), r#"two keys have the kid "same""#);
        assert_eq!(KeySet::new([]).unwrap_err().to_string(), "the key set is empty");
    }

    #[test]
    fn selection_by_kid_never_falls_back_to_another_key() {
        let a = Key::hmac(Algorithm::HS256, &secret(32)).unwrap().with_kid("a");
        let b = Key::hmac(Algorithm::HS512, &secret(64)).unwrap().with_kid("b");
        let set = KeySet::new([a, b]).unwrap();
        assert_eq!(set.select(Some("a"), Algorithm::HS256).unwrap().kid(), Some("a"));
        assert_eq!(set.select(Some("zz"), Algorithm::HS256).unwrap_err(), crate::ErrorKind::UnknownKey);
        assert_eq!(set.select(Some("a"), Algorithm::HS512).unwrap_err(), crate::ErrorKind::AlgorithmMismatch);
    }

    #[test]
    fn selection_without_kid_needs_exactly_one_key_of_the_algorithm() {
        let one = Key::hmac(Algorithm::HS256, &secret(32)).unwrap();
        let two = Key::hmac(Algorithm::HS256, &secret(33)).unwrap().with_kid("two");
        let three = Key::hmac(Algorithm::HS384, &secret(48)).unwrap();
        let set = KeySet::new([one, two, three]).unwrap();
        assert_eq!(set.select(None, Algorithm::HS256).unwrap_err(), crate::ErrorKind::UnknownKey);
        assert_eq!(set.select(None, Algorithm::HS384).unwrap().algorithm(), Algorithm::HS384);
        assert_eq!(set.select(None, Algorithm::HS512).unwrap_err(), crate::ErrorKind::UnknownKey);
    }

    #[test]
    fn pem_private_keys_are_refused() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let err = Key::from_pem(Algorithm::RS256, pem).unwrap_err();
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    }
}
