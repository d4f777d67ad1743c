//! The JWE algorithms jwtgate supports (RFC 7518 §4 and §5), by the names a JWE header gives them.

use std::fmt;
use std::str::FromStr;

/// How a token's content encryption key reaches its recipient: the JWE header's `alg` (RFC 7518 §4.1).
///
/// `RSA1_5` is not here and never will be (RFC 8725 §3.2: its padding oracle, Bleichenbacher's attack, has
/// broken one implementation after another). `RSA-OAEP` (SHA-1) is here for issuers that offer nothing
/// else, but only a key built for it by name decrypts with it: see [`DecryptionKey`](super::DecryptionKey).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyManagement {
    /// `RSA-OAEP-256`: RSAES-OAEP with SHA-256 and MGF1 with SHA-256.
    RsaOaep256,
    /// `RSA-OAEP`: RSAES-OAEP with SHA-1 and MGF1 with SHA-1.
    RsaOaep,
    /// `ECDH-ES`: the content key agreed directly, by ECDH with an ephemeral key and the Concat KDF.
    EcdhEs,
    /// `ECDH-ES+A128KW`: a key agreed as for `ECDH-ES`, which unwraps the content key (AES-128 key wrap).
    EcdhEsA128Kw,
    /// `ECDH-ES+A256KW`: the same with AES-256 key wrap.
    EcdhEsA256Kw,
    /// `A128KW`: the content key wrapped with a shared 128-bit key (RFC 3394).
    A128Kw,
    /// `A256KW`: the same with a 256-bit key.
    A256Kw,
    /// `dir`: the shared key is the content key.
    Dir,
}

impl KeyManagement {
    /// Every algorithm, in the order above.
    pub const ALL: [Self; 8] = [
        Self::RsaOaep256,
        Self::RsaOaep,
        Self::EcdhEs,
        Self::EcdhEsA128Kw,
        Self::EcdhEsA256Kw,
        Self::A128Kw,
        Self::A256Kw,
        Self::Dir,
    ];

    /// The name in a JWE header, `RSA-OAEP-256`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RsaOaep256 => "RSA-OAEP-256",
            Self::RsaOaep => "RSA-OAEP",
            Self::EcdhEs => "ECDH-ES",
            Self::EcdhEsA128Kw => "ECDH-ES+A128KW",
            Self::EcdhEsA256Kw => "ECDH-ES+A256KW",
            Self::A128Kw => "A128KW",
            Self::A256Kw => "A256KW",
            Self::Dir => "dir",
        }
    }

    /// The kind of key it needs.
    pub(crate) const fn family(self) -> Family {
        match self {
            Self::RsaOaep256 | Self::RsaOaep => Family::Rsa,
            Self::EcdhEs | Self::EcdhEsA128Kw | Self::EcdhEsA256Kw => Family::Agreement,
            Self::A128Kw | Self::A256Kw | Self::Dir => Family::Symmetric,
        }
    }

    /// The length of the key-wrapping key, for the algorithms that wrap the content key with AES.
    pub(crate) const fn wrap_key_len(self) -> Option<usize> {
        match self {
            Self::A128Kw | Self::EcdhEsA128Kw => Some(16),
            Self::A256Kw | Self::EcdhEsA256Kw => Some(32),
            _ => None,
        }
    }
}

/// The kinds of key a [`KeyManagement`] algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Rsa,
    Agreement,
    Symmetric,
}

impl fmt::Display for KeyManagement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyManagement {
    type Err = UnsupportedJweAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|alg| alg.name() == name).ok_or_else(|| UnsupportedJweAlgorithm(name.to_owned()))
    }
}

/// How a token's content is encrypted: the JWE header's `enc` (RFC 7518 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentEncryption {
    /// `A128GCM`: AES-128 in GCM.
    A128Gcm,
    /// `A256GCM`: AES-256 in GCM.
    A256Gcm,
    /// `A128CBC-HS256`: AES-128 in CBC mode with HMAC-SHA-256 (RFC 7518 §5.2.3).
    A128CbcHs256,
    /// `A256CBC-HS512`: AES-256 in CBC mode with HMAC-SHA-512 (RFC 7518 §5.2.5).
    A256CbcHs512,
}

impl ContentEncryption {
    /// Every content encryption, in the order above.
    pub const ALL: [Self; 4] = [Self::A128Gcm, Self::A256Gcm, Self::A128CbcHs256, Self::A256CbcHs512];

    /// The name in a JWE header, `A256GCM`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::A128Gcm => "A128GCM",
            Self::A256Gcm => "A256GCM",
            Self::A128CbcHs256 => "A128CBC-HS256",
            Self::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// The length of its key, in bytes: for the CBC-HMAC algorithms, the MAC key and the encryption key
    /// together.
    pub const fn key_len(self) -> usize {
        match self {
            Self::A128Gcm => 16,
            Self::A256Gcm | Self::A128CbcHs256 => 32,
            Self::A256CbcHs512 => 64,
        }
    }

    /// The length of its initialization vector, in bytes.
    pub(crate) const fn iv_len(self) -> usize {
        match self {
            Self::A128Gcm | Self::A256Gcm => 12,
            Self::A128CbcHs256 | Self::A256CbcHs512 => 16,
        }
    }

    /// The length of its authentication tag, in bytes.
    pub(crate) const fn tag_len(self) -> usize {
        match self {
            Self::A128Gcm | Self::A256Gcm | Self::A128CbcHs256 => 16,
            Self::A256CbcHs512 => 32,
        }
    }
}

impl fmt::Display for ContentEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ContentEncryption {
    type Err = UnsupportedJweAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|enc| enc.name() == name).ok_or_else(|| UnsupportedJweAlgorithm(name.to_owned()))
    }
}

/// The curves of the `ECDH-ES` algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    X25519,
}

impl Curve {
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::X25519 => "X25519",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::P256, Self::P384, Self::X25519].into_iter().find(|curve| curve.name() == name)
    }

    /// The length of a coordinate (for X25519, of the key), in bytes.
    pub(crate) const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 | Self::X25519 => 32,
            Self::P384 => 48,
        }
    }

    pub(crate) const fn kty(self) -> &'static str {
        match self {
            Self::P256 | Self::P384 => "EC",
            Self::X25519 => "OKP",
        }
    }

    pub(crate) fn agreement(self) -> &'static aws_lc_rs::agreement::Algorithm {
        match self {
            Self::P256 => &aws_lc_rs::agreement::ECDH_P256,
            Self::P384 => &aws_lc_rs::agreement::ECDH_P384,
            Self::X25519 => &aws_lc_rs::agreement::X25519,
        }
    }
}

/// A JWE algorithm name jwtgate does not support.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedJweAlgorithm(pub(crate) String);

impl fmt::Display for UnsupportedJweAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_str() {
            "RSA1_5" => f.write_str("RSA1_5 is not supported: it is open to padding-oracle attacks (RFC 8725 §3.2)"),
            name => write!(f, "unsupported JWE algorithm {:?}", name.chars().take(32).collect::<String>()),
        }
    }
}

impl std::error::Error for UnsupportedJweAlgorithm {}
