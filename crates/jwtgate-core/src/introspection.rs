//! RFC 7662 token introspection, the framework-free part: reading an introspection endpoint's answer strictly,
//! checking its claims as a JWT's are checked, and the hook through which a layer asks about an opaque token.
//! The HTTP call and the cache live in `jwtgate-introspection`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::claims::{RawClaims, RegisteredClaims, parse_claims};
use crate::validator::ClaimRules;
use crate::{AuthorityMapping, Error, ErrorKind, ExpectedAudience, Principal, Validated};

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
    pub fn claims<C: DeserializeOwned>(&self) -> Result<(C, RegisteredClaims), ErrorKind> {
        parse_claims::<C>(self.json.clone())
    }
}

impl fmt::Debug for ActiveAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The answer may hold personal data: its size only.
        f.debug_struct("ActiveAnswer").field("bytes", &self.json.len()).finish()
    }
}

/// An introspection that has not finished: the future of a call to the endpoint, or of one already under
/// way for the same token.
pub type PendingIntrospection<C> = Pin<Box<dyn Future<Output = Result<Arc<Validated<C>>, Error>> + Send + 'static>>;

/// The answer of [`Introspect::introspect`]: at once (a cached answer, or a token refused before any call), or
/// later.
pub enum Introspection<C> {
    /// The answer is known now.
    Ready(Result<Arc<Validated<C>>, Error>),
    /// The answer comes from this future.
    Pending(PendingIntrospection<C>),
}

impl<C> fmt::Debug for Introspection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(Ok(_)) => f.write_str("Ready(Ok(..))"),
            Self::Ready(Err(error)) => f.debug_tuple("Ready").field(&Err::<(), _>(error)).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// Validation of opaque tokens by an authorization server (RFC 7662): the hook through which `JwtAuthLayer`
/// asks about a token that is not a JWT. `jwtgate-introspection`'s `Introspector`, which calls the endpoint
/// and caches its answers, is the implementation most users want.
///
/// The answer is a [`Validated`] token, as a JWT's validation gives, so that guards, extractors and the
/// denylist treat both alike; or a refusal: [`ErrorKind::Inactive`] for a token the endpoint says is not
/// active, a claim check's kind (such as [`ErrorKind::Expired`]), or
/// [`ErrorKind::IntrospectionUnavailable`] when the endpoint gave no usable answer.
pub trait Introspect<C>: Send + Sync + 'static {
    /// Asks about `token`, which the layer took from the request as it is.
    fn introspect(&self, token: &str) -> Introspection<C>;
}

impl<C, I: Introspect<C> + ?Sized> Introspect<C> for Arc<I> {
    fn introspect(&self, token: &str) -> Introspection<C> {
        (**self).introspect(token)
    }
}

/// The checks of an active answer's claims, the same as a JWT's (see [`Validator`](crate::Validator)): `exp`,
/// `nbf` and `iat` with the leeway, `iss` and `aud`; and how its claims map into the [`Principal`].
///
/// What differs, by default, is what an answer may leave out. RFC 7662 §2.2 makes every member but `active`
/// optional, and the endpoint has already judged the token, so:
/// - `exp` may be absent ([`require_exp`](Self::require_exp) to refuse such answers);
/// - `iss` and `aud` are checked when present, and may be absent even when configured
///   ([`require_issuer`](Self::require_issuer), [`require_audience`](Self::require_audience)). An answer
///   whose `aud` names no configured audience is always refused, and so is one with an `aud` when no audience
///   is configured (RFC 7519 §4.1.3).
///
/// ```
/// use jwtgate_core::{ActiveAnswer, AnswerRules, ErrorKind};
///
/// let rules = AnswerRules::new().issuer("https://auth.example").audience("api");
/// let answer = ActiveAnswer::read(br#"{"active":true,"sub":"alice","aud":"api","scope":"read write"}"#)?;
/// let validated = rules.check::<serde_json::Value>(&answer, 1_700_000_000)?;
/// assert!(validated.principal().has_scope("write"));
/// assert!(validated.is_introspected());
///
/// let elsewhere = ActiveAnswer::read(br#"{"active":true,"aud":"billing"}"#)?;
/// assert_eq!(rules.check::<serde_json::Value>(&elsewhere, 1_700_000_000).unwrap_err().kind(), ErrorKind::InvalidAudience);
/// let silent = ActiveAnswer::read(br#"{"active":true}"#)?;
/// assert!(rules.check::<serde_json::Value>(&silent, 1_700_000_000).is_ok());
/// assert!(rules.require_audience().check::<serde_json::Value>(&silent, 1_700_000_000).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct AnswerRules {
    claims: ClaimRules,
    /// When set, `token_type` must be one of these, compared without case.
    token_types: Option<Vec<String>>,
}

/// The members of an answer that say what kind of token it is.
#[derive(serde::Deserialize)]
struct Kind<'a> {
    #[serde(default, borrow)]
    token_type: Option<std::borrow::Cow<'a, str>>,
    /// Ory Hydra's `access_token` or `refresh_token`.
    #[serde(default, borrow)]
    token_use: Option<std::borrow::Cow<'a, str>>,
    /// Keycloak's `Bearer`, or `Refresh`, `Offline`, `ID` for what is no access token.
    #[serde(default, borrow)]
    typ: Option<std::borrow::Cow<'a, str>>,
}

/// Keycloak's `typ` values of tokens that are not access tokens.
const NOT_ACCESS_TYPS: [&str; 4] = ["Refresh", "Offline", "ID", "Logout"];

impl Default for AnswerRules {
    fn default() -> Self {
        Self::new()
    }
}

impl AnswerRules {
    /// No issuer or audience configured, a 30 s leeway, `exp` not required, and the default
    /// [`AuthorityMapping`] (`roles` and `scope`).
    pub fn new() -> Self {
        let claims = ClaimRules { require_exp: false, require_iss: false, require_aud: false, ..ClaimRules::new() };
        Self { claims, token_types: None }
    }

    /// Accepts answers whose `iss`, when present, equals `issuer`. Call it again to accept several.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.claims.issuers.push(issuer.into());
        self
    }

    /// Accepts answers whose `aud`, when present, names `audience`. Call it again to accept several.
    pub fn audience(mut self, audience: impl Into<ExpectedAudience>) -> Self {
        self.claims.audiences.push(audience.into());
        self
    }

    /// Refuses an answer without `iss` once an issuer is configured.
    pub fn require_issuer(mut self) -> Self {
        self.claims.require_iss = true;
        self
    }

    /// Refuses an answer without `aud` once an audience is configured: for endpoints that always name the
    /// audience, so that a token issued for another resource cannot pass for want of one.
    pub fn require_audience(mut self) -> Self {
        self.claims.require_aud = true;
        self
    }

    /// Refuses an answer without `exp`.
    pub fn require_exp(mut self) -> Self {
        self.claims.require_exp = true;
        self
    }

    /// Accepts only answers whose `token_type` is one of `types` (such as `["Bearer", "DPoP"]`), compared
    /// without case; an answer without `token_type` is refused. By default `token_type` is not required, and
    /// only an answer that says it is about a refresh token is refused: see [`check`](Self::check).
    pub fn token_types<I, T>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.token_types = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// The clock leeway for `exp`, `nbf` and `iat`, in whole seconds. Default 30 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.claims.leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// How roles, scopes and permissions are read from the answer into the [`Principal`]. Default:
    /// [`AuthorityMapping::default`], the `roles` array and the `scope` string, which is how RFC 7662 §2.2
    /// gives scopes.
    pub fn authorities(mut self, mapping: AuthorityMapping) -> Self {
        self.claims.mapping = Arc::new(mapping);
        self
    }

    /// The configured audiences.
    pub fn audiences(&self) -> &[ExpectedAudience] {
        &self.claims.audiences
    }

    /// The configured issuers.
    pub fn issuers(&self) -> &[String] {
        &self.claims.issuers
    }

    /// Checks an active answer's claims as of `now` (seconds since the Unix epoch), and reads them into a
    /// [`Validated`] token: the claims type `C`, the registered claims (`cnf` among them, so that a
    /// sender-constrained token stays bound), and the principal. Its
    /// [`valid_until`](Validated::valid_until) is the answer's `exp`, if any.
    ///
    /// A refresh token is no access token, and an endpoint may vouch for one whatever `token_type_hint` said
    /// (RFC 7662 §2.1 makes the hint a hint). An answer that says it is about another kind of token is refused
    /// as [`ErrorKind::InvalidType`]: a `token_type` of `refresh_token`, a `token_use` (Ory Hydra's) other than
    /// `access_token`, a `typ` (Keycloak's) of `Refresh`, `Offline`, `ID` or `Logout`. So is one whose
    /// `token_type` is not among [`token_types`](Self::token_types) when they are set. An answer that says
    /// nothing of its kind (Spring Authorization Server's about a refresh token) cannot be told apart here: set
    /// `token_types`, or require an audience, for such a server.
    pub fn check<C: DeserializeOwned>(&self, answer: &ActiveAnswer, now: i64) -> Result<Validated<C>, Error> {
        let (claims, registered) = answer.claims::<C>()?;
        self.check_kind(answer.json())?;
        self.claims.check_claims(&registered, now)?;
        let valid_until = self.claims.valid_until(&registered);
        let principal = Principal::from_claims(registered, self.claims.mapping.clone(), self.claims.leeway);
        Ok(Validated { claims, alg: None, kid: None, origin: None, valid_until, principal: Arc::new(principal) })
    }
}

impl AnswerRules {
    fn check_kind(&self, json: &str) -> Result<(), ErrorKind> {
        // The answer was read as an object of unique members already: only the types can fail here.
        let kind: Kind<'_> = serde_json::from_str(json).map_err(|_| ErrorKind::InvalidType)?;
        let refresh = kind.token_type.as_deref().is_some_and(|typ| typ.eq_ignore_ascii_case("refresh_token"))
            || kind.token_use.as_deref().is_some_and(|used| used != "access_token")
            || kind.typ.as_deref().is_some_and(|typ| NOT_ACCESS_TYPS.iter().any(|not| not.eq_ignore_ascii_case(typ)));
        let listed = match (&self.token_types, kind.token_type.as_deref()) {
            (None, _) => true,
            (Some(types), Some(typ)) => types.iter().any(|allowed| allowed.eq_ignore_ascii_case(typ)),
            (Some(_), None) => false,
        };
        if refresh || !listed { Err(ErrorKind::InvalidType) } else { Ok(()) }
    }
}

impl fmt::Debug for AnswerRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let claims = &self.claims;
        f.debug_struct("AnswerRules")
            .field("issuers", &claims.issuers)
            .field("audiences", &claims.audiences)
            .field("leeway", &claims.leeway)
            .field("require_exp", &claims.require_exp)
            .field("require_issuer", &claims.require_iss)
            .field("require_audience", &claims.require_aud)
            .field("token_types", &self.token_types)
            .field("authorities", &claims.mapping)
            .finish()
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
    fn refresh_tokens_are_no_access_tokens() {
        let check = |rules: &AnswerRules, body: &str| {
            rules.check::<Value>(&ActiveAnswer::read(body.as_bytes()).unwrap(), 0).map(|_| ()).map_err(|e| e.kind())
        };
        let any = AnswerRules::new();
        for refused in [
            r#"{"active":true,"token_type":"refresh_token"}"#,
            r#"{"active":true,"token_type":"Refresh_Token"}"#,
            r#"{"active":true,"token_use":"refresh_token"}"#,
            r#"{"active":true,"token_use":"id_token"}"#,
            r#"{"active":true,"token_type":7}"#,
            r#"{"active":true,"typ":"Refresh"}"#,
            r#"{"active":true,"typ":"offline"}"#,
        ] {
            assert_eq!(check(&any, refused), Err(ErrorKind::InvalidType), "{refused}");
        }
        for accepted in
            [r#"{"active":true}"#, r#"{"active":true,"token_type":"Bearer","token_use":"access_token","typ":"Bearer"}"#]
        {
            assert_eq!(check(&any, accepted), Ok(()), "{accepted}");
        }
        let typed = AnswerRules::new().token_types(["Bearer", "DPoP"]);
        assert_eq!(check(&typed, r#"{"active":true,"token_type":"bearer"}"#), Ok(()));
        assert_eq!(check(&typed, r#"{"active":true,"token_type":"N_A"}"#), Err(ErrorKind::InvalidType));
        assert_eq!(check(&typed, r#"{"active":true}"#), Err(ErrorKind::InvalidType));
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
