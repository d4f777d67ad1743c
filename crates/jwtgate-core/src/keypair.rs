//! Key pairs: a private key parsed for signing, and the public members of a key, written as a JWK writes
//! them. Signing keys and published keys both build on it.

use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, PublicKey as RsaPublicKey};
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ConfigError;
use crate::algorithm::{Algorithm, KeyType};

/// What makes a signature, for each key type.
#[allow(clippy::large_enum_variant, reason = "one per key, behind an Arc; boxing would add a hop per signature")]
pub(crate) enum Signer {
    Hmac(hmac::Key),
    Rsa(RsaKeyPair, &'static dyn sig::RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private key in PEM whose label is `label` (checked by the caller): its signer and its public members.
/// Errors never quote the PEM.
pub(crate) fn parse_private(alg: Algorithm, label: &str, pem: &[u8]) -> Result<(Signer, PublicMembers), ConfigError> {
    let document = pem::parse(pem).map_err(|_| ConfigError::key("the PEM document is malformed".to_owned()))?;
    private_key(alg, document.tag(), document.contents())
        .ok_or_else(|| ConfigError::key(format!("the PEM {label} is not a key usable with {alg}")))
}

pub(crate) fn ec_signing(alg: Algorithm) -> &'static sig::EcdsaSigningAlgorithm {
    match alg {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        _ => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
    }
}

/// A private key in DER (`tag` is its PEM label), parsed by aws-lc-rs, with its public members: PKCS#8 (v1
/// or v2) for every type, PKCS#1 for RSA, SEC1 for EC.
fn private_key(alg: Algorithm, tag: &str, der: &[u8]) -> Option<(Signer, PublicMembers)> {
    match alg.key_type() {
        KeyType::Rsa => {
            let pair = match tag {
                "PRIVATE KEY" => RsaKeyPair::from_pkcs8(der),
                "RSA PRIVATE KEY" => RsaKeyPair::from_der(der),
                _ => return None,
            }
            .ok()?;
            let encoding: &'static dyn sig::RsaEncoding = match alg {
                Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                _ => &sig::RSA_PSS_SHA512,
            };
            let members = PublicMembers::rsa(pair.public_key());
            Some((Signer::Rsa(pair, encoding), members))
        }
        KeyType::Ec => {
            let pair = match tag {
                "PRIVATE KEY" | "EC PRIVATE KEY" => EcdsaKeyPair::from_private_key_der(ec_signing(alg), der).ok()?,
                _ => return None,
            };
            let members = PublicMembers::ec(alg, pair.public_key().as_ref())?;
            Some((Signer::Ec(pair), members))
        }
        KeyType::Okp if tag == "PRIVATE KEY" => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?;
            let members = PublicMembers::ed25519(pair.public_key().as_ref())?;
            Some((Signer::Ed(pair), members))
        }
        KeyType::Okp | KeyType::Oct => None,
    }
}

/// The public members of a key, in the order they are written: `kty`, then `n` and `e`, or `crv`, `x` and
/// `y`, or `crv` and `x`.
#[derive(PartialEq, Eq)]
pub(crate) struct PublicMembers(pub(crate) Vec<(&'static str, String)>);

impl PublicMembers {
    pub(crate) fn rsa(public: &RsaPublicKey) -> Self {
        Self(vec![
            ("kty", "RSA".to_owned()),
            ("n", b64(public.modulus().big_endian_without_leading_zero())),
            ("e", b64(public.exponent().big_endian_without_leading_zero())),
        ])
    }

    /// From an uncompressed point (0x04, then x and y) on `alg`'s curve.
    pub(crate) fn ec(alg: Algorithm, point: &[u8]) -> Option<Self> {
        let (crv, len) = match alg {
            Algorithm::ES256 => ("P-256", 32),
            _ => ("P-384", 48),
        };
        if point.len() != 1 + 2 * len || point[0] != 0x04 {
            return None;
        }
        Some(Self(vec![
            ("kty", "EC".to_owned()),
            ("crv", crv.to_owned()),
            ("x", b64(&point[1..=len])),
            ("y", b64(&point[1 + len..])),
        ]))
    }

    pub(crate) fn ed25519(public: &[u8]) -> Option<Self> {
        (public.len() == 32)
            .then(|| Self(vec![("kty", "OKP".to_owned()), ("crv", "Ed25519".to_owned()), ("x", b64(public))]))
    }

    /// From a public key in the form jsonwebtoken decodes it to: PKCS#1 or SubjectPublicKeyInfo DER for RSA,
    /// an uncompressed point for EC, 32 raw bytes for Ed25519. (jsonwebtoken's own JWK conversion would ask
    /// for its process-level crypto provider, which a user's build may leave undetermined.)
    pub(crate) fn of_public(alg: Algorithm, der: &[u8]) -> Option<Self> {
        match alg.key_type() {
            KeyType::Rsa => RsaPublicKey::from_der(der).ok().map(|public| Self::rsa(&public)),
            KeyType::Ec => Self::ec(alg, der),
            KeyType::Okp => Self::ed25519(der),
            KeyType::Oct => None,
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
