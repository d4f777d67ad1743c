//! RFC 7662 token introspection, the framework-free part: reading an introspection endpoint's answer strictly.
//! The HTTP call, the cache and the layer's use of it live in other crates.

use std::fmt;

use crate::ErrorKind;
use crate::claims::{RawClaims, RegisteredClaims, parse_claims};

/// The largest introspection answer read, in bytes: an answer is a claims set, and a few KiB at most.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An introspection endpoint's answer about an active token (RFC 7662 §2.2): a JSON object whose `active` is
/// the boolean `true`, with no member given twice. Its other members are the token's claims, as a JWT's
/// claims set would hold them.
#[derive(Clone, PartialEq, Eq)]
pub struct ActiveAnswer {
    json: String,
}

/// Why an introspection answer does not describe an active token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnswerError {
    /// The answer says the token is not active: `active` is `false`, missing, or anything but the boolean
    /// `true` (a string, a number, `null`). The token is refused (401 `invalid_token`).
    Inactive,
    /// The answer is not a JSON object with unique member names, or is larger than [`MAX_ANSWER_BYTES`]. The
    /// endpoint failed: this says nothing about the token, which is neither accepted nor refused as inactive
    /// (503, unless a cached answer still holds).
    Unreadable,
}

impl AnswerError {
    /// A fixed sentence, safe to log: it never repeats the answer.
    pub const fn description(self) -> &'static str {
        match self {
            Self::Inactive => "the token is not active",
            Self::Unreadable => "the introspection answer is not a JSON object",
        }
    }
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for AnswerError {}

impl ActiveAnswer {
    /// Reads an introspection endpoint's answer (the body of a 200): an active token's claims, or why not.
    ///
    /// ```
    /// use jwtgate_core::{ActiveAnswer, AnswerError};
    ///
    /// let answer = ActiveAnswer::read(br#"{"active":true,"sub":"alice","scope":"read"}"#).unwrap();
    /// assert_eq!(answer.json(), r#"{"active":true,"sub":"alice","scope":"read"}"#);
    /// assert_eq!(ActiveAnswer::read(br#"{"active":"true"}"#), Err(AnswerError::Inactive));
    /// assert_eq!(ActiveAnswer::read(b"<html>"), Err(AnswerError::Unreadable));
    /// ```
    pub fn read(body: &[u8]) -> Result<Self, AnswerError> {
        if body.len() > MAX_ANSWER_BYTES {
            return Err(AnswerError::Unreadable);
        }
        let json = std::str::from_utf8(body).map_err(|_| AnswerError::Unreadable)?;
        // An object with unique names: two `active` members could be read differently by two readers.
        let members = RawClaims::parse(json).map_err(|_| AnswerError::Unreadable)?;
        match members.member("active").map(|active| active.get()) {
            Some("true") => Ok(Self { json: json.to_owned() }),
            _ => Err(AnswerError::Inactive),
        }
    }

    /// The answer, as the endpoint sent it.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The answer's registered claims and the claims type `C`, read as a JWT's claims set is, with the same
    /// strictness: a registered claim of the wrong type is invalid, never absent.
    pub fn claims<C: serde::de::DeserializeOwned>(&self) -> Result<(C, RegisteredClaims), ErrorKind> {
        parse_claims::<C>(self.json.clone())
    }
}

impl fmt::Debug for ActiveAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The answer may hold personal data: its size only.
        f.debug_struct("ActiveAnswer").field("bytes", &self.json.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn only_the_boolean_true_is_active() {
        for body in [
            r#"{"active":false}"#,
            r#"{"active":"true"}"#,
            r#"{"active":1}"#,
            r#"{"active":null}"#,
            r#"{"active":[true]}"#,
            r#"{"active":{"value":true}}"#,
            r#"{"sub":"alice"}"#,
            r#"{"nested":{"active":true}}"#,
            "{}",
        ] {
            assert_eq!(ActiveAnswer::read(body.as_bytes()), Err(AnswerError::Inactive), "{body}");
        }
        for body in [r#"{"active":true}"#, r#"{ "active" : true , "exp": 1 }"#, r#"{"\u0061ctive":true}"#] {
            assert!(ActiveAnswer::read(body.as_bytes()).is_ok(), "{body}");
        }
    }

    #[test]
    fn what_is_no_json_object_is_unreadable_never_inactive() {
        let long = format!(r#"{{"active":true,"x":"{}"}}"#, "a".repeat(MAX_ANSWER_BYTES));
        for body in [
            &b""[..],
            b"<html>error</html>",
            b"[true]",
            b"true",
            b"\"active\"",
            br#"{"active":true"#,
            br#"{"active":true,"active":false}"#,
            br#"{"active":false,"\u0061ctive":true}"#,
            b"{\"active\":true,\"sub\":\"\xff\"}",
            long.as_bytes(),
        ] {
            assert_eq!(ActiveAnswer::read(body), Err(AnswerError::Unreadable), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_claims_read_as_a_jwts() {
        let answer = ActiveAnswer::read(br#"{"active":true,"sub":"alice","exp":2000000000,"aud":["api"]}"#).unwrap();
        let (claims, registered) = answer.claims::<Value>().unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(registered.subject(), Some("alice"));
        assert_eq!(registered.expires_at(), Some(2_000_000_000));
        assert_eq!(registered.audience().collect::<Vec<_>>(), ["api"]);
        let wrong = ActiveAnswer::read(br#"{"active":true,"exp":"soon"}"#).unwrap();
        assert_eq!(wrong.claims::<Value>().unwrap_err(), ErrorKind::InvalidClaim { claim: "exp" });
        assert_eq!(format!("{answer:?}"), "ActiveAnswer { bytes: 60 }");
    }
}
