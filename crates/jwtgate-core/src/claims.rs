//! The registered claims (RFC 7519 §4.1), read strictly from the token's claims set.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::ErrorKind;

/// The registered claims of a validated token.
///
/// Each was read with its registered type: a claim of another JSON type (including `null`) made the token
/// invalid rather than being taken as absent. NumericDates accept integers and floats; a fraction is rounded
/// toward the stricter side (`exp` down, `nbf` and `iat` up).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisteredClaims {
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) aud: Vec<String>,
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: Option<i64>,
    pub(crate) iat: Option<i64>,
    pub(crate) jti: Option<String>,
}

impl RegisteredClaims {
    /// `iss`: who issued the token.
    pub fn issuer(&self) -> Option<&str> {
        self.iss.as_deref()
    }

    /// `sub`: whom the token is about.
    pub fn subject(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// `aud`: the audiences, empty when absent. A single string is an audience of one.
    pub fn audience(&self) -> &[String] {
        &self.aud
    }

    /// `exp`: when the token expires, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> Option<i64> {
        self.exp
    }

    /// `nbf`: when the token becomes valid, in seconds since the Unix epoch.
    pub fn not_before(&self) -> Option<i64> {
        self.nbf
    }

    /// `iat`: when the token was issued, in seconds since the Unix epoch.
    pub fn issued_at(&self) -> Option<i64> {
        self.iat
    }

    /// `jti`: the token's unique id, which revocation uses.
    pub fn token_id(&self) -> Option<&str> {
        self.jti.as_deref()
    }
}

/// The claims set as its top-level members, each value still raw JSON. Reading this is the one pass over the
/// claims; the registered claims are then read from their own values, and the custom claims type from the
/// members (see [`RawClaims::deserialize_into`]).
pub(crate) struct RawClaims<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawClaims<'a> {
    pub(crate) fn parse(json: &'a [u8]) -> Result<Self, ErrorKind> {
        let members = serde_json::from_slice::<Members<'a>>(json).map_err(|_| ErrorKind::Malformed)?.0;
        if has_duplicates(&members) {
            // RFC 7519 §4: claim names must be unique. Refusing duplicates means no two readers of the token
            // can disagree about which value counts.
            return Err(ErrorKind::Malformed);
        }
        Ok(Self { members })
    }

    pub(crate) fn registered(&self) -> Result<RegisteredClaims, ErrorKind> {
        let mut claims = RegisteredClaims::default();
        for (name, value) in &self.members {
            let value = value.get();
            match name.as_ref() {
                "iss" => claims.iss = Some(string(value, "iss")?),
                "sub" => claims.sub = Some(string(value, "sub")?),
                "jti" => claims.jti = Some(string(value, "jti")?),
                "aud" => claims.aud = audience(value)?,
                "exp" => claims.exp = Some(numeric_date(value, "exp")?.floor()),
                "nbf" => claims.nbf = Some(numeric_date(value, "nbf")?.ceil()),
                "iat" => claims.iat = Some(numeric_date(value, "iat")?.ceil()),
                _ => {}
            }
        }
        Ok(claims)
    }

    /// The raw value of the top-level member `name`.
    pub(crate) fn member(&self, name: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(n, _)| n == name).map(|(_, value)| *value)
    }

    /// Deserializes the custom claims type from the members already read, without scanning the claims set
    /// again for its structure.
    pub(crate) fn deserialize_into<C: de::DeserializeOwned>(&self) -> Result<C, ErrorKind> {
        let members = self.members.iter().map(|(name, value)| (name.as_ref(), *value));
        C::deserialize(de::value::MapDeserializer::<_, serde_json::Error>::new(members))
            .map_err(|_| ErrorKind::InvalidClaim { claim: "claims" })
    }
}

fn has_duplicates(members: &[(Cow<'_, str>, &RawValue)]) -> bool {
    if members.len() <= 32 {
        members.iter().enumerate().any(|(i, (a, _))| members[..i].iter().any(|(b, _)| a == b))
    } else {
        let mut names: Vec<&str> = members.iter().map(|(name, _)| name.as_ref()).collect();
        names.sort_unstable();
        names.windows(2).any(|pair| pair[0] == pair[1])
    }
}

fn string(value: &str, claim: &'static str) -> Result<String, ErrorKind> {
    serde_json::from_str::<String>(value).map_err(|_| ErrorKind::InvalidClaim { claim })
}

fn audience(value: &str) -> Result<Vec<String>, ErrorKind> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Audience {
        One(String),
        Many(Vec<String>),
    }
    match serde_json::from_str::<Audience>(value) {
        Ok(Audience::One(aud)) => Ok(vec![aud]),
        Ok(Audience::Many(auds)) => Ok(auds),
        Err(_) => Err(ErrorKind::InvalidClaim { claim: "aud" }),
    }
}

/// A NumericDate (RFC 7519 §2): an integer or a float number of seconds.
enum NumericDate {
    Int(i64),
    Float(f64),
}

impl NumericDate {
    fn floor(self) -> i64 {
        match self {
            Self::Int(secs) => secs,
            // `as` saturates, so huge values become i64::MAX or MIN instead of wrapping.
            Self::Float(secs) => secs.floor() as i64,
        }
    }

    fn ceil(self) -> i64 {
        match self {
            Self::Int(secs) => secs,
            Self::Float(secs) => secs.ceil() as i64,
        }
    }
}

fn numeric_date(value: &str, claim: &'static str) -> Result<NumericDate, ErrorKind> {
    let invalid = ErrorKind::InvalidClaim { claim };
    let number: serde_json::Number = serde_json::from_str(value).map_err(|_| invalid)?;
    if let Some(int) = number.as_i64() {
        Ok(NumericDate::Int(int))
    } else if number.is_u64() {
        Ok(NumericDate::Int(i64::MAX))
    } else {
        number.as_f64().filter(|f| f.is_finite()).map(NumericDate::Float).ok_or(invalid)
    }
}

/// The top-level members of a JSON object, names unescaped, values raw.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(name) = map.next_key::<Name<'de>>()? {
                    members.push((name.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A string borrowed from the input when it has no escapes, owned when it does. Unescaping matters: a claim
/// written `"\u0065xp"` is `exp`, and must not slip past the checks under another name.
pub(crate) struct Name<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(json: &str) -> Result<RegisteredClaims, ErrorKind> {
        RawClaims::parse(json.as_bytes())?.registered()
    }

    #[test]
    fn wrong_types_are_invalid_never_absent() {
        for (json, claim) in [
            (r#"{"exp":null}"#, "exp"),
            (r#"{"exp":"1700000000"}"#, "exp"),
            (r#"{"nbf":true}"#, "nbf"),
            (r#"{"iat":[1]}"#, "iat"),
            (r#"{"iss":["a"]}"#, "iss"),
            (r#"{"iss":null}"#, "iss"),
            (r#"{"sub":1}"#, "sub"),
            (r#"{"jti":{}}"#, "jti"),
            (r#"{"aud":1}"#, "aud"),
            (r#"{"aud":null}"#, "aud"),
            (r#"{"aud":["a",1]}"#, "aud"),
        ] {
            assert_eq!(registered(json), Err(ErrorKind::InvalidClaim { claim }), "{json}");
        }
    }

    #[test]
    fn numeric_dates_accept_floats_rounded_to_the_strict_side() {
        let claims = registered(r#"{"exp":100.9,"nbf":10.1,"iat":5.5}"#).unwrap();
        assert_eq!((claims.exp, claims.nbf, claims.iat), (Some(100), Some(11), Some(6)));
        let claims = registered(r#"{"exp":1e300,"nbf":-1e300}"#).unwrap();
        assert_eq!((claims.exp, claims.nbf), (Some(i64::MAX), Some(i64::MIN)));
        assert_eq!(registered(r#"{"exp":18446744073709551615}"#).unwrap().exp, Some(i64::MAX));
    }

    #[test]
    fn audience_is_a_string_or_an_array_of_strings() {
        assert_eq!(registered(r#"{"aud":"a"}"#).unwrap().aud, ["a"]);
        assert_eq!(registered(r#"{"aud":["a","b"]}"#).unwrap().aud, ["a", "b"]);
    }

    #[test]
    fn escaped_names_are_the_claims_they_spell() {
        let claims = registered(r#"{"\u0065xp":5,"n\u0062f":"x"}"#);
        assert_eq!(claims, Err(ErrorKind::InvalidClaim { claim: "nbf" }));
    }

    #[test]
    fn duplicate_names_are_malformed() {
        assert_eq!(registered(r#"{"exp":1,"exp":2}"#).err(), Some(ErrorKind::Malformed));
        assert_eq!(registered(r#"{"exp":1,"\u0065xp":2}"#).err(), Some(ErrorKind::Malformed));
        let many: Vec<String> = (0..40).map(|i| format!("\"c{i}\":{i}")).chain(["\"c3\":0".into()]).collect();
        assert_eq!(registered(&format!("{{{}}}", many.join(","))).err(), Some(ErrorKind::Malformed));
    }

    #[test]
    fn the_claims_set_must_be_an_object() {
        for json in ["[]", "1", "\"x\"", "null", "{", "{} x"] {
            assert_eq!(registered(json).err(), Some(ErrorKind::Malformed), "{json}");
        }
    }

    #[test]
    fn custom_claims_see_every_member() {
        #[derive(Deserialize, PartialEq, Debug)]
        struct Custom {
            sub: String,
            roles: Vec<String>,
        }
        let raw = RawClaims::parse(br#"{"sub":"u","roles":["a"],"exp":1}"#).unwrap();
        let custom: Custom = raw.deserialize_into().unwrap();
        assert_eq!(custom, Custom { sub: "u".into(), roles: vec!["a".into()] });
        let value: serde_json::Value = raw.deserialize_into().unwrap();
        assert_eq!(value["exp"], 1);
        assert_eq!(raw.deserialize_into::<Vec<u8>>(), Err(ErrorKind::InvalidClaim { claim: "claims" }));
    }
}
