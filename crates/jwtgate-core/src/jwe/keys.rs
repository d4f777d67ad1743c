//! Decryption keys (the recipient's private keys and shared secrets) and encryption keys (a recipient's public
//! key or shared secret, for issuing), each bound to one key management algorithm and named by a `kid`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::agreement::{self, PrivateKey};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::key_wrap::{AES_128, AES_256, KeyEncryptionKey, KeyWrap};
use aws_lc_rs::rsa::{
    KeyPair as RsaKeyPair, KeyPairComponents, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm,
    OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey, PublicKeyComponents,
};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::agreement as ecdh;
use super::alg::{ContentEncryption, Curve, Family, KeyManagement};
use crate::key::pem_label;
use crate::{ConfigError, Secret};

/// The smallest and largest RSA keys accepted, in bits, as for signatures.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;
/// The PKCS#8 prefix of an X25519 private key (RFC 8410): the 32 key bytes follow.
pub(crate) const X25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20];

/// A key that decrypts encrypted tokens (JWE), bound to one [`KeyManagement`] algorithm and a `kid`: a token
/// whose header names another algorithm is never decrypted with it.
///
/// Load it from PEM ([`from_pem`](Self::from_pem)), from a JWK ([`from_jwk`](Self::from_jwk), which needs the
/// JWK's `alg`), or from a shared secret ([`symmetric`](Self::symmetric)); several at once, for rotation, in
/// [`DecryptionKeys`]. `RSA-OAEP` (SHA-1) is never taken from a JWK's `alg`: only
/// [`from_pem`](Self::from_pem) or [`from_jwk_for`](Self::from_jwk_for) with [`KeyManagement::RsaOaep`] named
/// in code decrypts with it. `Debug` shows the algorithm and the `kid`, never the key.
#[derive(Clone)]
pub struct DecryptionKey {
    inner: Arc<Inner>,
}

struct Inner {
    alg: KeyManagement,
    kid: String,
    material: Material,
}

pub(crate) enum Material {
    Rsa {
        key: OaepPrivateDecryptingKey,
        public: PublicEncryptingKey,
    },
    Agreement {
        curve: Curve,
        key: PrivateKey,
    },
    /// A shared secret; for `dir`, with the one content encryption it is the key of.
    Symmetric {
        secret: Zeroizing<Vec<u8>>,
        enc: Option<ContentEncryption>,
    },
}

impl DecryptionKey {
    /// A private key from PEM for `alg`, named `kid`: for the RSA algorithms a `PRIVATE KEY` (PKCS#8) or
    /// `RSA PRIVATE KEY` (PKCS#1) of 2048 to 8192 bits; for the `ECDH-ES` ones a P-256 or P-384 key
    /// (`PRIVATE KEY` or `EC PRIVATE KEY`) or an X25519 one (`PRIVATE KEY`). Errors never quote the PEM.
    pub fn from_pem(alg: KeyManagement, pem: impl AsRef<[u8]>, kid: impl Into<String>) -> Result<Self, ConfigError> {
        let kid = non_empty(kid.into())?;
        let pem = pem.as_ref();
        let label = pem_label(pem).ok_or_else(|| ConfigError::key("not a PEM document".to_owned()))?.to_owned();
        let document = pem::parse(pem).map_err(|_| ConfigError::key("the PEM document is malformed".to_owned()))?;
        let der = Zeroizing::new(document.into_contents());
        let unusable = || ConfigError::key(format!("the PEM {label} is not a key usable with {alg}"));
        let material = match (alg.family(), label.as_str()) {
            (Family::Rsa, "PRIVATE KEY") => rsa(alg, PrivateDecryptingKey::from_pkcs8(&der).map_err(|_| unusable())?)?,
            (Family::Rsa, "RSA PRIVATE KEY") => {
                let pair = RsaKeyPair::from_der(&der).map_err(|_| unusable())?;
                let pkcs8 = AsDer::<Pkcs8V1Der<'_>>::as_der(&pair).map_err(|_| unusable())?;
                rsa(alg, PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).map_err(|_| unusable())?)?
            }
            (Family::Agreement, "PRIVATE KEY" | "EC PRIVATE KEY") => {
                if let Some(raw) = der.strip_prefix(&X25519_PKCS8_PREFIX[..]) {
                    let key = PrivateKey::from_private_key(&agreement::X25519, raw).map_err(|_| unusable())?;
                    Material::Agreement { curve: Curve::X25519, key }
                } else {
                    [Curve::P256, Curve::P384]
                        .into_iter()
                        .find_map(|curve| {
                            let key = PrivateKey::from_private_key_der(curve.agreement(), &der).ok()?;
                            Some(Material::Agreement { curve, key })
                        })
                        .ok_or_else(unusable)?
                }
            }
            (Family::Symmetric, _) => {
                return Err(ConfigError::key(format!("{alg} uses a shared secret: use DecryptionKey::symmetric")));
            }
            _ => {
                return Err(ConfigError::key(format!("PEM holds a {label:?}, not a private key usable with {alg}")));
            }
        };
        Ok(Self { inner: Arc::new(Inner { alg, kid, material }) })
    }

    /// A shared secret for `A128KW` (16 bytes), `A256KW` (32 bytes) or `dir` (the content key itself, bound
    /// to one content encryption by its length: 16 bytes for `A128GCM`, 32 for `A256GCM`, 64 for
    /// `A256CBC-HS512`; see [`dir`](Self::dir) for `A128CBC-HS256`), named `kid`. Read it with
    /// [`Secret::from_env_base64`]; never hard-code it.
    pub fn symmetric(alg: KeyManagement, secret: &Secret, kid: impl Into<String>) -> Result<Self, ConfigError> {
        let kid = non_empty(kid.into())?;
        Ok(Self { inner: Arc::new(Inner { alg, kid, material: symmetric(alg, secret.expose(), None)? }) })
    }

    /// A `dir` key: `secret` is the content key of `enc` (of its length), and decrypts tokens with that `enc`
    /// only: one key, one algorithm (RFC 8725 §3.1). Named `kid`.
    pub fn dir(secret: &Secret, enc: ContentEncryption, kid: impl Into<String>) -> Result<Self, ConfigError> {
        let kid = non_empty(kid.into())?;
        let material = symmetric(KeyManagement::Dir, secret.expose(), Some(enc))?;
        Ok(Self { inner: Arc::new(Inner { alg: KeyManagement::Dir, kid, material }) })
    }

    /// A key from a JWK with its private members, bound to the JWK's `alg` (required), named by its `kid`
    /// (required). `use`, when present, must be `enc`. A `dir` key's content encryption is the JWK's `enc`
    /// member when it has one, else the one its length implies (as for [`symmetric`](Self::symmetric)).
    /// `RSA-OAEP` is refused here: see [`from_jwk_for`](Self::from_jwk_for).
    pub fn from_jwk(json: &str) -> Result<Self, ConfigError> {
        let (alg, jwk) = read_jwk(json, None, "DecryptionKey::from_jwk_for")?;
        Self::from_jwk_map(alg, &jwk)
    }

    /// A key from a JWK with its private members, for `alg`: the JWK's own `alg`, when present, must be the
    /// same. Its `kid` is required.
    pub fn from_jwk_for(alg: KeyManagement, json: &str) -> Result<Self, ConfigError> {
        let (alg, jwk) = read_jwk(json, Some(alg), "")?;
        Self::from_jwk_map(alg, &jwk)
    }

    fn from_jwk_map(alg: KeyManagement, jwk: &Map<String, Value>) -> Result<Self, ConfigError> {
        let kid = jwk
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| ConfigError::key("a decryption JWK needs a kid".to_owned()))?;
        let kid = non_empty(kid.to_owned())?;
        let material = match (alg.family(), member(jwk, "kty")?) {
            (Family::Rsa, "RSA") => {
                if jwk.contains_key("oth") {
                    return Err(ConfigError::key("multi-prime RSA keys are not supported".to_owned()));
                }
                let bytes = |name: &str| bytes(jwk, name).map(Zeroizing::new);
                let (n, e) = (bytes("n")?, bytes("e")?);
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents { n: n.as_slice(), e: e.as_slice() },
                    d: bytes("d")?,
                    p: bytes("p")?,
                    q: bytes("q")?,
                    dP: bytes("dp")?,
                    dQ: bytes("dq")?,
                    qInv: bytes("qi")?,
                };
                let unusable = || ConfigError::key(format!("the JWK {kid:?} is not a valid RSA private key"));
                let pair = RsaKeyPair::from_components(&components).map_err(|_| unusable())?;
                let pkcs8 = AsDer::<Pkcs8V1Der<'_>>::as_der(&pair).map_err(|_| unusable())?;
                rsa(alg, PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).map_err(|_| unusable())?)?
            }
            (Family::Agreement, "EC" | "OKP") => {
                let curve = Curve::from_name(member(jwk, "crv")?)
                    .filter(|curve| Some(curve.kty()) == jwk.get("kty").and_then(Value::as_str))
                    .ok_or_else(|| ConfigError::key(format!("the JWK {kid:?} is not on P-256, P-384 or X25519")))?;
                let d = Zeroizing::new(bytes(jwk, "d")?);
                let key = PrivateKey::from_private_key(curve.agreement(), &d)
                    .map_err(|_| ConfigError::key(format!("the JWK {kid:?} has an invalid private key")))?;
                // The public members, when given, must be this private key's.
                let public = key.compute_public_key().map_err(|_| ConfigError::key("invalid key".to_owned()))?;
                if let Some(given) = public_point(jwk, curve)?
                    && given != public.as_ref()
                {
                    return Err(ConfigError::key(format!("the JWK {kid:?}'s public and private keys differ")));
                }
                Material::Agreement { curve, key }
            }
            (Family::Symmetric, "oct") => {
                let enc = match jwk.get("enc") {
                    None => None,
                    Some(Value::String(enc)) if alg == KeyManagement::Dir => {
                        Some(enc.parse().map_err(|error: super::UnsupportedJweAlgorithm| {
                            ConfigError::key(format!("the JWK {kid:?}: {error}"))
                        })?)
                    }
                    Some(_) => return Err(ConfigError::key(format!("the JWK {kid:?} has an enc it cannot use"))),
                };
                symmetric(alg, &Zeroizing::new(bytes(jwk, "k")?), enc)?
            }
            (_, kty) => return Err(ConfigError::key(format!("a {kty:?} JWK cannot be used with {alg}"))),
        };
        Ok(Self { inner: Arc::new(Inner { alg, kid, material }) })
    }

    /// A fresh key for `alg`, named `kid`: RSA 2048 for the RSA algorithms, P-256 for the `ECDH-ES` ones, and
    /// random bytes for the others (32 for `dir`: an `A256GCM` key). For tests and for
    /// keys that live only as long as the process.
    pub fn generate(alg: KeyManagement, kid: impl Into<String>) -> Result<Self, ConfigError> {
        let kid = non_empty(kid.into())?;
        let failed = || ConfigError::key(format!("cannot generate a {alg} key"));
        let material = match alg.family() {
            Family::Rsa => {
                rsa(alg, PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| failed())?)?
            }
            Family::Agreement => Material::Agreement {
                curve: Curve::P256,
                key: PrivateKey::generate(&agreement::ECDH_P256).map_err(|_| failed())?,
            },
            Family::Symmetric => {
                let mut secret = Zeroizing::new(vec![0; alg.wrap_key_len().unwrap_or(32)]);
                aws_lc_rs::rand::fill(&mut secret).map_err(|_| failed())?;
                symmetric(alg, &secret, None)?
            }
        };
        Ok(Self { inner: Arc::new(Inner { alg, kid, material }) })
    }

    /// The algorithm it decrypts with.
    pub fn algorithm(&self) -> KeyManagement {
        self.inner.alg
    }

    /// Its `kid`.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The key that encrypts for it with `enc`: its public half (for an issuer to encrypt tokens to you), or
    /// the same shared secret.
    pub fn encryption_key(&self, enc: ContentEncryption) -> Result<EncryptionKey, ConfigError> {
        let recipient = match &self.inner.material {
            Material::Rsa { public, .. } => rsa_recipient(public.clone())?,
            Material::Agreement { curve, key } => Recipient::Agreement {
                curve: *curve,
                public: key
                    .compute_public_key()
                    .map_err(|_| ConfigError::key("invalid key".to_owned()))?
                    .as_ref()
                    .to_vec(),
            },
            Material::Symmetric { secret, enc: bound } => {
                if let Some(bound) = bound
                    && *bound != enc
                {
                    return Err(ConfigError::key(format!(
                        "the dir key {:?} is an {bound} key, not {enc}",
                        self.inner.kid
                    )));
                }
                Recipient::Symmetric(secret.clone())
            }
        };
        EncryptionKey::new(self.inner.alg, enc, Some(self.inner.kid.clone()), recipient)
    }

    /// The public JWK of an RSA or `ECDH-ES` key, with its `kid`, `alg` and `use: enc`: what you give an
    /// issuer. `None` for a shared secret.
    pub fn public_jwk(&self) -> Option<Value> {
        let mut jwk = Map::new();
        match &self.inner.material {
            Material::Rsa { public, .. } => {
                let der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der<'_>>::as_der(public).ok()?;
                let public = aws_lc_rs::rsa::PublicKey::from_der(der.as_ref()).ok()?;
                for (name, value) in crate::keypair::PublicMembers::rsa(&public).0 {
                    jwk.insert(name.into(), value.into());
                }
            }
            Material::Agreement { curve, key } => {
                let public = key.compute_public_key().ok()?;
                let public = public.as_ref();
                jwk.insert("kty".into(), curve.kty().into());
                jwk.insert("crv".into(), curve.name().into());
                match curve {
                    Curve::X25519 => {
                        jwk.insert("x".into(), b64(public).into());
                    }
                    Curve::P256 | Curve::P384 => {
                        let len = curve.coordinate_len();
                        jwk.insert("x".into(), b64(&public[1..=len]).into());
                        jwk.insert("y".into(), b64(&public[1 + len..]).into());
                    }
                }
            }
            Material::Symmetric { .. } => return None,
        }
        jwk.insert("kid".into(), self.inner.kid.clone().into());
        jwk.insert("alg".into(), self.inner.alg.name().into());
        jwk.insert("use".into(), "enc".into());
        Some(Value::Object(jwk))
    }

    /// The content key of a token whose header is `alg`/`enc` (and, for `ECDH-ES`, `epk`, `apu`, `apv`) and
    /// whose encrypted key is `encrypted_key`; `None` when it cannot be had. Every branch ends the same way
    /// for the caller, which then uses a random key (RFC 7516 §11.5), so that a wrong key, padding or wrap
    /// fails at the tag like any other tampering.
    pub(crate) fn content_key(
        &self,
        header: &super::header::JweHeader,
        encrypted_key: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let enc = header.enc;
        let cek = match &self.inner.material {
            Material::Rsa { key, .. } => {
                let mut out = Zeroizing::new(vec![0; key.min_output_size()]);
                let len = key.decrypt(oaep(self.inner.alg), encrypted_key, &mut out, None).ok()?.len();
                out.truncate(len);
                out
            }
            Material::Agreement { curve, key } => {
                let epk = header.epk.as_ref().filter(|epk| epk.curve == *curve)?;
                let (id, len) = ecdh::derived_key(self.inner.alg, enc);
                let derived = ecdh::receive(key, *curve, &epk.public, id, len, &header.apu, &header.apv)?;
                if self.inner.alg == KeyManagement::EcdhEs {
                    if !encrypted_key.is_empty() {
                        return None;
                    }
                    derived
                } else {
                    unwrap(&derived, encrypted_key)?
                }
            }
            Material::Symmetric { secret, enc: Some(bound) } => {
                // `dir`: the key of one content encryption, and no encrypted key.
                if *bound != enc || !encrypted_key.is_empty() {
                    return None;
                }
                secret.clone()
            }
            Material::Symmetric { secret, enc: None } => unwrap(secret, encrypted_key)?,
        };
        (cek.len() == enc.key_len()).then_some(cek)
    }
}

impl fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("alg", &self.inner.alg)
            .field("kid", &self.inner.kid)
            .finish_non_exhaustive()
    }
}

/// The keys a validator decrypts tokens with: several, for rotation, each with a `kid` of its own.
///
/// A token's `kid` selects one key, which must be of the token's `alg`; a token without `kid` is decrypted
/// only when exactly one key has its `alg`. Either way, at most one key is tried.
#[derive(Clone, Debug)]
pub struct DecryptionKeys {
    keys: Arc<[DecryptionKey]>,
}

impl DecryptionKeys {
    /// These keys; refuses none, and two with the same `kid`.
    pub fn new(keys: impl IntoIterator<Item = DecryptionKey>) -> Result<Self, ConfigError> {
        let keys: Vec<DecryptionKey> = keys.into_iter().collect();
        if keys.is_empty() {
            return Err(ConfigError::key("no decryption key".to_owned()));
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|other| other.kid() == key.kid()) {
                return Err(ConfigError::key(format!("two decryption keys have the kid {:?}", key.kid())));
            }
        }
        Ok(Self { keys: keys.into() })
    }

    /// The keys of a JWK Set with private members (`{"keys": [...]}`), each loaded as
    /// [`DecryptionKey::from_jwk`] does: with its `kid`, its `alg` and, when present, `use: enc`. Any key that
    /// cannot be loaded fails the whole set, naming it by `kid` or position.
    pub fn from_jwks(json: &str) -> Result<Self, ConfigError> {
        let set: Value =
            serde_json::from_str(json).map_err(|_| ConfigError::key("the JWK Set is not valid JSON".to_owned()))?;
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| ConfigError::key("the JWK Set has no keys array".to_owned()))?;
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, jwk)| {
                DecryptionKey::from_jwk(&Zeroizing::new(jwk.to_string())).map_err(|error| {
                    let name = jwk
                        .get("kid")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("#{i}"), |kid| format!("{kid:?}"));
                    error.context(&format!("key {name}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// [`from_jwks`](Self::from_jwks) from a file.
    pub fn from_jwks_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let json = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|error| ConfigError::key(format!("cannot read {}: {error}", path.display())))?,
        );
        Self::from_jwks(&json)
    }

    /// No key: a validator that requires encryption without keys refuses every token.
    pub(crate) fn none() -> Self {
        Self { keys: Arc::from([]) }
    }

    /// The keys.
    pub fn keys(&self) -> &[DecryptionKey] {
        &self.keys
    }

    /// The key for a token whose header names `kid` (or none) and `alg`.
    pub(crate) fn select(&self, kid: Option<&str>, alg: KeyManagement) -> Option<&DecryptionKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|key| key.kid() == kid).filter(|key| key.algorithm() == alg),
            None => {
                let mut of_alg = self.keys.iter().filter(|key| key.algorithm() == alg);
                match (of_alg.next(), of_alg.next()) {
                    (Some(key), None) => Some(key),
                    _ => None,
                }
            }
        }
    }
}

/// A recipient's key, to issue tokens encrypted for it with one key management algorithm and one content
/// encryption: an RSA or `ECDH-ES` public key, or a shared secret. `Debug` never shows a secret.
#[derive(Clone)]
pub struct EncryptionKey {
    alg: KeyManagement,
    enc: ContentEncryption,
    kid: Option<String>,
    recipient: Arc<Recipient>,
}

pub(crate) enum Recipient {
    Rsa(PublicEncryptingKey),
    Agreement { curve: Curve, public: Vec<u8> },
    Symmetric(Zeroizing<Vec<u8>>),
}

impl EncryptionKey {
    fn new(
        alg: KeyManagement,
        enc: ContentEncryption,
        kid: Option<String>,
        recipient: Recipient,
    ) -> Result<Self, ConfigError> {
        match (&recipient, alg.family()) {
            (Recipient::Rsa(_), Family::Rsa) | (Recipient::Agreement { .. }, Family::Agreement) => {}
            (Recipient::Symmetric(secret), Family::Symmetric) => {
                let expected = alg.wrap_key_len().unwrap_or(enc.key_len());
                if secret.len() != expected {
                    return Err(ConfigError::key(format!(
                        "a {alg} key for {enc} is {expected} bytes, not {}",
                        secret.len()
                    )));
                }
            }
            _ => return Err(ConfigError::key(format!("this key cannot be used with {alg}"))),
        }
        Ok(Self { alg, enc, kid, recipient: Arc::new(recipient) })
    }

    /// A recipient's public key from a JWK, with its `alg` (required, and `RSA-OAEP` refused as for
    /// [`DecryptionKey::from_jwk`]) and its `kid` when present, encrypting content with `enc`.
    pub fn from_jwk(json: &str, enc: ContentEncryption) -> Result<Self, ConfigError> {
        let (alg, jwk) = read_jwk(json, None, "EncryptionKey::from_jwk_for")?;
        Self::from_jwk_map(alg, &jwk, enc)
    }

    /// A recipient's public key (or, for the symmetric algorithms, its secret: `k`) from a JWK, for `alg`;
    /// the JWK's own `alg`, when present, must be the same.
    pub fn from_jwk_for(alg: KeyManagement, json: &str, enc: ContentEncryption) -> Result<Self, ConfigError> {
        let (alg, jwk) = read_jwk(json, Some(alg), "")?;
        Self::from_jwk_map(alg, &jwk, enc)
    }

    fn from_jwk_map(alg: KeyManagement, jwk: &Map<String, Value>, enc: ContentEncryption) -> Result<Self, ConfigError> {
        let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
        let recipient = match (alg.family(), member(jwk, "kty")?) {
            (Family::Rsa, "RSA") => {
                let (n, e) = (bytes(jwk, "n")?, bytes(jwk, "e")?);
                let public: PublicEncryptingKey =
                    PublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                        .try_into()
                        .map_err(|_| ConfigError::key("the JWK is not a valid RSA public key".to_owned()))?;
                rsa_recipient(public)?
            }
            (Family::Agreement, "EC" | "OKP") => {
                let curve = Curve::from_name(member(jwk, "crv")?)
                    .filter(|curve| Some(curve.kty()) == jwk.get("kty").and_then(Value::as_str))
                    .ok_or_else(|| ConfigError::key("the JWK is not on P-256, P-384 or X25519".to_owned()))?;
                let public =
                    public_point(jwk, curve)?.ok_or_else(|| ConfigError::key("the JWK has no x".to_owned()))?;
                agreement_recipient(curve, public)?
            }
            (Family::Symmetric, "oct") => Recipient::Symmetric(Zeroizing::new(bytes(jwk, "k")?)),
            (_, kty) => return Err(ConfigError::key(format!("a {kty:?} JWK cannot be used with {alg}"))),
        };
        Self::new(alg, enc, kid, recipient)
    }

    /// A recipient's public key from PEM (`PUBLIC KEY`, SubjectPublicKeyInfo): RSA for the RSA algorithms,
    /// P-256, P-384 or X25519 for `ECDH-ES`; `kid` is the header's `kid`.
    pub fn from_pem(
        alg: KeyManagement,
        pem: impl AsRef<[u8]>,
        kid: impl Into<String>,
        enc: ContentEncryption,
    ) -> Result<Self, ConfigError> {
        let pem = pem.as_ref();
        let label = pem_label(pem).ok_or_else(|| ConfigError::key("not a PEM document".to_owned()))?;
        if label != "PUBLIC KEY" {
            return Err(ConfigError::key(format!("PEM holds a {label:?}; an encryption key is a PUBLIC KEY")));
        }
        let document = pem::parse(pem).map_err(|_| ConfigError::key("the PEM document is malformed".to_owned()))?;
        let der = document.contents();
        let unusable = || ConfigError::key(format!("the PEM PUBLIC KEY is not a key usable with {alg}"));
        let recipient = match alg.family() {
            Family::Rsa => rsa_recipient(PublicEncryptingKey::from_der(der).map_err(|_| unusable())?)?,
            Family::Agreement => {
                let (curve, public) = spki_agreement_point(der).ok_or_else(unusable)?;
                agreement_recipient(curve, public)?
            }
            Family::Symmetric => {
                return Err(ConfigError::key(format!("{alg} uses a shared secret: use EncryptionKey::symmetric")));
            }
        };
        Self::new(alg, enc, Some(kid.into()), recipient)
    }

    /// A shared secret for `A128KW` (16 bytes), `A256KW` (32) or `dir` (`enc`'s key length), named `kid`.
    pub fn symmetric(
        alg: KeyManagement,
        secret: &Secret,
        kid: impl Into<String>,
        enc: ContentEncryption,
    ) -> Result<Self, ConfigError> {
        Self::new(alg, enc, Some(kid.into()), Recipient::Symmetric(Zeroizing::new(secret.expose().to_vec())))
    }

    /// The key management algorithm.
    pub fn algorithm(&self) -> KeyManagement {
        self.alg
    }

    /// The content encryption.
    pub fn content_encryption(&self) -> ContentEncryption {
        self.enc
    }

    /// The `kid` it writes in the header.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Encrypts `jws`, a signed token, for this recipient: a compact JWE whose header says `cty: JWT` (a nested
    /// token, RFC 7519 §5.2), with a fresh content key and IV.
    pub fn encrypt(&self, jws: &str) -> Result<String, ConfigError> {
        super::seal(self, jws.as_bytes(), "JWT")
    }

    pub(crate) fn recipient(&self) -> &Recipient {
        &self.recipient
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Wraps `cek` with `kek` (AES key wrap, RFC 3394).
pub(crate) fn wrap(kek: &[u8], cek: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0; cek.len() + 8];
    let len = match kek.len() {
        16 => KeyEncryptionKey::new(&AES_128, kek).ok()?.wrap(cek, &mut out).ok()?.len(),
        32 => KeyEncryptionKey::new(&AES_256, kek).ok()?.wrap(cek, &mut out).ok()?.len(),
        _ => return None,
    };
    out.truncate(len);
    Some(out)
}

/// Unwraps `wrapped` with `kek`; `None` when its integrity check fails.
fn unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if wrapped.len() < 24 || wrapped.len() > 72 || !wrapped.len().is_multiple_of(8) {
        return None;
    }
    let mut out = Zeroizing::new(vec![0; wrapped.len()]);
    let len = match kek.len() {
        16 => KeyEncryptionKey::new(&AES_128, kek).ok()?.unwrap(wrapped, &mut out).ok()?.len(),
        32 => KeyEncryptionKey::new(&AES_256, kek).ok()?.unwrap(wrapped, &mut out).ok()?.len(),
        _ => return None,
    };
    out.truncate(len);
    Some(out)
}

pub(crate) fn oaep(alg: KeyManagement) -> &'static OaepAlgorithm {
    if alg == KeyManagement::RsaOaep { &OAEP_SHA1_MGF1SHA1 } else { &OAEP_SHA256_MGF1SHA256 }
}

fn rsa(alg: KeyManagement, key: PrivateDecryptingKey) -> Result<Material, ConfigError> {
    let bits = key.key_size_bits();
    if !RSA_BITS.contains(&bits) {
        return Err(ConfigError::key(format!("RSA keys must have 2048 to 8192 bits; this one has {bits}")));
    }
    let public = key.public_key();
    let key = OaepPrivateDecryptingKey::new(key)
        .map_err(|_| ConfigError::key(format!("the RSA key cannot be used with {alg}")))?;
    Ok(Material::Rsa { key, public })
}

fn rsa_recipient(public: PublicEncryptingKey) -> Result<Recipient, ConfigError> {
    let bits = public.key_size_bits();
    if !RSA_BITS.contains(&bits) {
        return Err(ConfigError::key(format!("RSA keys must have 2048 to 8192 bits; this one has {bits}")));
    }
    OaepPublicEncryptingKey::new(public.clone()).map_err(|_| ConfigError::key("cannot use the RSA key".to_owned()))?;
    Ok(Recipient::Rsa(public))
}

/// A recipient's point, checked now by agreeing with it once: an invalid point fails here, not when a
/// token is issued.
fn agreement_recipient(curve: Curve, public: Vec<u8>) -> Result<Recipient, ConfigError> {
    ecdh::send(curve, &public, "check", 16)
        .ok_or_else(|| ConfigError::key(format!("the public key is not a valid {} key", curve.name())))?;
    Ok(Recipient::Agreement { curve, public })
}

/// The curve and the point of a P-256, P-384 or X25519 SubjectPublicKeyInfo, in its one DER encoding for an
/// uncompressed point (RFC 5480, RFC 8410).
fn spki_agreement_point(der: &[u8]) -> Option<(Curve, Vec<u8>)> {
    const P256: &[u8] = &[
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    const P384: &[u8] = &[
        0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
        0x00, 0x22, 0x03, 0x62, 0x00,
    ];
    const X25519: &[u8] = &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00];
    [(Curve::P256, P256), (Curve::P384, P384), (Curve::X25519, X25519)].into_iter().find_map(|(curve, prefix)| {
        let point = der.strip_prefix(prefix)?;
        let expected = if curve == Curve::X25519 { 32 } else { 1 + 2 * curve.coordinate_len() };
        (point.len() == expected).then(|| (curve, point.to_vec()))
    })
}

/// A shared secret for `alg`; for `dir`, bound to `enc`, or without it to the content encryption its length
/// implies (16 bytes `A128GCM`, 32 `A256GCM`, 64 `A256CBC-HS512`).
fn symmetric(alg: KeyManagement, secret: &[u8], enc: Option<ContentEncryption>) -> Result<Material, ConfigError> {
    let wrong_length = || ConfigError::key(format!("a {alg} secret cannot be {} bytes long", secret.len()));
    let enc = match alg {
        KeyManagement::A128Kw | KeyManagement::A256Kw => {
            if alg.wrap_key_len() != Some(secret.len()) {
                return Err(wrong_length());
            }
            None
        }
        KeyManagement::Dir => {
            let enc = match (enc, secret.len()) {
                (Some(enc), _) => enc,
                (None, 16) => ContentEncryption::A128Gcm,
                (None, 32) => ContentEncryption::A256Gcm,
                (None, 64) => ContentEncryption::A256CbcHs512,
                (None, _) => return Err(wrong_length()),
            };
            if enc.key_len() != secret.len() {
                return Err(ConfigError::key(format!(
                    "a dir key for {enc} is {} bytes, not {}",
                    enc.key_len(),
                    secret.len()
                )));
            }
            Some(enc)
        }
        _ => return Err(ConfigError::key(format!("{alg} does not use a shared secret"))),
    };
    Ok(Material::Symmetric { secret: Zeroizing::new(secret.to_vec()), enc })
}

/// A JWK for encryption (`use`, when present, is `enc`) and the algorithm it is for: `alg` when given in code
/// (the JWK's own must then agree), else the JWK's own, required, and never `RSA-OAEP` (SHA-1), which only
/// `explicit`, the constructor that names it, accepts.
fn read_jwk(
    json: &str,
    alg: Option<KeyManagement>,
    explicit: &str,
) -> Result<(KeyManagement, Map<String, Value>), ConfigError> {
    let Ok(Value::Object(jwk)) = serde_json::from_str(json) else {
        return Err(ConfigError::key("the JWK is not a JSON object".to_owned()));
    };
    if jwk.get("use").is_some_and(|usage| usage != "enc") {
        return Err(ConfigError::key("the JWK is not for encryption (use)".to_owned()));
    }
    let alg = match (alg, jwk_alg(&jwk)?) {
        (Some(alg), Some(own)) if own != alg => {
            return Err(ConfigError::key(format!("the JWK's alg is {own}, not {alg}")));
        }
        (Some(alg), _) => alg,
        (None, Some(KeyManagement::RsaOaep)) => {
            return Err(ConfigError::key(format!("RSA-OAEP (SHA-1) is accepted only when named in code: {explicit}")));
        }
        (None, Some(own)) => own,
        (None, None) => return Err(ConfigError::key("the JWK has no alg".to_owned())),
    };
    Ok((alg, jwk))
}

fn jwk_alg(jwk: &Map<String, Value>) -> Result<Option<KeyManagement>, ConfigError> {
    match jwk.get("alg") {
        None => Ok(None),
        Some(Value::String(alg)) => {
            alg.parse().map(Some).map_err(|error: super::UnsupportedJweAlgorithm| ConfigError::key(error.to_string()))
        }
        Some(_) => Err(ConfigError::key("the JWK's alg is not a string".to_owned())),
    }
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, ConfigError> {
    jwk.get(name).and_then(Value::as_str).ok_or_else(|| ConfigError::key(format!("the JWK has no {name}")))
}

fn bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, ConfigError> {
    crate::jws::decode_part(member(jwk, name)?)
        .map_err(|_| ConfigError::key(format!("the JWK's {name} is not base64url")))
}

/// The public point of an `EC` or `OKP` JWK as aws-lc-rs reads it, when it has `x`.
fn public_point(jwk: &Map<String, Value>, curve: Curve) -> Result<Option<Vec<u8>>, ConfigError> {
    if !jwk.contains_key("x") {
        return Ok(None);
    }
    let coordinate = |name: &str| {
        let value = bytes(jwk, name)?;
        if value.len() == curve.coordinate_len() {
            Ok(value)
        } else {
            Err(ConfigError::key(format!("the JWK's {name} is not a {} coordinate", curve.name())))
        }
    };
    Ok(Some(match curve {
        Curve::X25519 => coordinate("x")?,
        Curve::P256 | Curve::P384 => [vec![0x04], coordinate("x")?, coordinate("y")?].concat(),
    }))
}

fn non_empty(kid: String) -> Result<String, ConfigError> {
    if kid.is_empty() { Err(ConfigError::key("a decryption key needs a kid".to_owned())) } else { Ok(kid) }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
