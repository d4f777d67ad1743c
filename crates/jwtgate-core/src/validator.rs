//! The validator: its settings, one signature check and the claim checks, yielding typed claims.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::claims::{RegisteredClaims, parse_claims};
use crate::jwe::{self, Decryption, DecryptionKeys};
use crate::jws::{Header, PartBuffer, decode_part};
use crate::source::{PendingRefresh, RefreshOutcome, TrustedKeys};
use crate::validated::{Attempt, Validated};
use crate::{Algorithm, AuthorityMapping, ConfigError, ConfigErrorKind, Error, ErrorKind, Principal};

/// The default clock leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The default limit on a token's length, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Validates compact JWS tokens against [`TrustedKeys`] and a set of claim rules.
///
/// Build it once with [`Validator::builder`] and share it (it is cheap to clone). For several issuers, each
/// with its own keys and rules, combine one validator per issuer with [`Validator::by_issuer`]. For each
/// token it:
/// 1. refuses a token longer than the size limit before any decoding ([`ErrorKind::TooLarge`]);
/// 2. reads the header, refusing `alg` values it does not support (`none` among them), any `crit`
///    header, and a `typ` outside the required ones when types are required;
/// 3. selects one key by `kid` (or, without `kid`, the only key for the `alg`), refuses a key of another
///    algorithm, and verifies the signature: one verification at most;
/// 4. reads the claims set once, checks the registered claims' types, `exp` (required by default), `nbf`,
///    `iat` (never in the future, optionally not older than a maximum age), `iss` and `aud`;
/// 5. deserializes the custom claims type `C` from the same read.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

#[allow(clippy::large_enum_variant, reason = "one per validator, behind an Arc; boxing would add a hop per token")]
enum Inner {
    One(Rules),
    ByIssuer(Issuers),
}

/// One validator per issuer, chosen by the token's `iss` before anything is verified.
struct Issuers {
    by_issuer: HashMap<String, Validator>,
    max_token_bytes: usize,
}

struct Rules {
    keys: TrustedKeys,
    types: Vec<String>,
    max_token_bytes: usize,
    claims: ClaimRules,
    decryption: Option<Decryption>,
}

/// The checks of a claims set, whether a JWT or an introspection answer holds it: its lifetime, its issuer
/// and its audience; and how the claims map into a [`Principal`].
#[derive(Clone)]
pub(crate) struct ClaimRules {
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<ExpectedAudience>,
    pub(crate) leeway: i64,
    pub(crate) require_exp: bool,
    /// Whether `iss` is required once an issuer is configured; when not, an absent `iss` passes, a wrong one
    /// never does.
    pub(crate) require_iss: bool,
    /// Whether `aud` is required once an audience is configured, as `iss` above.
    pub(crate) require_aud: bool,
    pub(crate) max_age: Option<i64>,
    pub(crate) mapping: Arc<AuthorityMapping>,
}

/// Configures a [`Validator`].
#[derive(Debug)]
#[must_use]
pub struct ValidatorBuilder {
    rules: Rules,
}

impl Validator {
    /// Starts a validator that trusts `keys` (a [`KeySet`](crate::KeySet), or [`TrustedKeys`] with a
    /// [`KeySource`](crate::KeySource) such as a remote JWKS), with the defaults: `exp` required, a 30 s
    /// leeway, no issuer or audience configured, any `typ`, no maximum age, and tokens of at most 8 KiB.
    pub fn builder(keys: impl Into<TrustedKeys>) -> ValidatorBuilder {
        ValidatorBuilder {
            rules: Rules {
                keys: keys.into(),
                types: Vec::new(),
                max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
                claims: ClaimRules::new(),
                decryption: None,
            },
        }
    }

    /// A validator for several issuers (tenants), each with its own keys, audiences, leeway and other
    /// rules. The token's `iss`, read before anything is verified, chooses the one validator that checks it,
    /// so a token is only ever verified against its own issuer's keys. A token of any other issuer is
    /// refused as [`ErrorKind::InvalidIssuer`], and one without `iss` as a missing claim.
    ///
    /// Each validator must accept exactly one issuer, and no two the same one. Tokens longer than the
    /// largest of their size limits are refused before any decoding.
    pub fn by_issuer(validators: impl IntoIterator<Item = Validator>) -> Result<Self, ConfigError> {
        let mut by_issuer = HashMap::new();
        let mut max_token_bytes = 0;
        for validator in validators {
            let Inner::One(rules) = &*validator.inner else {
                return Err(ConfigError::new(
                    ConfigErrorKind::Validator,
                    "a validator by issuer cannot contain another one".to_owned(),
                ));
            };
            if rules.decryption.is_some() {
                return Err(ConfigError::new(
                    ConfigErrorKind::Validator,
                    "a validator by issuer cannot decrypt tokens: the issuer is read before decryption".to_owned(),
                ));
            }
            let [issuer] = rules.claims.issuers.as_slice() else {
                return Err(ConfigError::new(
                    ConfigErrorKind::Validator,
                    format!(
                        "each validator by issuer needs exactly one issuer; one has {}",
                        rules.claims.issuers.len()
                    ),
                ));
            };
            max_token_bytes = max_token_bytes.max(rules.max_token_bytes);
            if by_issuer.insert(issuer.clone(), validator.clone()).is_some() {
                return Err(ConfigError::new(
                    ConfigErrorKind::Validator,
                    format!("two validators accept the issuer {issuer:?}"),
                ));
            }
        }
        if by_issuer.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::Validator,
                "a validator by issuer needs at least one issuer".to_owned(),
            ));
        }
        Ok(Self { inner: Arc::new(Inner::ByIssuer(Issuers { by_issuer, max_token_bytes })) })
    }

    /// The issuers whose tokens this validator accepts, in the order they were configured (sorted for a
    /// validator [by issuer](Self::by_issuer)); empty when any issuer is accepted. For the
    /// `authorization_servers` of a protected resource's metadata.
    pub fn issuers(&self) -> Vec<&str> {
        match &*self.inner {
            Inner::One(rules) => rules.claims.issuers.iter().map(String::as_str).collect(),
            Inner::ByIssuer(issuers) => {
                let mut all: Vec<&str> = issuers.by_issuer.keys().map(String::as_str).collect();
                all.sort_unstable();
                all
            }
        }
    }

    /// Whether a token whose `aud` is `audience` passes the audience check: of every issuer's rules, for a
    /// validator [by issuer](Self::by_issuer).
    pub fn accepts_audience(&self, audience: &str) -> bool {
        let accepts = |rules: &Rules| rules.claims.audiences.iter().any(|expected| expected.matches(audience));
        match &*self.inner {
            Inner::One(rules) => accepts(rules),
            Inner::ByIssuer(issuers) => issuers.by_issuer.values().all(|validator| match &*validator.inner {
                Inner::One(rules) => accepts(rules),
                Inner::ByIssuer(_) => false,
            }),
        }
    }

    /// Validates `token` now, with the keys at hand: an unknown `kid` is refused at once, without asking a
    /// [`KeySource`](crate::KeySource) to refresh. See [`Validator`] for the checks, in order, and
    /// [`Validator::validate_or_wait`] or [`Validator::validate_async`] to let an unknown `kid` trigger a refresh.
    pub fn validate<C: DeserializeOwned>(&self, token: &str) -> Result<Validated<C>, Error> {
        self.validate_at(token, unix_now())
    }

    /// Validates `token` as if the time were `now` seconds since the Unix epoch.
    pub fn validate_at<C: DeserializeOwned>(&self, token: &str, now: i64) -> Result<Validated<C>, Error> {
        self.check(token, now, None).map_err(|kind| conceal(token, kind))
    }

    /// Whether this validator decrypts encrypted tokens (JWE): it has [decryption
    /// keys](ValidatorBuilder::decryption_keys).
    pub fn decrypts(&self) -> bool {
        matches!(&*self.inner, Inner::One(Rules { decryption: Some(decryption), .. }) if !decryption.keys.keys().is_empty())
    }

    /// Validates `token` now, or returns a wait for a [`KeySource`](crate::KeySource)'s fetch: when the token
    /// names a `kid` the source lacks and the source agrees to refresh, or when the source has no keys yet
    /// and a fetch is under way (a cold start). Once the wait resolves, call [`Validator::after_refresh`]
    /// for the answer: a token waits once at most. `JwtAuthLayer` calls this.
    pub fn validate_or_wait<C: DeserializeOwned>(&self, token: &str) -> Attempt<C> {
        let mut refresh = None;
        match (self.check(token, unix_now(), Some(&mut refresh)), refresh) {
            (Err(ErrorKind::UnknownKey | ErrorKind::KeysUnavailable), Some(refresh)) => Attempt::WaitForKeys(refresh),
            (result, _) => Attempt::Done(result.map_err(|kind| conceal(token, kind))),
        }
    }

    /// The answer for `token` once the wait that [`Validator::validate_or_wait`] returned has ended: `token` is
    /// validated with the keys there are now, without waiting again. When the wait timed out before the
    /// fetch ended, a `kid` still unknown is [`ErrorKind::KeysUnavailable`] (the key may be on its way),
    /// not [`ErrorKind::UnknownKey`].
    pub fn after_refresh<C: DeserializeOwned>(
        &self,
        token: &str,
        outcome: RefreshOutcome,
    ) -> Result<Validated<C>, Error> {
        self.check(token, unix_now(), None).map_err(|kind| match (kind, outcome) {
            // An encrypted token's inner key is concealed as any failure after decryption.
            (ErrorKind::UnknownKey, RefreshOutcome::TimedOut) if !jwe::is_compact_jwe(token) => {
                Error::new(ErrorKind::KeysUnavailable)
            }
            (kind, _) => conceal(token, kind),
        })
    }

    /// Validates `token`, waiting (within the source's bound) for a key fetch when it names a `kid` a
    /// [`KeySource`](crate::KeySource) lacks, or when the source has no keys yet (see [`Validator::validate_or_wait`]).
    pub async fn validate_async<C: DeserializeOwned>(&self, token: &str) -> Result<Validated<C>, Error> {
        match self.validate_or_wait(token) {
            Attempt::Done(result) => result,
            Attempt::WaitForKeys(refresh) => {
                let outcome = refresh.await;
                self.after_refresh(token, outcome)
            }
        }
    }

    fn check<C: DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
        refresh: Option<&mut Option<PendingRefresh>>,
    ) -> Result<Validated<C>, ErrorKind> {
        match &*self.inner {
            Inner::One(rules) => rules.check(token, now, refresh),
            Inner::ByIssuer(issuers) => issuers.select(token)?.check(token, now, refresh),
        }
    }
}

/// The error for `token`: for an encrypted token, every failure up to and including the inner token's
/// signature is [`ErrorKind::Undecryptable`], whichever step it was, so that no answer is an oracle for the
/// decryption (RFC 7516 §11.4, §11.5). A failure of a verified token's claims (expired, wrong audience) is
/// told as for any token.
fn conceal(token: &str, kind: ErrorKind) -> Error {
    let concealed = jwe::is_compact_jwe(token)
        && matches!(
            kind,
            ErrorKind::Malformed
                | ErrorKind::UnsupportedAlgorithm
                | ErrorKind::AlgorithmMismatch
                | ErrorKind::UnknownKey
                | ErrorKind::InvalidSignature
                | ErrorKind::UnsupportedCritical
                | ErrorKind::InvalidType
        );
    Error::new(if concealed { ErrorKind::Undecryptable } else { kind })
}

impl Issuers {
    /// The validator of the token's issuer. The claims are read unverified here, to choose; the chosen
    /// validator checks everything, `iss` included, as if it were alone.
    fn select(&self, token: &str) -> Result<&Validator, ErrorKind> {
        if token.len() > self.max_token_bytes {
            return Err(ErrorKind::TooLarge);
        }
        let mut parts = token.splitn(3, '.');
        let (Some(_), Some(payload), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ErrorKind::Malformed);
        };
        // No validator by issuer decrypts (see `Validator::by_issuer`): a JWE's second part is no claims set.
        if rest.contains('.') {
            return Err(if jwe::is_compact_jwe(token) { ErrorKind::Undecryptable } else { ErrorKind::Malformed });
        }
        let payload = String::from_utf8(decode_part(payload)?).map_err(|_| ErrorKind::Malformed)?;
        let claims = RegisteredClaims::parse(payload)?;
        let iss = claims.issuer().ok_or(ErrorKind::MissingClaim { claim: "iss" })?;
        self.by_issuer.get(iss).ok_or(ErrorKind::InvalidIssuer)
    }
}

impl Rules {
    fn check<C: DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
        refresh: Option<&mut Option<PendingRefresh>>,
    ) -> Result<Validated<C>, ErrorKind> {
        let rules = self;
        if token.len() > rules.max_token_bytes {
            return Err(ErrorKind::TooLarge);
        }
        // Without decryption keys, nothing here looks for encrypted tokens: one reaches the signed checks, is
        // malformed there, and `conceal` answers `Undecryptable`.
        if let Some(decryption) = &rules.decryption {
            if jwe::is_compact_jwe(token) {
                let mut refresh = refresh;
                // A key source that has no keys yet (a cold start) is told before decryption, so that the 503
                // says nothing about the token.
                rules.keys.available(refresh.as_deref_mut())?;
                let inner = jwe::decrypt(&decryption.keys, token, rules.max_token_bytes)
                    .map_err(|_| ErrorKind::Undecryptable)?;
                // After decryption, every failure before the inner signature is concealed (see `conceal`), the
                // source's keys vanishing meanwhile too.
                return rules.check_signed(&inner, now, refresh).map_err(|kind| match kind {
                    ErrorKind::KeysUnavailable => ErrorKind::Undecryptable,
                    kind => kind,
                });
            }
            if decryption.required {
                return Err(ErrorKind::NotEncrypted);
            }
        }
        rules.check_signed(token, now, refresh)
    }

    /// The checks of a signed token (compact JWS), alone or from inside an encrypted one.
    fn check_signed<C: DeserializeOwned>(
        &self,
        token: &str,
        now: i64,
        refresh: Option<&mut Option<PendingRefresh>>,
    ) -> Result<Validated<C>, ErrorKind> {
        let rules = self;
        let (signing_input, signature) = token.rsplit_once('.').ok_or(ErrorKind::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(ErrorKind::Malformed)?;
        if payload.contains('.') {
            return Err(ErrorKind::Malformed);
        }

        let mut header_buf = PartBuffer::<256>::new();
        let header = Header::parse(header_buf.decode(header)?)?;
        let alg: Algorithm = header.alg.0.parse().map_err(|_| ErrorKind::UnsupportedAlgorithm)?;
        if header.crit {
            return Err(ErrorKind::UnsupportedCritical);
        }
        if !rules.types.is_empty() && !header.typ.as_ref().is_some_and(|typ| rules.type_allowed(&typ.0)) {
            return Err(ErrorKind::InvalidType);
        }

        let kid = header.kid.as_ref().map(|kid| kid.0.as_ref());
        let (kid, origin) = rules.keys.with_key(kid, alg, refresh, |key| {
            if signature.is_empty() {
                return Err(ErrorKind::InvalidSignature);
            }
            // Up to 1,024 bytes: the signature of an 8,192-bit RSA key, the largest jwtgate accepts.
            let mut signature_buf = PartBuffer::<1024>::new();
            let signature = signature_buf.decode(signature).map_err(|_| ErrorKind::InvalidSignature)?;
            if !key.verify(signing_input.as_bytes(), signature) {
                return Err(ErrorKind::InvalidSignature);
            }
            Ok(key.kid_arc())
        })?;

        // The claims set is checked as UTF-8 once, here; it is then parsed without copying, and kept for the
        // principal.
        let payload = String::from_utf8(decode_part(payload)?).map_err(|_| ErrorKind::Malformed)?;
        let (claims, registered) = parse_claims::<C>(payload)?;
        rules.claims.check_claims(&registered, now)?;
        let valid_until = rules.claims.valid_until(&registered);
        let principal = Principal::from_claims(registered, rules.claims.mapping.clone(), rules.claims.leeway);
        Ok(Validated { claims, alg: Some(alg), kid, origin, valid_until, principal: Arc::new(principal) })
    }

    fn type_allowed(&self, typ: &str) -> bool {
        let typ = strip_application(typ);
        self.types.iter().any(|allowed| strip_application(allowed).eq_ignore_ascii_case(typ))
    }
}

impl ClaimRules {
    /// The rules of a JWT: `exp` required, and `iss` and `aud` required once configured.
    pub(crate) fn new() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY.as_secs() as i64,
            require_exp: true,
            require_iss: true,
            require_aud: true,
            max_age: None,
            mapping: Arc::new(AuthorityMapping::default()),
        }
    }

    /// Until when a token with these (already checked) claims stays valid without leeway: its `exp`, or
    /// sooner when a maximum age ends first. `None` for a token without `exp` and maximum age.
    pub(crate) fn valid_until(&self, claims: &RegisteredClaims) -> Option<i64> {
        let aged_out = self.max_age.zip(claims.iat).map(|(max_age, iat)| iat.saturating_add(max_age));
        match (claims.exp, aged_out) {
            (Some(exp), Some(aged_out)) => Some(exp.min(aged_out)),
            (exp, aged_out) => exp.or(aged_out),
        }
    }

    pub(crate) fn check_claims(&self, claims: &RegisteredClaims, now: i64) -> Result<(), ErrorKind> {
        let leeway = self.leeway;
        match claims.exp {
            Some(exp) if now >= exp.saturating_add(leeway) => return Err(ErrorKind::Expired),
            None if self.require_exp => return Err(ErrorKind::MissingClaim { claim: "exp" }),
            _ => {}
        }
        if let Some(nbf) = claims.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(ErrorKind::NotYetValid);
        }
        match claims.iat {
            Some(iat) if iat > now.saturating_add(leeway) => return Err(ErrorKind::IssuedInFuture),
            Some(iat) => {
                if let Some(max_age) = self.max_age
                    && now > iat.saturating_add(max_age).saturating_add(leeway)
                {
                    return Err(ErrorKind::TooOld);
                }
            }
            None if self.max_age.is_some() => return Err(ErrorKind::MissingClaim { claim: "iat" }),
            None => {}
        }
        // A lifetime that ends before it starts is no lifetime, even when the leeway covers both ends (each
        // end on its own passed the checks above).
        if let Some(exp) = claims.exp
            && (claims.nbf.is_some_and(|nbf| nbf > exp) || claims.iat.is_some_and(|iat| iat > exp))
        {
            return Err(ErrorKind::EmptyLifetime);
        }
        if !self.issuers.is_empty() {
            match claims.issuer() {
                Some(iss) if !self.issuers.iter().any(|allowed| allowed == iss) => {
                    return Err(ErrorKind::InvalidIssuer);
                }
                None if self.require_iss => return Err(ErrorKind::MissingClaim { claim: "iss" }),
                _ => {}
            }
        }
        let mut audience = claims.audience();
        if self.require_aud && !self.audiences.is_empty() && audience.len() == 0 {
            return Err(ErrorKind::MissingClaim { claim: "aud" });
        }
        // RFC 7519 §4.1.3: a recipient that does not identify itself with a value of a present `aud` must
        // refuse the token, so a present `aud` with no audience configured is refused too.
        if audience.len() != 0 && !audience.any(|aud| self.audiences.iter().any(|allowed| allowed.matches(aud))) {
            return Err(ErrorKind::InvalidAudience);
        }
        Ok(())
    }
}

/// An audience a [`Validator`] accepts (see [`ValidatorBuilder::audience`]): a value, and how a token's
/// `aud` is compared with it. A string converts into one that compares exactly.
#[derive(Clone)]
pub struct ExpectedAudience {
    value: String,
    equals: fn(expected: &str, aud: &str) -> bool,
}

impl ExpectedAudience {
    /// An audience that a token's `aud` value `aud` names when `equals(value, aud)` holds: for identifiers
    /// with more than one spelling, such as URIs whose scheme and host compare without case.
    pub fn with_comparison(value: impl Into<String>, equals: fn(expected: &str, aud: &str) -> bool) -> Self {
        Self { value: value.into(), equals }
    }

    /// The configured value.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Whether a token's `aud` value names this audience.
    pub fn matches(&self, aud: &str) -> bool {
        aud == self.value || (self.equals)(&self.value, aud)
    }
}

impl fmt::Debug for ExpectedAudience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

fn exactly(_: &str, _: &str) -> bool {
    false
}

impl From<String> for ExpectedAudience {
    fn from(value: String) -> Self {
        Self { value, equals: exactly }
    }
}

impl From<&str> for ExpectedAudience {
    fn from(value: &str) -> Self {
        value.to_owned().into()
    }
}

impl From<&String> for ExpectedAudience {
    fn from(value: &String) -> Self {
        value.clone().into()
    }
}

/// `application/at+jwt` and `at+jwt` name the same type (RFC 7515 §4.1.9).
fn strip_application(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

/// Seconds since the Unix epoch, now: the clock every expiry in jwtgate is compared with (`exp`, `nbf`,
/// `iat`, revocations, cached tokens, refresh tokens). Saturates rather than wraps.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl ValidatorBuilder {
    /// Accepts tokens whose `iss` equals `issuer`. Call it again to accept several issuers. Once an issuer
    /// is configured, `iss` is required.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.rules.claims.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens with `audience` among their `aud` values: a string, compared exactly, or any
    /// [`ExpectedAudience`], such as a protected resource's identifier (`jwtgate_tower::ResourceUri`, whose
    /// scheme and host compare without case). Call it again to accept several. Once an audience is
    /// configured, `aud` is required. A token that has an `aud` is refused when none of its values is
    /// configured, even when no audience is configured at all (RFC 7519 §4.1.3).
    pub fn audience(mut self, audience: impl Into<ExpectedAudience>) -> Self {
        self.rules.claims.audiences.push(audience.into());
        self
    }

    /// Requires the `typ` header to be one of `types`, compared without case and with or without an
    /// `application/` prefix (`JWT`, `at+jwt`). By default `typ` is not checked.
    pub fn required_types<I, T>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.rules.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// The clock leeway for `exp`, `nbf` and `iat`, in whole seconds. Default 30 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules.claims.leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Whether `exp` is required. Default `true`; a token without `exp` never expires, so think twice.
    pub fn require_exp(mut self, required: bool) -> Self {
        self.rules.claims.require_exp = required;
        self
    }

    /// Refuses tokens whose `iat` is older than `max_age` (plus the leeway), and tokens without `iat`.
    /// Default: no maximum age.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.rules.claims.max_age = Some(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        self
    }

    /// Refuses tokens longer than `bytes` before any decoding. Default 8 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.rules.max_token_bytes = bytes;
        self
    }

    /// Decrypts encrypted tokens (nested JWTs: a signed token inside a compact JWE) with `keys`, then
    /// validates the token inside as any other. Plain signed tokens are still accepted unless
    /// [`require_encryption`](Self::require_encryption). Without this, an encrypted token is refused
    /// ([`ErrorKind::Undecryptable`]). See the `jwe` module (`jwtgate::jwe`) for the algorithms.
    pub fn decryption_keys(mut self, keys: DecryptionKeys) -> Self {
        let required = self.rules.decryption.as_ref().is_some_and(|decryption| decryption.required);
        self.rules.decryption = Some(Decryption { keys, required });
        self
    }

    /// Refuses tokens that are not encrypted ([`ErrorKind::NotEncrypted`]), once
    /// [`decryption_keys`](Self::decryption_keys) are set; without them every token is refused. Default: plain
    /// signed tokens are accepted too.
    pub fn require_encryption(mut self, required: bool) -> Self {
        match &mut self.rules.decryption {
            Some(decryption) => decryption.required = required,
            None if required => {
                self.rules.decryption = Some(Decryption { keys: DecryptionKeys::none(), required: true });
            }
            None => {}
        }
        self
    }

    /// How roles, scopes and permissions are read from the claims into the [`Principal`]. Default:
    /// [`AuthorityMapping::default`], the `roles` array and the `scope` string.
    pub fn authorities(mut self, mapping: AuthorityMapping) -> Self {
        self.rules.claims.mapping = Arc::new(mapping);
        self
    }

    /// Builds the validator.
    pub fn build(self) -> Validator {
        Validator { inner: Arc::new(Inner::One(self.rules)) }
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("keys", &self.keys)
            .field("issuers", &self.claims.issuers)
            .field("audiences", &self.claims.audiences)
            .field("types", &self.types)
            .field("leeway", &self.claims.leeway)
            .field("require_exp", &self.claims.require_exp)
            .field("max_age", &self.claims.max_age)
            .field("max_token_bytes", &self.max_token_bytes)
            .field("authorities", &self.claims.mapping)
            .field("decryption", &self.decryption)
            .finish()
    }
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Inner::One(rules) => rules.fmt(f),
            Inner::ByIssuer(issuers) => f
                .debug_struct("Validator")
                .field("by_issuer", &issuers.by_issuer)
                .field("max_token_bytes", &issuers.max_token_bytes)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_that_expires_before_it_becomes_valid_is_refused_whatever_the_leeway() {
        // Regression (issue 17): with `nbf` (or `iat`) after `exp` and both within the leeway, the token was
        // accepted, though its lifetime is empty (IdentityModel's IDX12401).
        let key = crate::Key::hmac(Algorithm::HS256, &crate::Secret::new(vec![1; 32])).unwrap();
        let rules = Validator::builder(crate::KeySet::new([key]).unwrap()).rules;
        let now = 1_000_000;
        let claims = |nbf: Option<i64>, iat: Option<i64>, exp: i64| RegisteredClaims {
            nbf,
            iat,
            exp: Some(exp),
            ..RegisteredClaims::default()
        };
        assert_eq!(
            rules.claims.check_claims(&claims(Some(now + 10), None, now + 5), now),
            Err(ErrorKind::EmptyLifetime)
        );
        assert_eq!(
            rules.claims.check_claims(&claims(None, Some(now + 10), now + 5), now),
            Err(ErrorKind::EmptyLifetime)
        );
        assert_eq!(rules.claims.check_claims(&claims(Some(now - 5), Some(now - 5), now + 5), now), Ok(()));
        assert_eq!(
            rules.claims.check_claims(&claims(Some(now + 5), Some(now + 5), now + 5), now),
            Ok(()),
            "a lifetime of one instant"
        );
    }

    #[test]
    fn types_compare_without_case_or_application_prefix() {
        let key = crate::Key::hmac(Algorithm::HS256, &crate::Secret::new(vec![1; 32])).unwrap();
        let rules = Validator::builder(crate::KeySet::new([key]).unwrap()).required_types(["at+jwt"]).rules;
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+jwt"] {
            assert!(rules.type_allowed(typ), "{typ}");
        }
        for typ in ["JWT", "", "application/", "at+jwt "] {
            assert!(!rules.type_allowed(typ), "{typ}");
        }
    }
}
