//! The signature algorithms jwtgate accepts, and the key types they belong to.

use std::fmt;
use std::str::FromStr;

/// A JWS signature algorithm (RFC 7518 §3, RFC 8037 §3.1).
///
/// Every [`Key`](crate::Key) is bound to exactly one algorithm, and a token is verified only when its `alg`
/// header names that algorithm exactly. `none`, in any spelling, is not an algorithm here: parsing it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA on Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm, in the order of RFC 7518.
    pub const ALL: [Algorithm; 12] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The `alg` value as it appears in a JOSE header, such as `"RS256"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The JWK key type (`kty`) that keys for this algorithm have.
    pub const fn key_type(self) -> KeyType {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => KeyType::Oct,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => KeyType::Rsa,
            Self::ES256 | Self::ES384 => KeyType::Ec,
            Self::EdDSA => KeyType::Okp,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unsupported `alg` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedAlgorithm;

impl fmt::Display for UnsupportedAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unsupported signature algorithm")
    }
}

impl std::error::Error for UnsupportedAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnsupportedAlgorithm;

    /// Parses an `alg` value. The match is exact and case-sensitive (RFC 7515 §4.1.1), so `none`, `None`,
    /// `hs256` and anything else outside [`Algorithm::ALL`] are refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == s).ok_or(UnsupportedAlgorithm)
    }
}

/// A JWK key type (`kty`, RFC 7518 §6.1, RFC 8037 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// `oct`: a symmetric secret, used for HMAC.
    Oct,
    /// `RSA`: an RSA public key.
    Rsa,
    /// `EC`: an elliptic curve public key (P-256 or P-384).
    Ec,
    /// `OKP`: an octet key pair (Ed25519).
    Okp,
}

impl KeyType {
    /// The `kty` value as it appears in a JWK, such as `"RSA"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Oct => "oct",
            Self::Rsa => "RSA",
            Self::Ec => "EC",
            Self::Okp => "OKP",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_algorithm_by_its_exact_name() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
        }
    }

    #[test]
    fn refuses_none_in_any_case_and_near_misses() {
        for s in ["none", "None", "NONE", "nOnE", "", "hs256", "HS256 ", "RS1", "ES512", "Ed25519"] {
            assert_eq!(s.parse::<Algorithm>(), Err(UnsupportedAlgorithm), "{s:?}");
        }
    }
}
