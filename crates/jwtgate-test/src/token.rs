//! A fluent builder of signed tokens.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::{TestKey, b64, now};

/// Builds a token signed by a [`TestKey`]: start with [`TestKey::token`].
///
/// It starts from `iat` now and `exp` in five minutes, and nothing else: add the issuer, the audience and
/// the claims your validator wants. Each method sets one claim or header member; a later call replaces an
/// earlier one.
#[derive(Debug)]
#[must_use]
pub struct TokenBuilder<'k> {
    key: &'k TestKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    wrong_signature: bool,
}

impl<'k> TokenBuilder<'k> {
    pub(crate) fn new(key: &'k TestKey) -> Self {
        let Value::Object(header) = key.header() else { unreachable!("a header is an object") };
        let mut claims = Map::new();
        claims.insert("iat".to_owned(), json!(now()));
        claims.insert("exp".to_owned(), json!(now() + 300));
        Self { key, header, claims, wrong_signature: false }
    }

    /// `iss`.
    pub fn issuer(self, issuer: &str) -> Self {
        self.claim("iss", issuer)
    }

    /// `aud`, a single audience.
    pub fn audience(self, audience: &str) -> Self {
        self.claim("aud", audience)
    }

    /// `sub`.
    pub fn subject(self, subject: &str) -> Self {
        self.claim("sub", subject)
    }

    /// `jti`.
    pub fn token_id(self, jti: &str) -> Self {
        self.claim("jti", jti)
    }

    /// `roles`, an array: what `AuthorityMapping::roles` (the default mapping) reads.
    pub fn roles<'a>(self, roles: impl IntoIterator<Item = &'a str>) -> Self {
        self.claim("roles", roles.into_iter().collect::<Vec<_>>())
    }

    /// `scope`, a space-separated string (RFC 9068): what `AuthorityMapping::scope` reads.
    pub fn scopes<'a>(self, scopes: impl IntoIterator<Item = &'a str>) -> Self {
        self.claim("scope", scopes.into_iter().collect::<Vec<_>>().join(" "))
    }

    /// `exp`, `ttl` from now.
    pub fn expires_in(self, ttl: Duration) -> Self {
        self.claim("exp", now().saturating_add(secs(ttl)))
    }

    /// `exp`, `ago` in the past: an expired token. Its `iat` moves back to a minute before that `exp`, so
    /// that the token had a lifetime (one issued after it expired is refused for that instead).
    pub fn expired_since(self, ago: Duration) -> Self {
        let exp = now().saturating_sub(secs(ago));
        self.claim("iat", exp.saturating_sub(60)).claim("exp", exp)
    }

    /// `nbf`, `delay` from now: a token not valid yet.
    pub fn not_before_in(self, delay: Duration) -> Self {
        self.claim("nbf", now().saturating_add(secs(delay)))
    }

    /// Any claim, replacing the one of that name.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim, such as the default `exp`.
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// The header's `kid`, replacing the key's own.
    pub fn kid(self, kid: &str) -> Self {
        self.header("kid", kid)
    }

    /// Any header member, replacing the one of that name (`typ`, `crit`, even `alg`, to forge tokens).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Signs with a wrong signature on purpose: the right length, every bit flipped.
    pub fn wrong_signature(mut self) -> Self {
        self.wrong_signature = true;
        self
    }

    /// The claims set as it will be signed.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The compact token.
    pub fn build(self) -> String {
        let header = Value::Object(self.header).to_string();
        let claims = Value::Object(self.claims).to_string();
        let input = format!("{}.{}", b64(header), b64(claims));
        let mut signature = self.key.signature(input.as_bytes());
        if self.wrong_signature {
            signature.iter_mut().for_each(|byte| *byte = !*byte);
        }
        format!("{input}.{}", b64(signature))
    }
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
