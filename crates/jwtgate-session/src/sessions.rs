//! Logins, refreshes and logouts: access tokens from a [`TokenIssuer`], refresh tokens from a
//! [`RefreshStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jwtgate_core::Denylist;
use serde::Serialize;

use jwtgate_core::__private::unix_now;
use jwtgate_core::ConfigError;

use crate::issuer::{Issued, TokenIssuer, random_id};
use crate::refresh::{
    DEFAULT_REFRESH_LIFETIME, DEFAULT_SESSION_LIFETIME, RefreshStore, RefreshToken, Rotation, StoreError, after,
    new_record,
};

/// Issues and rotates token pairs: a short-lived access token and an opaque refresh token.
///
/// - [`login`](Self::login) starts a refresh-token family.
/// - [`refresh`](Self::refresh) exchanges a refresh token for a new pair in the same family, and marks the
///   old one used. Presenting a used token again is the signature of theft (RFC 9700 §4.14): the whole
///   family is revoked and the request denied.
/// - Access tokens carry `sid`, their family's id, so that [`logout`](Self::logout) can revoke the family
///   from the access token alone (the refresh cookie is scoped to the refresh route, and never sent to a
///   logout route), and the access token's `jti` through the denylist.
pub struct Sessions<S> {
    issuer: TokenIssuer,
    store: S,
    refresh_lifetime: Duration,
    session_lifetime: Duration,
    denylist: Option<Arc<dyn Denylist>>,
}

/// An access token and a refresh token, just issued.
#[derive(Clone, Debug)]
pub struct TokenPair {
    /// The access token.
    pub access: Issued,
    /// The refresh token.
    pub refresh: RefreshToken,
    /// How long the refresh token is valid: a cookie's `Max-Age`.
    pub refresh_lifetime: Duration,
}

/// Why a session operation failed.
#[derive(Debug)]
pub enum SessionError {
    /// The refresh token is unknown, expired, or of a revoked family. Answer 401.
    InvalidRefreshToken,
    /// The refresh token had been used already: its family is now revoked. Answer 401, and consider alerting.
    RefreshTokenReused,
    /// The refresh token is bound to a DPoP key (RFC 9449 §5), and the request came without a proof of that
    /// key: it is treated as theft, and its family is now revoked. Answer 401 (or 400 `invalid_dpop_proof`).
    ProofKeyMismatch,
    /// The store could not answer: nothing changed. Answer 503.
    Store(StoreError),
    /// The access token could not be issued. Answer 500.
    Issue(ConfigError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRefreshToken => f.write_str("the refresh token is invalid or expired"),
            Self::RefreshTokenReused => f.write_str("the refresh token was used already; its session is revoked"),
            Self::ProofKeyMismatch => f.write_str(
                "the refresh token is bound to a DPoP key the request did not prove; its session is revoked",
            ),
            Self::Store(err) => write!(f, "the session store is unavailable: {err}"),
            Self::Issue(err) => write!(f, "the access token could not be issued: {err}"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<StoreError> for SessionError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<ConfigError> for SessionError {
    fn from(err: ConfigError) -> Self {
        Self::Issue(err)
    }
}

impl<S: RefreshStore> Sessions<S> {
    /// Sessions whose access tokens `issuer` signs and whose refresh tokens `store` keeps, for 14 days.
    pub fn new(issuer: TokenIssuer, store: S) -> Self {
        Self {
            issuer,
            store,
            refresh_lifetime: DEFAULT_REFRESH_LIFETIME,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            denylist: None,
        }
    }

    /// How long a refresh token is valid, from its issue. Default 14 days.
    #[must_use]
    pub fn refresh_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_lifetime = lifetime;
        self
    }

    /// The longest a session lasts from its login, however often it is refreshed: a stolen refresh token
    /// cannot be kept alive for ever. Default 30 days.
    #[must_use]
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// Where [`logout`](Self::logout) revokes access tokens: the denylist your `JwtAuthLayer` consults.
    #[must_use]
    pub fn denylist(mut self, denylist: impl Denylist) -> Self {
        self.denylist = Some(Arc::new(denylist));
        self
    }

    /// The issuer of the access tokens.
    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// The refresh-token store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Starts a session for `user` (after you checked their credentials): a new family, and a token pair
    /// whose access token carries `claims`.
    pub async fn login<C: Serialize + ?Sized>(&self, user: &str, claims: &C) -> Result<TokenPair, SessionError> {
        self.login_with(user, claims, None).await
    }

    /// As [`login`](Self::login), for a client that sent a DPoP proof with its token request: the access token
    /// is bound to the proof's key (`cnf.jkt`, the `jkt` that `Dpop::check_token_request` answered), and so is
    /// the refresh token, which [`refresh_bound`](Self::refresh_bound) exchanges only with a proof of that key
    /// (RFC 9449 §5).
    pub async fn login_bound<C: Serialize + ?Sized>(
        &self,
        user: &str,
        claims: &C,
        jkt: &str,
    ) -> Result<TokenPair, SessionError> {
        self.login_with(user, claims, Some(jkt)).await
    }

    async fn login_with<C: Serialize + ?Sized>(
        &self,
        user: &str,
        claims: &C,
        jkt: Option<&str>,
    ) -> Result<TokenPair, SessionError> {
        let family = random_id()?;
        let access = self.issue(user, &WithSid { sid: &family, claims }, jkt)?;
        let (refresh, record) = new_record(user, &family, self.refresh_lifetime, after(self.session_lifetime), jkt)?;
        self.store.insert(record).await?;
        Ok(TokenPair { access, refresh, refresh_lifetime: self.refresh_lifetime.min(self.session_lifetime) })
    }

    /// Exchanges the refresh token `presented` for a new pair in its family. `claims` gives the access
    /// token's claims for the token's user (look their roles up again: they may have changed), or `None` when
    /// the user may no longer have a session (deleted, disabled): the family is then revoked, and the answer
    /// is [`SessionError::InvalidRefreshToken`].
    ///
    /// A refresh token bound to a DPoP key needs [`refresh_bound`](Self::refresh_bound) with a proof of that
    /// key: here it ends its session ([`SessionError::ProofKeyMismatch`]).
    pub async fn refresh<C, F>(&self, presented: &str, claims: F) -> Result<TokenPair, SessionError>
    where
        C: Serialize,
        F: FnOnce(&str) -> Option<C>,
    {
        self.refresh_bound(presented, None, claims).await
    }

    /// As [`refresh`](Self::refresh), for a request that came with a DPoP proof of the key `jkt` (from
    /// `Dpop::check_token_request`), or none. A refresh token bound to a key is exchanged only with a proof of
    /// that key (RFC 9449 §5); with another key or none, it is treated as stolen: its family is revoked and the
    /// answer is [`SessionError::ProofKeyMismatch`]. The new pair is bound to `jkt` when there is one.
    pub async fn refresh_bound<C, F>(
        &self,
        presented: &str,
        jkt: Option<&str>,
        claims: F,
    ) -> Result<TokenPair, SessionError>
    where
        C: Serialize,
        F: FnOnce(&str) -> Option<C>,
    {
        // The family, user and session end are the store's to fill in: those of the presented token.
        let (refresh, next) = new_record("", "", self.refresh_lifetime, i64::MAX, jkt)?;
        match self.store.rotate(RefreshToken::hash(presented), next, unix_now()).await? {
            Rotation::Rotated { previous } => {
                if previous.jkt.as_deref().is_some_and(|bound| Some(bound) != jkt) {
                    self.store.revoke_family(&previous.family, previous.session_expires_at).await?;
                    tracing::warn!(
                        family = ?previous.family,
                        "jwtgate: a DPoP-bound refresh token came without a proof of its key; its family is revoked"
                    );
                    return Err(SessionError::ProofKeyMismatch);
                }
                let Some(custom) = claims(&previous.user) else {
                    self.store.revoke_family(&previous.family, previous.session_expires_at).await?;
                    return Err(SessionError::InvalidRefreshToken);
                };
                let access = self.issue(&previous.user, &WithSid { sid: &previous.family, claims: &custom }, jkt)?;
                // The new token ends with the session at the latest: so does its cookie.
                let left = u64::try_from(previous.session_expires_at.saturating_sub(unix_now())).unwrap_or(0);
                let refresh_lifetime = self.refresh_lifetime.min(Duration::from_secs(left));
                Ok(TokenPair { access, refresh, refresh_lifetime })
            }
            Rotation::Invalid => Err(SessionError::InvalidRefreshToken),
            Rotation::Reused { family } => {
                tracing::warn!(family = ?family, "jwtgate: a used refresh token was presented again; its family is revoked");
                Err(SessionError::RefreshTokenReused)
            }
        }
    }

    fn issue<C: Serialize + ?Sized>(&self, user: &str, claims: &C, jkt: Option<&str>) -> Result<Issued, ConfigError> {
        match jkt {
            Some(jkt) => self.issuer.issue_bound(user, claims, jkt),
            None => self.issuer.issue(user, claims),
        }
    }

    /// Ends the session `sid` (the access token's `sid` claim): revokes its refresh-token family, and the
    /// access token with id `jti` until its `expires_at` (if given) plus the issuer's
    /// [`leeway`](TokenIssuer::leeway), through the denylist: a verifier accepts the token that long past its
    /// `exp`.
    pub async fn logout(&self, sid: &str, access: Option<(&str, i64)>) -> Result<(), SessionError> {
        // No token of the family outlives the session's longest life from now.
        self.store.revoke_family(sid, after(self.session_lifetime)).await?;
        if let (Some((jti, expires_at)), Some(denylist)) = (access, &self.denylist) {
            denylist
                .revoke(
                    jti,
                    expires_at.saturating_add(i64::try_from(self.issuer.leeway().as_secs()).unwrap_or(i64::MAX)),
                )
                .await
                .map_err(|err| SessionError::Store(StoreError(err.to_string())))?;
        }
        Ok(())
    }

    /// Ends the session of the refresh token `presented`, if the store knows it: revokes its family.
    pub async fn logout_refresh_token(&self, presented: &str) -> Result<(), SessionError> {
        if let Some(record) = self.store.find(RefreshToken::hash(presented)).await? {
            self.store.revoke_family(&record.family, record.session_expires_at).await?;
        }
        Ok(())
    }
}

/// The custom claims with `sid`, the session (refresh-token family) the access token belongs to.
struct WithSid<'a, C: ?Sized> {
    sid: &'a str,
    claims: &'a C,
}

impl<C: Serialize + ?Sized> Serialize for WithSid<'_, C> {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let custom = match serde_json::to_value(self.claims).map_err(Z::Error::custom)? {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => return Err(Z::Error::custom("custom claims must serialize to a JSON object")),
        };
        if custom.contains_key("sid") {
            return Err(Z::Error::custom("custom claims must not set \"sid\": the session sets it"));
        }
        let mut map = serializer.serialize_map(Some(custom.len() + 1))?;
        map.serialize_entry("sid", self.sid)?;
        for (name, value) in &custom {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<S: fmt::Debug> fmt::Debug for Sessions<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("issuer", &self.issuer)
            .field("store", &self.store)
            .field("refresh_lifetime", &self.refresh_lifetime)
            .field("session_lifetime", &self.session_lifetime)
            .field("denylist", &self.denylist.is_some())
            .finish()
    }
}
