//! The protected header of a compact JWE, read strictly: one JSON object, each member once, and nothing
//! jwtgate does not understand where understanding matters (`zip`, `crit`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::alg::{ContentEncryption, Curve, KeyManagement};

/// The longest protected header read, decoded: an ephemeral P-384 key with `apu` and `apv` fits many
/// times over.
pub(crate) const MAX_HEADER_BYTES: usize = 2048;
/// The most members a header may have.
const MAX_MEMBERS: usize = 32;
/// The longest `apu` or `apv`, decoded.
const MAX_PARTY_INFO_BYTES: usize = 256;

/// The header members jwtgate acts on.
#[derive(Debug)]
pub(crate) struct JweHeader {
    pub(crate) alg: KeyManagement,
    pub(crate) enc: ContentEncryption,
    pub(crate) kid: Option<String>,
    /// `cty`, as sent.
    pub(crate) cty: Option<String>,
    pub(crate) epk: Option<EphemeralKey>,
    pub(crate) apu: Vec<u8>,
    pub(crate) apv: Vec<u8>,
}

/// The sender's ephemeral public key of the `ECDH-ES` algorithms, as aws-lc-rs reads it: an uncompressed
/// point (`04 || x || y`) on a NIST curve, or the 32 bytes of an X25519 key. Whether the point is on its
/// curve is checked by aws-lc-rs when it is used, and it is refused if not.
#[derive(Debug)]
pub(crate) struct EphemeralKey {
    pub(crate) curve: Curve,
    pub(crate) public: Vec<u8>,
}

/// Why a header was refused; never shown to a client (every refusal of an encrypted token reads the same),
/// but kept for the tests.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    Malformed,
    Unsupported,
    Compressed,
    Critical,
}

impl JweHeader {
    pub(crate) fn parse(json: &[u8]) -> Result<Self, HeaderError> {
        if json.len() > MAX_HEADER_BYTES {
            return Err(HeaderError::Malformed);
        }
        let json = std::str::from_utf8(json).map_err(|_| HeaderError::Malformed)?;
        let Members(mut members) = serde_json::from_str(json).map_err(|_| HeaderError::Malformed)?;
        // Every member must be valid JSON (`RawValue` checks it), whether it is read or not.
        // Refused before anything else is read: nothing is ever decompressed, and no extension is understood.
        if members.contains_key("zip") {
            return Err(HeaderError::Compressed);
        }
        if members.contains_key("crit") {
            return Err(HeaderError::Critical);
        }
        let mut text = |name: &str| match members.remove(name) {
            None => Ok(None),
            Some(raw) => serde_json::from_str::<String>(raw.get()).map(Some).map_err(|_| HeaderError::Malformed),
        };
        let alg = text("alg")?.ok_or(HeaderError::Malformed)?;
        let enc = text("enc")?.ok_or(HeaderError::Malformed)?;
        let (kid, cty, apu, apv) = (text("kid")?, text("cty")?, text("apu")?, text("apv")?);
        let alg: KeyManagement = alg.parse().map_err(|_| HeaderError::Unsupported)?;
        let enc: ContentEncryption = enc.parse().map_err(|_| HeaderError::Unsupported)?;
        let epk = match members.remove("epk") {
            None => None,
            // As strict as the header: an object, each member once.
            Some(raw) => {
                let Members(epk) = serde_json::from_str(raw.get()).map_err(|_| HeaderError::Malformed)?;
                Some(EphemeralKey::read(&epk)?)
            }
        };
        Ok(Self { alg, enc, kid, cty, epk, apu: party_info(apu)?, apv: party_info(apv)? })
    }

    /// Whether `cty` says the content is a JWT (RFC 7519 §5.2: `JWT`, any case, with or without
    /// `application/`).
    pub(crate) fn content_is_jwt(&self) -> bool {
        self.cty.as_deref().is_some_and(|cty| {
            let cty =
                cty.get(..12).filter(|prefix| prefix.eq_ignore_ascii_case("application/")).map_or(cty, |_| &cty[12..]);
            cty.eq_ignore_ascii_case("JWT")
        })
    }
}

fn party_info(value: Option<String>) -> Result<Vec<u8>, HeaderError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    if base64::decoded_len_estimate(value.len()) > MAX_PARTY_INFO_BYTES {
        return Err(HeaderError::Malformed);
    }
    crate::jws::decode_part(&value).map_err(|_| HeaderError::Malformed)
}

impl EphemeralKey {
    fn read(epk: &BTreeMap<String, Box<RawValue>>) -> Result<Self, HeaderError> {
        let strings: BTreeMap<&str, String> = epk
            .iter()
            .filter_map(|(name, raw)| Some((name.as_str(), serde_json::from_str::<String>(raw.get()).ok()?)))
            .collect();
        let member = |name: &str| strings.get(name).map(String::as_str);
        let curve = member("crv").and_then(Curve::from_name).ok_or(HeaderError::Unsupported)?;
        if member("kty") != Some(curve.kty()) || epk.contains_key("d") {
            return Err(HeaderError::Malformed);
        }
        let coordinate = |name: &str| {
            let value = member(name).ok_or(HeaderError::Malformed)?;
            let bytes = crate::jws::decode_part(value).map_err(|_| HeaderError::Malformed)?;
            if bytes.len() == curve.coordinate_len() { Ok(bytes) } else { Err(HeaderError::Malformed) }
        };
        let public = match curve {
            Curve::X25519 => coordinate("x")?,
            Curve::P256 | Curve::P384 => {
                let mut point = Vec::with_capacity(1 + 2 * curve.coordinate_len());
                point.push(0x04);
                point.extend(coordinate("x")?);
                point.extend(coordinate("y")?);
                point
            }
        };
        Ok(Self { curve, public })
    }
}

/// A JSON object's members, each name once, their values unparsed (but checked to be JSON).
struct Members(BTreeMap<String, Box<RawValue>>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = BTreeMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    if members.len() == MAX_MEMBERS {
                        return Err(de::Error::custom("too many header members"));
                    }
                    let value: Box<RawValue> = map.next_value()?;
                    if members.insert(name, value).is_some() {
                        return Err(de::Error::custom("duplicate header member"));
                    }
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_read_strictly() {
        let ok = br#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k","cty":"JWT"}"#;
        let header = JweHeader::parse(ok).unwrap();
        assert_eq!(
            (header.alg, header.enc, header.kid.as_deref()),
            (KeyManagement::RsaOaep256, ContentEncryption::A256Gcm, Some("k"))
        );
        assert!(header.content_is_jwt());
        for (json, error) in [
            (&br#"{"alg":"RSA-OAEP-256","enc":"A256GCM","alg":"dir"}"#[..], HeaderError::Malformed),
            (br#"{"alg":"RSA1_5","enc":"A256GCM"}"#, HeaderError::Unsupported),
            (br#"{"alg":"dir","enc":"A192GCM"}"#, HeaderError::Unsupported),
            (br#"{"alg":"dir","enc":"A256GCM","zip":"DEF"}"#, HeaderError::Compressed),
            (br#"{"alg":"dir","enc":"A256GCM","crit":["exp"],"exp":1}"#, HeaderError::Critical),
            (br#"{"alg":"dir"}"#, HeaderError::Malformed),
            (br#"{"alg":"dir","enc":"A256GCM","kid":7}"#, HeaderError::Malformed),
            (br#"["alg","dir"]"#, HeaderError::Malformed),
            (b"{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"x\":\"\xff\"}", HeaderError::Malformed),
            (
                br#"{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}}"#,
                HeaderError::Malformed,
            ),
            (
                br#"{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}}"#,
                HeaderError::Unsupported,
            ),
            (
                br#"{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty":"OKP","crv":"P-256","x":"AA","y":"AA"}}"#,
                HeaderError::Malformed,
            ),
        ] {
            assert_eq!(JweHeader::parse(json).unwrap_err(), error, "{}", String::from_utf8_lossy(json));
        }
    }

    #[test]
    fn cty_names_a_jwt_in_any_case_with_or_without_its_media_type_prefix() {
        for (cty, jwt) in [
            ("JWT", true),
            ("jwt", true),
            ("application/JWT", true),
            ("Application/jwt", true),
            ("JOSE", false),
            ("application/", false),
            ("", false),
        ] {
            let json = format!(r#"{{"alg":"dir","enc":"A128GCM","cty":"{cty}"}}"#);
            assert_eq!(JweHeader::parse(json.as_bytes()).unwrap().content_is_jwt(), jwt, "{cty}");
        }
        assert!(!JweHeader::parse(br#"{"alg":"dir","enc":"A128GCM"}"#).unwrap().content_is_jwt());
    }
}
