//! Keys generated at test time, for every algorithm jwtgate supports, with their verification keys, JWKs
//! and PEM forms.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jwtgate_core::{Algorithm, Key, KeySet, Secret};
use serde_json::{Value, json};

use crate::{TokenBuilder, b64};

/// A signing key generated for one test run, with the matching verification key. For tests only: the keys
/// live in memory and are never written anywhere.
pub struct TestKey {
    alg: Algorithm,
    kid: Option<String>,
    material: Material,
}

enum Material {
    Hmac(Vec<u8>),
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl TestKey {
    /// A fresh key for `alg`: a random secret as long as the hash for HMAC, RSA 2048, P-256 or P-384, or
    /// Ed25519.
    pub fn generate(alg: Algorithm) -> Self {
        let material = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let len = match alg {
                    Algorithm::HS256 => 32,
                    Algorithm::HS384 => 48,
                    _ => 64,
                };
                let mut secret = vec![0; len];
                SystemRandom::new().fill(&mut secret).expect("random bytes");
                Material::Hmac(secret)
            }
            Algorithm::ES256 => {
                Material::Ec(EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key"))
            }
            Algorithm::ES384 => {
                Material::Ec(EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_FIXED_SIGNING).expect("P-384 key"))
            }
            Algorithm::EdDSA => Material::Ed(Ed25519KeyPair::generate().expect("Ed25519 key")),
            _ => Material::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key")),
        };
        Self { alg, kid: None, material }
    }

    /// An HMAC key with the given secret (for peers that take their secret as text).
    pub fn hmac_with_secret(alg: Algorithm, secret: &[u8]) -> Self {
        Self { alg, kid: None, material: Material::Hmac(secret.to_vec()) }
    }

    /// The same key material, bound to another algorithm (to forge algorithm swaps).
    pub fn with_alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Sets the `kid` put in the header of tokens and in the verification key.
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    /// The algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `kid`, if set.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// A token builder signing with this key: see [`TokenBuilder`].
    pub fn token(&self) -> TokenBuilder<'_> {
        TokenBuilder::new(self)
    }

    /// A key set of this key's verification key alone, for `Validator::builder`.
    ///
    /// # Panics
    ///
    /// Never for a key made here.
    pub fn key_set(&self) -> KeySet {
        KeySet::new([self.verification_key()]).expect("one key")
    }

    /// The secret of an HMAC key.
    pub fn secret(&self) -> Option<&[u8]> {
        match &self.material {
            Material::Hmac(secret) => Some(secret),
            _ => None,
        }
    }

    /// The public key as PEM (`PUBLIC KEY`), for asymmetric keys.
    pub fn public_pem(&self) -> Option<String> {
        let der = match &self.material {
            Material::Hmac(_) => return None,
            Material::Rsa(pair) => pair.public_key().as_der().expect("RSA SPKI").as_ref().to_vec(),
            Material::Ec(pair) => pair.public_key().as_der().expect("EC SPKI").as_ref().to_vec(),
            Material::Ed(pair) => pair.public_key().as_der().expect("Ed25519 SPKI").as_ref().to_vec(),
        };
        Some(pem("PUBLIC KEY", &der))
    }

    /// jwtgate's verification key for this key.
    pub fn verification_key(&self) -> Key {
        let key = match &self.material {
            Material::Hmac(secret) => Key::hmac(self.alg, &Secret::new(secret.clone())),
            _ => Key::from_pem(self.alg, self.public_pem().expect("public key")),
        }
        .expect("test key loads");
        match &self.kid {
            Some(kid) => key.with_kid(kid.clone()),
            None => key,
        }
    }

    /// The verification key as a JWK with `kid` (if set) and `alg`.
    pub fn jwk(&self) -> Value {
        let mut jwk = match &self.material {
            Material::Hmac(secret) => json!({ "kty": "oct", "k": b64(secret) }),
            Material::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Material::Ec(pair) => {
                let point = pair.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if half == 32 { "P-256" } else { "P-384" };
                json!({ "kty": "EC", "crv": crv, "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..]) })
            }
            Material::Ed(pair) => json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) }),
        };
        jwk["alg"] = json!(self.alg.as_str());
        if let Some(kid) = &self.kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// The signature of `message` with this key under its algorithm.
    pub fn signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.material {
            Material::Hmac(secret) => {
                let alg = match self.alg {
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    _ => hmac::HMAC_SHA256,
                };
                hmac::sign(&hmac::Key::new(alg, secret), message).as_ref().to_vec()
            }
            Material::Rsa(pair) => {
                let encoding: &'static dyn sig::RsaEncoding = match self.alg {
                    Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_SHA512,
                    _ => &sig::RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(encoding, &rng, message, &mut signature).expect("RSA signature");
                signature
            }
            Material::Ec(pair) => pair.sign(&rng, message).expect("ECDSA signature").as_ref().to_vec(),
            Material::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// A compact JWS of the given header and claims JSON texts, signed with this key.
    pub fn sign_raw(&self, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = self.signature(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }

    /// The header this key puts on tokens: `alg`, `typ: JWT`, and `kid` when set.
    pub fn header(&self) -> Value {
        let mut header = json!({ "alg": self.alg.as_str(), "typ": "JWT" });
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        header
    }

    /// A token with this key's header and `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_raw(&self.header().to_string(), &claims.to_string())
    }
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// The encodings a private key's PEM can take.
#[derive(Clone, Copy, Debug)]
pub enum PrivateForm {
    /// `PRIVATE KEY`, PKCS#8 v1 (what `openssl genpkey` writes).
    Pkcs8,
    /// `PRIVATE KEY`, PKCS#8 v2 (with the public key inside), for Ed25519.
    Pkcs8V2,
    /// `EC PRIVATE KEY`, SEC1 (RFC 5915), for EC keys.
    Sec1,
}

impl TestKey {
    /// The private key as PEM in `form`, for asymmetric keys (`None` for HMAC, or a form the type lacks).
    pub fn private_pem(&self, form: PrivateForm) -> Option<String> {
        let (label, der) = match (&self.material, form) {
            (Material::Rsa(pair), PrivateForm::Pkcs8) => {
                ("PRIVATE KEY", pair.as_der().expect("RSA PKCS#8").as_ref().to_vec())
            }
            (Material::Ec(pair), PrivateForm::Pkcs8) => {
                ("PRIVATE KEY", pair.to_pkcs8v1().expect("EC PKCS#8").as_ref().to_vec())
            }
            (Material::Ec(pair), PrivateForm::Sec1) => {
                ("EC PRIVATE KEY", pair.private_key().as_der().expect("EC SEC1").as_ref().to_vec())
            }
            (Material::Ed(pair), PrivateForm::Pkcs8) => {
                ("PRIVATE KEY", pair.to_pkcs8v1().expect("Ed25519 PKCS#8 v1").as_ref().to_vec())
            }
            (Material::Ed(pair), PrivateForm::Pkcs8V2) => {
                ("PRIVATE KEY", pair.to_pkcs8().expect("Ed25519 PKCS#8 v2").as_ref().to_vec())
            }
            _ => return None,
        };
        Some(pem(label, &der))
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).expect("base64")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}
