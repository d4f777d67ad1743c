//! Issuing short-lived access tokens, and rotating the keys that sign them.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgate_core::jwe::EncryptionKey;
use jwtgate_core::{__private::unix_now, KeySet, KeySource, KeysUnavailable, PendingRefresh, SigningKey, TrustedKeys};
use jwtgate_jwks::JwksPublisher;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use jwtgate_core::ConfigError;

/// The default lifetime of an access token: 15 minutes.
pub const DEFAULT_ACCESS_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The longest access-token lifetime allowed without [`TokenIssuerBuilder::allow_long_lifetime`].
pub const MAX_DEFAULT_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// How long a previous key stays trusted and published past the last token it signed, by default: jwtgate's
/// default clock leeway.
const DEFAULT_RETIREMENT_LEEWAY: Duration = Duration::from_secs(30);

const REGISTERED: [&str; 7] = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti"];

/// Signs short-lived access tokens for one issuer and its audiences.
///
/// Each token gets `iss`, `aud`, `sub`, `iat`, `nbf`, `exp` (15 minutes by default; more than an hour needs
/// [`allow_long_lifetime`](TokenIssuerBuilder::allow_long_lifetime)), a random 128-bit `jti`, and the
/// signing key's `kid` in its header, with `typ: at+jwt` (RFC 9068). Your own claims are typed: any
/// `Serialize` map, such as a struct with `roles`. Keep them lean (roles and ids, not profiles): every
/// request carries them.
///
/// ## Keys and rotation
/// [`rotate`](Self::rotate) makes a new key sign from then on. The previous key stays trusted and, when it
/// is asymmetric, published by [`jwks`](Self::jwks) until the last token it signed has expired (its
/// lifetime plus the verifiers' leeway, 30 s by default); then it is retired. The issuer is a [`KeySource`]: a validator built with
/// `Validator::builder(issuer.clone())` trusts exactly the keys in use, through every rotation.
#[derive(Clone)]
pub struct TokenIssuer {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audiences: Vec<String>,
    lifetime: Duration,
    leeway: Duration,
    keys: ArcSwap<Keys>,
    /// The public keys, for an issuer with asymmetric keys.
    jwks: Option<JwksPublisher>,
    /// The recipient its tokens are encrypted for, if any.
    encryption: Option<EncryptionKey>,
    /// The earliest retirement due (seconds since the epoch), or `i64::MAX`: checked without a lock.
    next_retirement: AtomicI64,
    /// Serializes rotations and retirements; issuing never takes it unless a retirement is due.
    writer: Mutex<()>,
}

/// The keys in use: the one that signs, and those that still verify.
struct Keys {
    current: SigningKey,
    /// Previous keys, newest first, with the time after which no token they signed is valid.
    previous: Vec<(SigningKey, i64)>,
    trusted: Arc<KeySet>,
}

impl Keys {
    fn new(current: SigningKey, previous: Vec<(SigningKey, i64)>) -> Result<Self, ConfigError> {
        let trusted = KeySet::new(
            std::iter::once(current.verification_key().clone())
                .chain(previous.iter().map(|(key, _)| key.verification_key().clone())),
        )
        .map_err(|err| crate::issuer_error(format!("the signing keys do not form a key set: {err}")))?;
        Ok(Self { current, previous, trusted: Arc::new(trusted) })
    }
}

/// Configures a [`TokenIssuer`].
#[derive(Debug)]
#[must_use]
pub struct TokenIssuerBuilder {
    issuer: String,
    audiences: Vec<String>,
    lifetime: Duration,
    leeway: Duration,
    allow_long: bool,
    key: SigningKey,
    encryption: Option<EncryptionKey>,
}

/// An access token just issued.
#[derive(Clone)]
pub struct Issued {
    token: String,
    jti: String,
    expires_at: i64,
    lifetime: Duration,
}

impl Issued {
    /// The token (compact JWS). Send it; never log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Its `jti`, for revocation.
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// Its `exp`, in seconds since the Unix epoch.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// How long it is valid from now: a cookie's `Max-Age`.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("token", &"[redacted]")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl TokenIssuer {
    /// Starts an issuer named `issuer` (the `iss` of its tokens) that signs with `key`.
    pub fn builder(issuer: impl Into<String>, key: SigningKey) -> TokenIssuerBuilder {
        TokenIssuerBuilder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            lifetime: DEFAULT_ACCESS_LIFETIME,
            leeway: DEFAULT_RETIREMENT_LEEWAY,
            allow_long: false,
            key,
            encryption: None,
        }
    }

    /// The `iss` of its tokens.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The lifetime of its tokens.
    pub fn lifetime(&self) -> Duration {
        self.inner.lifetime
    }

    /// The clock leeway of the verifiers of its tokens (see [`TokenIssuerBuilder::leeway`]): how long past
    /// its `exp` a token may still be accepted, so how long past it a revocation must last.
    pub fn leeway(&self) -> Duration {
        self.inner.leeway
    }

    /// Signs an access token for `subject` with `claims` (any `Serialize` map; `()` for none). Refuses
    /// custom claims that set a registered one (`iss`, `aud`, `sub`, `iat`, `nbf`, `exp`, `jti`). A `cnf` among
    /// them binds the token as you say (such as `{"x5t#S256": ...}` for a client certificate, RFC 8705); for a
    /// DPoP key, use [`issue_bound`](Self::issue_bound).
    pub fn issue<C: Serialize + ?Sized>(&self, subject: &str, claims: &C) -> Result<Issued, ConfigError> {
        self.issue_with(subject, claims, None)
    }

    /// Signs a DPoP-bound access token (RFC 9449 §6): as [`issue`](Self::issue), with `cnf: {"jkt": jkt}`, the
    /// thumbprint of the key whose proof came with the token request (from `Dpop::check_token_request` in
    /// `jwtgate-tower`). A resource server then accepts it only with a fresh proof of that key. Refuses custom
    /// claims with a `cnf` of their own.
    pub fn issue_bound<C: Serialize + ?Sized>(
        &self,
        subject: &str,
        claims: &C,
        jkt: &str,
    ) -> Result<Issued, ConfigError> {
        self.issue_with(subject, claims, Some(jkt))
    }

    fn issue_with<C: Serialize + ?Sized>(
        &self,
        subject: &str,
        claims: &C,
        jkt: Option<&str>,
    ) -> Result<Issued, ConfigError> {
        self.retire_due();
        let custom = match serde_json::to_value(claims) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(serde_json::Value::Null) => serde_json::Map::new(),
            Ok(_) => return Err(crate::issuer_error("custom claims must serialize to a JSON object".to_owned())),
            Err(err) => return Err(crate::issuer_error(format!("the custom claims do not serialize: {err}"))),
        };
        if let Some(name) = REGISTERED.iter().find(|name| custom.contains_key(**name)) {
            return Err(crate::issuer_error(format!("custom claims must not set the registered claim {name:?}")));
        }
        if jkt.is_some() && custom.contains_key("cnf") {
            return Err(crate::issuer_error("a DPoP-bound token's cnf is the issuer's to set".to_owned()));
        }
        let now = unix_now();
        let lifetime = self.inner.lifetime;
        let expires_at = now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        let jti = random_id()?;
        let full = FullClaims {
            iss: &self.inner.issuer,
            aud: &self.inner.audiences,
            sub: subject,
            iat: now,
            exp: expires_at,
            jti: &jti,
            jkt,
            custom: &custom,
        };
        let keys = self.inner.keys.load();
        let mut token = keys.current.sign("at+jwt", &full)?;
        if let Some(recipient) = &self.inner.encryption {
            // Sign, then encrypt: a nested token whose signature the recipient checks after decrypting.
            token = recipient.encrypt(&token)?;
        }
        Ok(Issued { token, jti, expires_at, lifetime })
    }

    /// Makes `key` sign from now on. The key that signed until now stays trusted, and published if it is
    /// asymmetric, until every token it signed has expired. Refuses a `kid` already in use.
    pub fn rotate(&self, key: SigningKey) -> Result<(), ConfigError> {
        let _writer = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = self.inner.keys.load();
        if keys.current.kid() == key.kid() || keys.previous.iter().any(|(old, _)| old.kid() == key.kid()) {
            return Err(crate::issuer_error(format!("the kid {:?} is already in use", key.kid())));
        }
        if self.inner.jwks.is_some() != key.public_jwk().is_some() {
            return Err(crate::issuer_error(
                "an issuer rotates between keys of one kind: HMAC secrets, or key pairs".to_owned(),
            ));
        }
        let retire_at = unix_now()
            .saturating_add(i64::try_from((self.inner.lifetime + self.inner.leeway).as_secs()).unwrap_or(i64::MAX));
        let previous =
            std::iter::once((keys.current.clone(), retire_at)).chain(keys.previous.iter().cloned()).collect();
        // Everything that can fail comes first: the published set and the trusted set change together.
        let public = key.public_jwk().cloned();
        let updated = Keys::new(key, previous)?;
        if let (Some(jwks), Some(public)) = (&self.inner.jwks, public) {
            jwks.rotate(public)?;
        }
        self.inner.keys.store(Arc::new(updated));
        self.inner.next_retirement.fetch_min(retire_at, Ordering::AcqRel);
        tracing::info!(kid = ?self.inner.keys.load().current.kid(), "jwtgate: signing key rotated");
        Ok(())
    }

    /// Retires the previous keys whose tokens have all expired. [`issue`](Self::issue) calls it when one is
    /// due; call it yourself if you issue rarely.
    pub fn retire_expired(&self) {
        let now = unix_now();
        let _writer = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let keys = self.inner.keys.load();
        let (expired, kept): (Vec<_>, Vec<_>) = keys.previous.iter().cloned().partition(|(_, at)| *at <= now);
        if expired.is_empty() {
            return;
        }
        let next = kept.iter().map(|(_, at)| *at).min().unwrap_or(i64::MAX);
        // Fewer keys than a set that was valid: this cannot fail, and if it did, nothing would change.
        let Ok(updated) = Keys::new(keys.current.clone(), kept) else { return };
        self.inner.keys.store(Arc::new(updated));
        for (key, _) in &expired {
            if let Some(jwks) = &self.inner.jwks {
                // Rotation published every previous key, so the publisher holds it.
                let _ = jwks.retire(key.kid());
            }
            tracing::info!(kid = ?key.kid(), "jwtgate: previous signing key retired");
        }
        self.inner.next_retirement.store(next, Ordering::Release);
    }

    fn retire_due(&self) {
        if self.inner.next_retirement.load(Ordering::Acquire) <= unix_now() {
            self.retire_expired();
        }
    }

    /// The publisher of the public keys in use (the current one first), to mount at your `jwks_uri`, for
    /// instance `Router::new().route_service("/.well-known/jwks.json", jwks)`. `None` for an HMAC issuer,
    /// whose secret is never published.
    pub fn jwks(&self) -> Option<JwksPublisher> {
        self.inner.jwks.clone()
    }

    /// The `kid` of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.inner.keys.load().current.kid().to_owned()
    }
}

impl KeySource for TokenIssuer {
    fn current(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        Ok(self.inner.keys.load().trusted.clone())
    }

    fn refresh_for(&self, _kid: &str) -> Option<PendingRefresh> {
        // The keys are all here: an unknown kid is not ours.
        None
    }
}

impl From<TokenIssuer> for TrustedKeys {
    fn from(issuer: TokenIssuer) -> Self {
        TrustedKeys::from_source(issuer)
    }
}

impl TokenIssuerBuilder {
    /// Adds an audience (`aud`). Call it again for several; tokens carry a string for one audience and an
    /// array for several.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The lifetime of access tokens. Default 15 minutes. More than an hour is refused unless
    /// [`allow_long_lifetime`](Self::allow_long_lifetime) is called: a stolen access token is good until it
    /// expires.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The clock leeway of the verifiers of these tokens: a previous key stays trusted and published for the
    /// token lifetime plus this long after a rotation. Default 30 s, jwtgate's default leeway.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Encrypts every token for `recipient` (a nested JWT: signed, then encrypted; RFC 7519 §5.2), for a
    /// resource server that decrypts with the private half of `recipient`'s key. The signature is still what
    /// the resource server trusts; encryption only keeps the claims from being read on the way. Default: not
    /// encrypted.
    pub fn encrypt_for(mut self, recipient: EncryptionKey) -> Self {
        self.encryption = Some(recipient);
        self
    }

    /// Allows lifetimes over an hour. Prefer short access tokens and refresh tokens.
    pub fn allow_long_lifetime(mut self) -> Self {
        self.allow_long = true;
        self
    }

    /// Builds the issuer. Refuses an empty issuer, no audience, a zero lifetime, and a lifetime over an hour
    /// without opt-in.
    pub fn build(self) -> Result<TokenIssuer, ConfigError> {
        if self.issuer.is_empty() {
            return Err(crate::issuer_error("the issuer must not be empty".to_owned()));
        }
        if self.audiences.is_empty() {
            return Err(crate::issuer_error("an issuer needs at least one audience".to_owned()));
        }
        if self.lifetime.as_secs() == 0 {
            return Err(crate::issuer_error("the access-token lifetime must be at least one second".to_owned()));
        }
        if self.lifetime > MAX_DEFAULT_LIFETIME && !self.allow_long {
            return Err(crate::issuer_error(format!(
                "an access-token lifetime of {} s is over an hour; call allow_long_lifetime() to allow it",
                self.lifetime.as_secs()
            )));
        }
        let jwks = self.key.public_jwk().map(|public| JwksPublisher::new(public.clone()));
        Ok(TokenIssuer {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audiences: self.audiences,
                lifetime: self.lifetime,
                leeway: self.leeway,
                keys: ArcSwap::from_pointee(Keys::new(self.key, Vec::new())?),
                jwks,
                encryption: self.encryption,
                next_retirement: AtomicI64::new(i64::MAX),
                writer: Mutex::new(()),
            }),
        })
    }
}

/// The claims of an access token: the registered ones, then the custom ones.
struct FullClaims<'a> {
    iss: &'a str,
    aud: &'a [String],
    sub: &'a str,
    iat: i64,
    exp: i64,
    jti: &'a str,
    /// `cnf.jkt`, for a DPoP-bound token.
    jkt: Option<&'a str>,
    custom: &'a serde_json::Map<String, serde_json::Value>,
}

impl Serialize for FullClaims<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(8 + self.custom.len()))?;
        map.serialize_entry("iss", self.iss)?;
        match self.aud {
            [one] => map.serialize_entry("aud", one)?,
            many => map.serialize_entry("aud", many)?,
        }
        map.serialize_entry("sub", self.sub)?;
        map.serialize_entry("iat", &self.iat)?;
        map.serialize_entry("nbf", &self.iat)?;
        map.serialize_entry("exp", &self.exp)?;
        map.serialize_entry("jti", self.jti)?;
        if let Some(jkt) = self.jkt {
            map.serialize_entry("cnf", &serde_json::json!({ "jkt": jkt }))?;
        }
        for (name, value) in self.custom {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// 128 random bits, base64url: a `jti`, or a refresh-token family's id.
pub(crate) fn random_id() -> Result<String, ConfigError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| crate::issuer_error("the system random generator failed".to_owned()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.inner.keys.load();
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.inner.audiences)
            .field("lifetime", &self.inner.lifetime)
            .field("current", &keys.current)
            .field("previous", &keys.previous.iter().map(|(key, _)| key.kid()).collect::<Vec<_>>())
            .finish()
    }
}
