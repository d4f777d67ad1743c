//! The compact JWS (RFC 7515 §7.1) as jwtgate reads it: the base64url of its parts, and its JOSE header.

use std::fmt;
use std::mem::MaybeUninit;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::ErrorKind;
use crate::claims::{Name, NameSet};

/// The `kid` header of `token`, read without any verification and cut to 64 characters: for log lines
/// about refused tokens, never for decisions.
pub fn unverified_kid(token: &str) -> Option<String> {
    let header = token.get(..token.find('.')?)?;
    let mut buffer = PartBuffer::<256>::new();
    let kid = Header::parse(buffer.decode(header).ok()?).ok()?.kid?;
    Some(kid.0.chars().take(64).collect())
}

/// Decodes a base64url part without padding, refusing non-canonical trailing bits, with SIMD where the CPU
/// has it (base64-simd): the claims set is most of a token's length.
pub(crate) fn decode_part(part: &str) -> Result<Vec<u8>, ErrorKind> {
    base64_simd::URL_SAFE_NO_PAD.decode_to_vec(part).map_err(|_| ErrorKind::Malformed)
}

/// Decodes a small base64url part (a header, a signature) on the stack, or on the heap when it is larger
/// than `N` bytes.
pub(crate) struct PartBuffer<const N: usize> {
    stack: [MaybeUninit<u8>; N],
    heap: Vec<u8>,
}

impl<const N: usize> PartBuffer<N> {
    pub(crate) fn new() -> Self {
        // Not zeroed: the decoder writes what it returns, and only that is read.
        Self { stack: [const { MaybeUninit::uninit() }; N], heap: Vec::new() }
    }

    pub(crate) fn decode(&mut self, part: &str) -> Result<&[u8], ErrorKind> {
        if base64::decoded_len_estimate(part.len()) <= N {
            let out = base64_simd::Out::from_uninit_slice(&mut self.stack);
            Ok(base64_simd::URL_SAFE_NO_PAD.decode(part.as_bytes(), out).map_err(|_| ErrorKind::Malformed)?)
        } else {
            self.heap = decode_part(part)?;
            Ok(&self.heap)
        }
    }
}

/// The JOSE header members jwtgate reads. Others are ignored, except that `crit` in any form refuses the
/// token, since jwtgate understands no extension. Duplicate members are malformed.
pub(crate) struct Header<'a> {
    pub(crate) alg: Name<'a>,
    pub(crate) kid: Option<Name<'a>>,
    pub(crate) typ: Option<Name<'a>>,
    pub(crate) crit: bool,
}

/// The most members a JOSE header may have. The registered ones number about twenty (RFC 7515, 7516, 7519,
/// 8725, 9449 and their kin); real headers carry a handful.
const MAX_HEADER_MEMBERS: usize = 64;

impl<'a> Header<'a> {
    /// RFC 7515 §4: the header is a UTF-8 JSON object. It is checked as UTF-8 whole, before parsing: serde_json
    /// checks the strings it returns but not those it skips, so a member jwtgate ignores could otherwise
    /// carry bytes that other parsers refuse.
    pub(crate) fn parse(json: &'a [u8]) -> Result<Self, ErrorKind> {
        let json = std::str::from_utf8(json).map_err(|_| ErrorKind::Malformed)?;
        serde_json::from_str(json).map_err(|_| ErrorKind::Malformed)
    }
}

impl<'de> Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;

        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = Header<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut alg, mut kid, mut typ, mut crit) = (None, None, None, None);
                // Only the names of other members are kept, to find their duplicates: a header of `alg`, `kid`
                // and `typ` alone needs no set at all. There are at most `MAX_HEADER_MEMBERS`, and `NameSet`
                // checks them in n log n at worst, so that this check, made before the signature's, costs
                // little whatever an attacker sends.
                let mut others: Option<NameSet<'de>> = None;
                let duplicate = || de::Error::custom("duplicate header member");
                let mut members = 0;
                while let Some(name) = map.next_key::<Name<'de>>()? {
                    members += 1;
                    if members > MAX_HEADER_MEMBERS {
                        return Err(de::Error::custom("too many header members"));
                    }
                    match name.0.as_ref() {
                        "alg" if alg.is_none() => alg = Some(map.next_value::<Name<'de>>()?),
                        "kid" if kid.is_none() => kid = Some(map.next_value::<Name<'de>>()?),
                        "typ" if typ.is_none() => typ = Some(map.next_value::<Name<'de>>()?),
                        "crit" if crit.is_none() => crit = Some(map.next_value::<IgnoredAny>()?),
                        "alg" | "kid" | "typ" | "crit" => return Err(duplicate()),
                        _ => {
                            if !others.get_or_insert_default().insert(name) {
                                return Err(duplicate());
                            }
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if others.is_some_and(|others| others.has_duplicates()) {
                    return Err(duplicate());
                }
                let crit = crit.is_some();
                let alg = alg.ok_or_else(|| de::Error::missing_field("alg"))?;
                Ok(Header { alg, kid, typ, crit })
            }
        }

        deserializer.deserialize_map(HeaderVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Result<Header<'_>, ErrorKind> {
        Header::parse(json.as_bytes())
    }

    #[test]
    fn a_header_that_is_not_utf8_is_malformed_even_in_a_member_jwtgate_ignores() {
        // Found by the `token` fuzz target: invalid UTF-8 in the value of an unknown member.
        assert!(matches!(Header::parse(b"{\"alg\":\"HS256\",\"k?id\":\"k1\xf6\"}"), Err(ErrorKind::Malformed)));
        assert!(matches!(Header::parse(b"{\"alg\":\"HS256\",\"x\xff\":1}"), Err(ErrorKind::Malformed)));
        assert!(Header::parse("{\"alg\":\"HS256\",\"x\":\"caf\u{e9}\"}".as_bytes()).is_ok());
    }

    #[test]
    fn header_members_must_be_strings_and_unique() {
        assert!(header(r#"{"alg":"HS256","kid":"a","typ":"JWT"}"#).is_ok());
        for json in [
            r#"{"alg":null}"#,
            r#"{"alg":1}"#,
            r#"{"alg":"HS256","kid":null}"#,
            r#"{"alg":"HS256","kid":7}"#,
            r#"{"alg":"HS256","alg":"HS256"}"#,
            r#"{"alg":"HS256","\u0061lg":"HS256"}"#,
            r#"{"kid":"a"}"#,
            r#"[]"#,
        ] {
            assert_eq!(header(json).err(), Some(ErrorKind::Malformed), "{json}");
        }
    }

    #[test]
    fn a_header_has_at_most_64_members() {
        // Regression (issue 17): the duplicate check compared every member with every other, before the
        // signature was checked: a header of thousands of members cost millions of comparisons.
        let members = |count: usize| {
            let others: Vec<String> = (0..count).map(|i| format!(r#""m{i}":0"#)).collect();
            format!(r#"{{"alg":"HS256",{}}}"#, others.join(","))
        };
        assert!(header(&members(63)).is_ok(), "64 members with alg");
        assert_eq!(header(&members(64)).err(), Some(ErrorKind::Malformed));
        assert_eq!(header(&members(1000)).err(), Some(ErrorKind::Malformed));
    }

    #[test]
    fn crit_in_any_form_is_noticed() {
        for json in
            [r#"{"alg":"HS256","crit":["exp"]}"#, r#"{"alg":"HS256","crit":null}"#, r#"{"alg":"HS256","crit":[]}"#]
        {
            assert!(header(json).unwrap().crit, "{json}");
        }
    }

    #[test]
    fn base64_parts_must_be_canonical() {
        // "eyJ9" decodes to `{"}`; "e30" to `{}`, and "e31" would too if its unused trailing bits were ignored.
        let mut buffer = PartBuffer::<8>::new();
        assert_eq!(buffer.decode("e30").unwrap(), b"{}");
        for part in ["e31", "e30=", "e3", "e30!", "e 30"] {
            assert_eq!(buffer.decode(part).err(), Some(ErrorKind::Malformed), "{part}");
            assert_eq!(decode_part(part).err(), Some(ErrorKind::Malformed), "{part}");
        }
        assert_eq!(decode_part("e30").unwrap(), b"{}");
    }
}
