//! Encrypted tokens: nested JWTs, a signed token inside a compact JWE (RFC 7516, RFC 7519 §5.2).
//!
//! A [`Validator`](crate::Validator) given [`DecryptionKeys`] decrypts a five-part token, then validates the
//! signed token inside exactly as any token: one algorithm per key, the claims, the size limits. Nothing about
//! encryption replaces a check: an encrypted token must still be signed inside, by a key the validator
//! trusts.
//!
//! - Key management ([`KeyManagement`]): `RSA-OAEP-256`, `RSA-OAEP` (only when named in code), `ECDH-ES`,
//!   `ECDH-ES+A128KW`, `ECDH-ES+A256KW` (P-256, P-384, X25519), `A128KW`, `A256KW`, `dir`. Content
//!   ([`ContentEncryption`]): `A128GCM`, `A256GCM`, `A128CBC-HS256`, `A256CBC-HS512`. Never `RSA1_5`, never a
//!   `zip` header (refused before anything is decrypted, so nothing is ever decompressed), never `crit`.
//! - Every primitive is aws-lc-rs's (RSA-OAEP, ECDH with its curve checks, AES key wrap, AES-GCM, AES-CBC,
//!   HMAC, SHA-256); this module composes them as RFC 7518 says, and is checked against RFC 7518's and RFC
//!   7520's vectors.
//! - Whatever step fails (the header, the key, the unwrapping, the tag, the inner token's form or its
//!   signature), the answer is the same [`ErrorKind::Undecryptable`](crate::ErrorKind::Undecryptable): no
//!   oracle tells an attacker which.

mod agreement;
mod alg;
mod content;
mod header;
mod keys;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

pub use alg::{ContentEncryption, KeyManagement, UnsupportedJweAlgorithm};
pub use keys::{DecryptionKey, DecryptionKeys, EncryptionKey};

use crate::ConfigError;
use header::{JweHeader, MAX_HEADER_BYTES};
use keys::Recipient;

/// How a validator treats encrypted tokens: the keys that decrypt them, and whether a token must be
/// encrypted.
#[derive(Clone, Debug)]
pub(crate) struct Decryption {
    pub(crate) keys: DecryptionKeys,
    pub(crate) required: bool,
}

/// Why a token could not be decrypted. The validator answers every one of them alike; the variants are for
/// the tests.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not five base64url parts, or parts too large.
    Form,
    /// The header: malformed, an unsupported algorithm, `zip`, `crit`.
    Header,
    /// No key for the header's `kid` and `alg`.
    Key,
    /// The content key, the tag, the IV: the content could not be decrypted.
    Content,
    /// The content is not a signed token (`cty` other than `JWT`, not a compact JWS, a JWE inside).
    NotNested,
}

/// Whether `token` has the form of a compact JWE: five parts.
pub(crate) fn is_compact_jwe(token: &str) -> bool {
    token.bytes().filter(|&byte| byte == b'.').count() == 4
}

/// Decrypts a nested token: the signed token inside, at most `max_plaintext` bytes, once the header, the key
/// and the tag check out and the content is a compact JWS.
pub(crate) fn decrypt(keys: &DecryptionKeys, token: &str, max_plaintext: usize) -> Result<String, Refusal> {
    let (_, plaintext) = open(keys, token, max_plaintext, Content::Jwt)?;
    let inner = String::from_utf8(plaintext).map_err(|_| Refusal::NotNested)?;
    // A signed token has two dots; a JWE inside (four) is never opened in turn.
    if inner.bytes().filter(|&byte| byte == b'.').count() != 2 {
        return Err(Refusal::NotNested);
    }
    Ok(inner)
}

/// What a JWE must say it holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Content {
    /// A nested token: `cty: JWT`.
    Jwt,
    /// Anything (the RFCs' examples, whose headers have no `cty`).
    #[cfg(test)]
    Any,
}

/// Opens a compact JWE: its header and its plaintext.
fn open(
    keys: &DecryptionKeys,
    token: &str,
    max_plaintext: usize,
    content: Content,
) -> Result<(JweHeader, Vec<u8>), Refusal> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Form);
    };
    // Sizes first, before anything is decoded: the header, an encrypted key of an 8,192-bit RSA key at most,
    // the IV and the tag of their algorithms, and a ciphertext no longer than the largest plaintext allowed
    // plus a block of padding.
    if base64::decoded_len_estimate(header_b64.len()) > MAX_HEADER_BYTES + 3
        || base64::decoded_len_estimate(encrypted_key.len()) > 1024 + 3
        || iv.len() > 24
        || tag.len() > 44
        || base64::decoded_len_estimate(ciphertext.len()) > max_plaintext.saturating_add(16 + 3)
    {
        return Err(Refusal::Form);
    }
    let decode = |part: &str| crate::jws::decode_part(part).map_err(|_| Refusal::Form);
    let header = JweHeader::parse(&decode(header_b64)?).map_err(|_| Refusal::Header)?;
    // `cty` is in the protected header: a token that does not hold a JWT is refused before any key work.
    if content == Content::Jwt && !header.content_is_jwt() {
        return Err(Refusal::NotNested);
    }
    let key = keys.select(header.kid.as_deref(), header.alg).ok_or(Refusal::Key)?;
    let (encrypted_key, iv, ciphertext, tag) = (decode(encrypted_key)?, decode(iv)?, decode(ciphertext)?, decode(tag)?);
    // A random content key is made first, whatever follows; a content key that cannot be had is replaced by it,
    // and the tag check fails then as it does for any other tampering (RFC 7516 §11.5): the same path and the
    // same work, whichever step went wrong. Without randomness, nothing is decrypted.
    let random = random_key(header.enc.key_len()).ok_or(Refusal::Content)?;
    let cek = key.content_key(&header, &encrypted_key).unwrap_or(random);
    let plaintext =
        content::open(header.enc, &cek, &iv, header_b64.as_bytes(), ciphertext, &tag).map_err(|_| Refusal::Content)?;
    if plaintext.len() > max_plaintext {
        return Err(Refusal::Content);
    }
    Ok((header, plaintext))
}

/// `len` random bytes; `None` when the system's RNG fails.
fn random_key(len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let mut key = Zeroizing::new(vec![0; len]);
    aws_lc_rs::rand::fill(&mut key).ok()?;
    Some(key)
}

/// Encrypts `plaintext` for `key`'s recipient, with `cty` in the header.
fn seal(key: &EncryptionKey, plaintext: &[u8], cty: &str) -> Result<String, ConfigError> {
    let failed =
        || ConfigError::key(format!("cannot encrypt with {} and {}", key.algorithm(), key.content_encryption()));
    let (alg, enc) = (key.algorithm(), key.content_encryption());
    let mut header = serde_json::Map::new();
    header.insert("alg".into(), alg.name().into());
    header.insert("enc".into(), enc.name().into());
    if let Some(kid) = key.kid() {
        header.insert("kid".into(), kid.into());
    }
    header.insert("cty".into(), cty.into());
    let fresh = |len: usize| -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        let mut bytes = Zeroizing::new(vec![0; len]);
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| failed())?;
        Ok(bytes)
    };
    let (cek, encrypted_key) = match key.recipient() {
        Recipient::Rsa(public) => {
            let public = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(public.clone()).map_err(|_| failed())?;
            let cek = fresh(enc.key_len())?;
            let mut out = vec![0; public.ciphertext_size()];
            let len = public.encrypt(keys::oaep(alg), &cek, &mut out, None).map_err(|_| failed())?.len();
            out.truncate(len);
            (cek, out)
        }
        Recipient::Agreement { curve, public } => {
            let (id, len) = agreement::derived_key(alg, enc);
            let (ephemeral, derived) = agreement::send(*curve, public, id, len).ok_or_else(failed)?;
            header.insert("epk".into(), ephemeral_jwk(*curve, &ephemeral));
            if alg == KeyManagement::EcdhEs {
                (derived, Vec::new())
            } else {
                let cek = fresh(enc.key_len())?;
                let wrapped = keys::wrap(&derived, &cek).ok_or_else(failed)?;
                (cek, wrapped)
            }
        }
        Recipient::Symmetric(secret) if alg == KeyManagement::Dir => (secret.clone(), Vec::new()),
        Recipient::Symmetric(secret) => {
            let cek = fresh(enc.key_len())?;
            let wrapped = keys::wrap(secret, &cek).ok_or_else(failed)?;
            (cek, wrapped)
        }
    };
    let header = URL_SAFE_NO_PAD.encode(serde_json::Value::Object(header).to_string());
    let iv = fresh(enc.iv_len())?;
    let (ciphertext, tag) = content::seal(enc, &cek, &iv, header.as_bytes(), plaintext).map_err(|_| failed())?;
    Ok(format!(
        "{header}.{}.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(encrypted_key),
        URL_SAFE_NO_PAD.encode(&*iv),
        URL_SAFE_NO_PAD.encode(ciphertext),
        URL_SAFE_NO_PAD.encode(tag)
    ))
}

/// The `epk` member for an ephemeral public key as aws-lc-rs writes it.
fn ephemeral_jwk(curve: alg::Curve, public: &[u8]) -> serde_json::Value {
    let mut jwk = serde_json::Map::new();
    jwk.insert("kty".into(), curve.kty().into());
    jwk.insert("crv".into(), curve.name().into());
    match curve {
        alg::Curve::X25519 => {
            jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(public).into());
        }
        alg::Curve::P256 | alg::Curve::P384 => {
            let len = curve.coordinate_len();
            jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(&public[1..=len]).into());
            jwk.insert("y".into(), URL_SAFE_NO_PAD.encode(&public[1 + len..]).into());
        }
    }
    serde_json::Value::Object(jwk)
}

#[cfg(test)]
mod tests;
