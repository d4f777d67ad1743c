//! Signing keys, for services that issue their own tokens.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::ConfigError;
use crate::algorithm::{Algorithm, KeyType};
use crate::key::{Key, MIN_HMAC_SECRET_BYTES, pem_label};
use crate::keypair::{self, Signer};
use crate::publish::PublicJwk;
use crate::secret::Secret;

/// A key that signs tokens, bound to one [`Algorithm`] and a `kid`.
///
/// Private keys come from PEM ([`SigningKey::from_pem`]); HMAC secrets from configuration
/// ([`SigningKey::hmac`]), at least [`MIN_HMAC_SECRET_BYTES`] long. Signatures are made by aws-lc-rs. Its
/// [`verification_key`](Self::verification_key) checks what it signs, and for asymmetric keys its
/// [`public_jwk`](Self::public_jwk) is what you publish. `Debug` shows the algorithm and the `kid`, never
/// the material.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
}

struct Inner {
    alg: Algorithm,
    kid: String,
    signer: Signer,
    verification: Key,
    public: Option<PublicJwk>,
}

impl SigningKey {
    /// An HMAC signing key (`HS256`, `HS384` or `HS512`) named `kid`. Refuses a secret shorter than the
    /// hash's output, as [`Key::hmac`] does: 32 bytes ([`MIN_HMAC_SECRET_BYTES`]) for HS256, 48 for HS384, 64
    /// for HS512. Read the secret with [`Secret::from_env`]; never hard-code it.
    pub fn hmac(alg: Algorithm, secret: &Secret, kid: impl Into<String>) -> Result<Self, ConfigError> {
        let kid = non_empty(kid.into())?;
        let verification = Key::hmac(alg, secret)?.with_kid(kid.clone());
        let hmac_alg = match alg {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            _ => hmac::HMAC_SHA512,
        };
        debug_assert!(secret.len() >= MIN_HMAC_SECRET_BYTES);
        let signer = Signer::Hmac(hmac::Key::new(hmac_alg, secret.expose()));
        Ok(Self { inner: Arc::new(Inner { alg, kid, signer, verification, public: None }) })
    }

    /// A private key from PEM for `alg`, named `kid`: `PRIVATE KEY` (PKCS#8, v1 or v2) for every type,
    /// `RSA PRIVATE KEY` (PKCS#1), or `EC PRIVATE KEY` (SEC1). Refuses a key whose type or curve does not fit
    /// `alg`, RSA keys outside 2048 to 8192 bits, and HMAC algorithms. Errors never quote the PEM.
    pub fn from_pem(alg: Algorithm, pem: impl AsRef<[u8]>, kid: impl Into<String>) -> Result<Self, ConfigError> {
        let kid = non_empty(kid.into())?;
        if alg.key_type() == KeyType::Oct {
            return Err(ConfigError::key(format!("{alg} uses a secret, not a PEM key")));
        }
        let pem = pem.as_ref();
        let label = pem_label(pem).ok_or_else(|| ConfigError::key("not a PEM document".to_owned()))?;
        if !matches!(label, "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY") {
            return Err(ConfigError::key(format!(
                "PEM holds a {label:?}; a signing key is a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY"
            )));
        }
        let (signer, members) = keypair::parse_private(alg, label, pem)?;
        let public = PublicJwk::from_members(alg, kid.clone(), members)?;
        let verification = public.key().clone();
        Ok(Self { inner: Arc::new(Inner { alg, kid, signer, verification, public: Some(public) }) })
    }

    /// A fresh key pair for an asymmetric `alg` (RSA 2048, P-256, P-384 or Ed25519), named `kid`: for tests
    /// and for keys that live only as long as the process.
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Result<Self, ConfigError> {
        let failed = || ConfigError::key(format!("cannot generate a {alg} key"));
        let der: Vec<u8> = match alg.key_type() {
            KeyType::Rsa => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| failed())?;
                aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&pair)
                    .map_err(|_| failed())?
                    .as_ref()
                    .to_vec()
            }
            KeyType::Ec => EcdsaKeyPair::generate(keypair::ec_signing(alg))
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(|_| failed())?
                .as_ref()
                .to_vec(),
            KeyType::Okp => {
                Ed25519KeyPair::generate().and_then(|pair| pair.to_pkcs8v1()).map_err(|_| failed())?.as_ref().to_vec()
            }
            KeyType::Oct => return Err(ConfigError::key(format!("{alg} uses a secret; use SigningKey::hmac"))),
        };
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
        Self::from_pem(alg, pem, kid)
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The key id put in the header of every token it signs.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The key that verifies its signatures, with its `kid`.
    pub fn verification_key(&self) -> &Key {
        &self.inner.verification
    }

    /// The public half, to publish in a JWK Set; `None` for an HMAC secret, which is never published.
    pub fn public_jwk(&self) -> Option<&PublicJwk> {
        self.inner.public.as_ref()
    }

    /// Signs `claims` as a compact JWS with the header `{"alg", "typ", "kid"}`. `typ` is usually `"JWT"`, or
    /// `"at+jwt"` for RFC 9068 access tokens.
    pub fn sign<C: Serialize + ?Sized>(&self, typ: &str, claims: &C) -> Result<String, ConfigError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header { alg: self.inner.alg.as_str(), typ, kid: &self.inner.kid })
            .map_err(|_| ConfigError::key("the header does not serialize".to_owned()))?;
        let claims = serde_json::to_vec(claims)
            .map_err(|err| ConfigError::key(format!("the claims do not serialize: {err}")))?;
        let mut token = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 400);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self.signature(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    pub(crate) fn signature(&self, message: &[u8]) -> Result<Vec<u8>, ConfigError> {
        let failed = || ConfigError::key(format!("signing with {} failed", self.inner.alg));
        let rng = SystemRandom::new();
        Ok(match &self.inner.signer {
            Signer::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
            Signer::Rsa(pair, encoding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &rng, message, &mut signature).map_err(|_| failed())?;
                signature
            }
            Signer::Ec(pair) => pair.sign(&rng, message).map_err(|_| failed())?.as_ref().to_vec(),
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        })
    }
}

fn non_empty(kid: String) -> Result<String, ConfigError> {
    if kid.is_empty() { Err(ConfigError::key("a signing key needs a non-empty kid".to_owned())) } else { Ok(kid) }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.inner.alg).field("kid", &self.inner.kid).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on unexpected errors")]

    use serde_json::{Value, json};

    use super::*;
    use crate::{KeySet, Validator};

    #[test]
    fn what_it_signs_its_verification_key_and_public_jwk_verify() {
        for alg in Algorithm::ALL {
            let key = match alg.key_type() {
                KeyType::Oct => SigningKey::hmac(alg, &Secret::new(vec![7; 64]), "k1").unwrap(),
                _ => SigningKey::generate(alg, "k1").unwrap(),
            };
            let claims = json!({ "sub": "u", "exp": crate::__private::unix_now() + 60 });
            let token = key.sign("JWT", &claims).unwrap();
            let header: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
            assert_eq!(header, json!({ "alg": alg.as_str(), "typ": "JWT", "kid": "k1" }));
            let validator = Validator::builder(KeySet::new([key.verification_key().clone()]).unwrap()).build();
            assert!(validator.validate::<Value>(&token).is_ok(), "{alg}");
            match key.public_jwk() {
                Some(public) => {
                    let from_jwk = Validator::builder(KeySet::new([public.key().clone()]).unwrap()).build();
                    assert!(from_jwk.validate::<Value>(&token).is_ok(), "{alg}: the published key verifies");
                }
                None => assert_eq!(alg.key_type(), KeyType::Oct),
            }
        }
    }

    #[test]
    fn bad_keys_are_refused_with_a_clear_error() {
        let short = SigningKey::hmac(Algorithm::HS256, &Secret::new(vec![1; 16]), "k").unwrap_err();
        assert!(short.to_string().contains("at least 32"), "{short}");
        let empty_kid = SigningKey::hmac(Algorithm::HS256, &Secret::new(vec![1; 32]), "").unwrap_err();
        assert_eq!(empty_kid.to_string(), "a signing key needs a non-empty kid");
        let public =
            SigningKey::from_pem(Algorithm::ES256, "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n", "k")
                .unwrap_err();
        assert!(public.to_string().contains("a signing key is a PRIVATE KEY"), "{public}");
        let p256 = SigningKey::generate(Algorithm::ES256, "k").unwrap();
        assert_eq!(format!("{p256:?}"), r#"SigningKey { alg: ES256, kid: "k", .. }"#);
        assert!(SigningKey::generate(Algorithm::HS256, "k").is_err());
    }
}
