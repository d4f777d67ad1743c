//! DPoP proofs (RFC 9449), checked as a resource server does (§4.3), and JWK thumbprints (RFC 7638).
//!
//! This is the framework-free part: a proof, the request it must belong to, and the answer. Where the
//! request's URL comes from, replay, nonces and the challenge belong to the HTTP layers.

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::jws::decode_part;
use crate::{Algorithm, AlgorithmMapping, Key, KeyType};

/// The algorithms a proof may use by default: every asymmetric one jwtgate supports. Never `none`, never HMAC,
/// whatever a caller asks: [`check_proof`] refuses them in any case.
pub const DEFAULT_PROOF_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The longest proof accepted, in bytes: a proof is a header with a public key and a handful of claims.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// The longest `jti` accepted, in bytes.
const MAX_JTI_BYTES: usize = 256;

/// Members that only a private or secret key has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must match: the request it comes with, and the server's rules.
#[derive(Clone, Copy, Debug)]
pub struct ProofRequirements<'a> {
    /// The request's method, compared exactly (`GET`, `POST`...).
    pub method: &'a str,
    /// The request's URL, as the client reached it: an absolute `http` or `https` URL, the server's own, never
    /// taken from the client. Compared with `htu` once both are normalized by [`normalize_htu`] (without query
    /// and fragment, scheme and host without case, default port dropped); an `htu` equal to it byte for byte
    /// matches at once, so pass it in normal form.
    pub url: &'a str,
    /// The access token the proof comes with: `ath` must be its SHA-256, base64url. `None` at a token
    /// endpoint, where a proof comes with no access token (RFC 9449 §5): `ath` is then not read.
    pub access_token: Option<&'a str>,
    /// Now, in seconds since the Unix epoch.
    pub now: i64,
    /// How far `iat` may be from `now`, in seconds, either way.
    pub iat_window: i64,
    /// The algorithms accepted; [`DEFAULT_PROOF_ALGORITHMS`] for all of them.
    pub algorithms: &'a [Algorithm],
    /// The keys of proof headers already checked, to skip parsing a header seen before; `None` to parse every
    /// header.
    pub keys: Option<&'a ProofKeys>,
}

/// How many proof headers [`ProofKeys`] remembers by default.
pub const DEFAULT_PROOF_KEYS: usize = 4_096;

/// The longest proof header [`ProofKeys`] remembers, base64url: an RSA key of 4,096 bits fits.
const MAX_CACHED_HEADER_BYTES: usize = 1_536;

/// The keys of DPoP proof headers already checked, so that a client's next proof skips the header's decoding,
/// its key's parsing and its thumbprint: a client puts the same header (`typ`, `alg`, `jwk`) on every proof.
///
/// An entry is keyed by the header exactly as the proof carries it (base64url), and made only from a header
/// that passed every check and whose key verified a proof's signature. A hit is as strict as a miss: the
/// algorithm must still be among the accepted ones, and the signature is always verified. Bounded: at most
/// `capacity` entries of at most 1.5 KiB of header each (longer headers are not kept), the least useful evicted
/// first. Anyone can sign proofs with keys of their own, and so take entries: that evicts other clients' keys,
/// which then cost a header parse again, and never lets a proof through.
#[derive(Clone)]
pub struct ProofKeys {
    entries: std::sync::Arc<quick_cache::sync::Cache<Box<str>, std::sync::Arc<ProofKey>>>,
}

/// A checked header's algorithm, key and thumbprint.
struct ProofKey {
    alg: Algorithm,
    key: Key,
    jkt: String,
}

impl ProofKeys {
    /// A cache of [`DEFAULT_PROOF_KEYS`] headers.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_PROOF_KEYS)
    }

    /// A cache of at most `capacity` headers.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { entries: std::sync::Arc::new(quick_cache::sync::Cache::new(capacity.max(1))) }
    }

    /// How many headers it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for ProofKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ProofKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofKeys").field("len", &self.len()).finish_non_exhaustive()
    }
}

/// A proof that passed every check of [`check_proof`]: what the caller still checks, against its replay
/// store, its nonces and the token's `cnf.jkt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedProof {
    /// `jti`: the proof's identifier, for the replay check.
    pub jti: String,
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url: the token's `cnf.jkt` must equal it.
    pub jkt: String,
    /// `iat`.
    pub iat: i64,
    /// `nonce`, when the proof has one.
    pub nonce: Option<String>,
    /// The proof's algorithm.
    pub alg: Algorithm,
}

/// Why a DPoP proof is refused. The `Display` text is fixed and safe to send: it never repeats the proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProofError {
    /// The request has a token under the `DPoP` scheme and no `DPoP` header.
    Missing,
    /// The request has more than one `DPoP` header.
    Multiple,
    /// The proof was used before (RFC 9449 §11.1).
    Replayed,
    /// Not a compact JWS with a JSON header and claims, or larger than [`MAX_PROOF_BYTES`].
    Malformed,
    /// `typ` is not `dpop+jwt`.
    Type,
    /// `alg` is not an accepted asymmetric algorithm.
    Algorithm,
    /// `jwk` is missing, not a public key of the algorithm's type, or holds private members.
    Key,
    /// The signature does not verify with `jwk`.
    Signature,
    /// A required claim is missing or not of its type: `jti`, `htm`, `htu` or `iat`.
    MissingClaim,
    /// `htm` is not the request's method.
    Method,
    /// `htu` is not the request's URL.
    Url,
    /// `iat` is outside the window.
    IssuedAt,
    /// `ath` is missing or is not the hash of the access token.
    AccessTokenHash,
}

impl ProofError {
    /// A fixed sentence for `error_description`.
    pub const fn description(self) -> &'static str {
        match self {
            Self::Missing => "the request has no DPoP proof",
            Self::Multiple => "the request has more than one DPoP proof",
            Self::Replayed => "the DPoP proof was used before",
            Self::Malformed => "the DPoP proof is malformed",
            Self::Type => "the DPoP proof's typ is not dpop+jwt",
            Self::Algorithm => "the DPoP proof's algorithm is not accepted",
            Self::Key => "the DPoP proof's jwk is not an acceptable public key",
            Self::Signature => "the DPoP proof's signature is invalid",
            Self::MissingClaim => "the DPoP proof lacks a required claim",
            Self::Method => "the DPoP proof's htm does not match the request",
            Self::Url => "the DPoP proof's htu does not match the request",
            Self::IssuedAt => "the DPoP proof's iat is outside the accepted window",
            Self::AccessTokenHash => "the DPoP proof's ath does not match the access token",
        }
    }
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for ProofError {}

/// Checks a DPoP proof (RFC 9449 §4.3, steps 1 to 11 but the nonce and replay): its form, its type, its
/// algorithm, its key and signature, then `htm`, `htu`, `iat` and `ath`. The proof's key is checked and
/// used before any claim is read, and no claim of an unsigned or badly signed proof is trusted.
pub fn check_proof(proof: &str, requirements: &ProofRequirements<'_>) -> Result<CheckedProof, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let cached = requirements.keys.and_then(|keys| keys.entries.get(header));
    let (key, fresh) = match cached {
        Some(key) if requirements.algorithms.contains(&key.alg) => (key, false),
        Some(_) => return Err(ProofError::Algorithm),
        None => (std::sync::Arc::new(header_key(header, requirements.algorithms)?), true),
    };
    let signature = decode_part(signature).map_err(|_| ProofError::Signature)?;
    let signing_input = &proof[..header_and_payload_len(proof)];
    if signature.is_empty() || !key.key.verify(signing_input.as_bytes(), &signature) {
        return Err(ProofError::Signature);
    }
    if fresh
        && header.len() <= MAX_CACHED_HEADER_BYTES
        && let Some(keys) = requirements.keys
    {
        keys.entries.insert(header.into(), key.clone());
    }
    let (jkt, alg) = (key.jkt.clone(), key.alg);

    let payload = decode_part(payload).map_err(|_| ProofError::Malformed)?;
    // A JSON object, never an array that would fill the fields in order.
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return Err(ProofError::Malformed);
    }
    let claims: ProofClaims<'_> = serde_json::from_slice(&payload).map_err(|_| ProofError::Malformed)?;
    let jti = claims.jti.and_then(text).filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_BYTES);
    let htm = claims.htm.and_then(text);
    let htu = claims.htu.and_then(text);
    let iat = claims.iat.and_then(|iat| serde_json::from_str(iat.get()).ok()).and_then(|iat| numeric_date(&iat));
    let (Some(jti), Some(htm), Some(htu), Some(iat)) = (jti, htm, htu, iat) else {
        return Err(ProofError::MissingClaim);
    };
    if htm != requirements.method {
        return Err(ProofError::Method);
    }
    // A client that sends the URL in its normal form, as the server passes it, matches without normalizing.
    if htu != requirements.url {
        match (normalize_htu(&htu), normalize_htu(requirements.url)) {
            (Some(htu), Some(url)) if htu == url => {}
            _ => return Err(ProofError::Url),
        }
    }
    if iat.abs_diff(requirements.now) > requirements.iat_window.unsigned_abs() {
        return Err(ProofError::IssuedAt);
    }
    if let Some(token) = requirements.access_token {
        // `ath` decoded and compared with the digest: no encoding, no allocation.
        let expected = digest::digest(&digest::SHA256, token.as_bytes());
        let mut decoded = [0u8; 33];
        let length = claims
            .ath
            .and_then(text)
            .filter(|ath| ath.len() == 43)
            .and_then(|ath| URL_SAFE_NO_PAD.decode_slice(ath.as_bytes(), &mut decoded).ok());
        if length != Some(32) || decoded[..32] != *expected.as_ref() {
            return Err(ProofError::AccessTokenHash);
        }
    }
    let nonce = match claims.nonce {
        None => None,
        Some(nonce) => Some(text(nonce).ok_or(ProofError::MissingClaim)?.into_owned()),
    };
    Ok(CheckedProof { jti: jti.into_owned(), jkt, iat, nonce, alg })
}

/// The claims a proof's checks read, each as raw JSON, borrowed: read only once the signature has verified.
/// A member given twice is malformed.
#[derive(serde::Deserialize)]
struct ProofClaims<'a> {
    #[serde(borrow)]
    jti: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    htm: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    htu: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    iat: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    ath: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    nonce: Option<&'a serde_json::value::RawValue>,
}

/// A JSON string's text: borrowed when it has no escapes; `None` for anything but a string.
fn text(raw: &serde_json::value::RawValue) -> Option<std::borrow::Cow<'_, str>> {
    let json = raw.get();
    match json.strip_prefix('"').and_then(|inner| inner.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(std::borrow::Cow::Borrowed(inner)),
        Some(_) => serde_json::from_str::<String>(json).ok().map(std::borrow::Cow::Owned),
        None => None,
    }
}

/// Checks a proof's header (base64url): its type, its algorithm, no `crit`, and its `jwk`, a public key of the
/// algorithm's type; answers the key and its thumbprint.
fn header_key(header: &str, algorithms: &[Algorithm]) -> Result<ProofKey, ProofError> {
    let header: Map<String, Value> = decode_json(header)?;
    if !header.get("typ").and_then(Value::as_str).is_some_and(|typ| typ.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(ProofError::Type);
    }
    let alg: Algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|alg| alg.parse().ok())
        .filter(|alg: &Algorithm| alg.key_type() != KeyType::Oct && algorithms.contains(alg))
        .ok_or(ProofError::Algorithm)?;
    if header.contains_key("crit") {
        // No extension is understood here (RFC 7515 §4.1.11).
        return Err(ProofError::Malformed);
    }
    let jwk = header.get("jwk").and_then(Value::as_object).ok_or(ProofError::Key)?;
    let key = public_key(jwk, alg)?;
    let jkt = thumbprint(jwk).ok_or(ProofError::Key)?;
    Ok(ProofKey { alg, key, jkt })
}

/// The length of `header.payload` in a compact JWS.
fn header_and_payload_len(jws: &str) -> usize {
    jws.rfind('.').unwrap_or(jws.len())
}

fn decode_json(part: &str) -> Result<Map<String, Value>, ProofError> {
    let bytes = decode_part(part).map_err(|_| ProofError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| ProofError::Malformed)
}

/// `iat` as a NumericDate: an integer, or a number with a fraction (truncated).
fn numeric_date(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// The proof's key: a public key of `alg`'s type, with no private member.
fn public_key(jwk: &Map<String, Value>, alg: Algorithm) -> Result<Key, ProofError> {
    if PRIVATE_MEMBERS.iter().any(|member| jwk.contains_key(*member)) {
        return Err(ProofError::Key);
    }
    // A JWK that names an algorithm must name the proof's.
    if jwk.get("alg").is_some_and(|named| named.as_str() != Some(alg.as_str())) {
        return Err(ProofError::Key);
    }
    let mapping = AlgorithmMapping::new().map(alg.key_type(), alg).map_err(|_| ProofError::Key)?;
    let json = serde_json::to_string(jwk).map_err(|_| ProofError::Key)?;
    Key::from_jwk(&json, &mapping).map_err(|_| ProofError::Key)
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK, base64url: the hash of its required members, in
/// lexicographic order, as JSON without white space. `None` for a key type other than `RSA`, `EC` and `OKP`,
/// or a required member that is missing or not a string.
///
/// ```
/// use jwtgate_core::jwk_thumbprint;
///
/// // RFC 7638 §3.1.
/// let jwk = serde_json::json!({
///     "kty": "RSA",
///     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
///     "e": "AQAB",
///     "alg": "RS256",
///     "kid": "2011-04-29",
/// });
/// assert_eq!(jwk_thumbprint(&jwk).as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
/// ```
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    thumbprint(jwk.as_object()?)
}

fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let required: &[&str] = match jwk.get("kty")?.as_str()? {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (index, name) in required.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if index > 0 {
            canonical.push(',');
        }
        // Names and values are serialized as JSON strings: base64url and key type names need no escape, but
        // any other character would get one, as RFC 7638 §3 asks.
        canonical.push_str(&serde_json::to_string(name).ok()?);
        canonical.push(':');
        canonical.push_str(&serde_json::to_string(value).ok()?);
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes())))
}

/// An `htu`, or a request's URL, in the form RFC 9449 §4.3 compares: without query and fragment, scheme and
/// host lowercased, the scheme's default port dropped, an empty path as `/` (RFC 3986 §6.2.2 and §6.2.3).
/// `None` for anything but an absolute `http` or `https` URL, or one with credentials.
///
/// ```
/// use jwtgate_core::normalize_htu;
///
/// assert_eq!(normalize_htu("HTTPS://API.Example.com:443/orders?page=2#top").as_deref(), Some("https://api.example.com/orders"));
/// assert_eq!(normalize_htu("http://localhost:8080").as_deref(), Some("http://localhost:8080/"));
/// assert_eq!(normalize_htu("/orders"), None);
/// ```
pub fn normalize_htu(url: &str) -> Option<String> {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') || !authority.is_ascii() {
        return None;
    }
    let (host, port) = match authority.rfind(':') {
        // An IPv6 literal's own colons sit inside its brackets.
        Some(colon) if !authority[colon..].contains(']') => (&authority[..colon], Some(&authority[colon + 1..])),
        _ => (authority, None),
    };
    if !valid_host(host) || port.is_some_and(|port| !port.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut normalized = format!("{scheme}://{}", host.to_ascii_lowercase());
    if let Some(port) = port.filter(|port| !port.is_empty() && *port != default_port) {
        normalized.push(':');
        normalized.push_str(port);
    }
    normalized.push_str(if path.is_empty() { "/" } else { path });
    Some(normalized)
}

mod nonce;
mod replay;

pub use nonce::{DEFAULT_NONCE_PERIOD, DpopNonces};
pub use replay::{
    DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_QUOTA_PER_KEY, MemoryReplayStore, PendingReplayCheck, ProofUse,
    ReplayCheck, ReplayError, ReplayErrorKind, ReplayStore,
};

/// Whether `host` is an IP literal in brackets, or a registered name or IPv4 address (RFC 3986 §3.2.2).
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(literal) => literal
            .strip_suffix(']')
            .is_some_and(|v6| !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')),
        None => !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b)),
    }
}

#[cfg(test)]
mod tests;
