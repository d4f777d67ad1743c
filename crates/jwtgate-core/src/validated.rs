//! What a validation answers: a validated token, or a wait for keys first.

use std::fmt;
use std::sync::Arc;

use crate::claims::RegisteredClaims;
use crate::source::{KeyOrigin, PendingRefresh};
use crate::{Algorithm, Error, Principal};

/// The answer of [`Validator::validate_or_wait`](crate::Validator::validate_or_wait): an answer now, or a wait for keys first.
pub enum Attempt<C> {
    /// The token was validated, or refused, with the keys at hand.
    Done(Result<Validated<C>, Error>),
    /// The token names a `kid` that the key source lacks, or the source has no keys yet, and the source is
    /// fetching. Once this resolves, call [`Validator::after_refresh`](crate::Validator::after_refresh) with its outcome for the answer.
    WaitForKeys(PendingRefresh),
}

impl<C: fmt::Debug> fmt::Debug for Attempt<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Done(result) => f.debug_tuple("Done").field(result).finish(),
            Self::WaitForKeys(_) => f.write_str("WaitForKeys(..)"),
        }
    }
}

/// A validated token: its custom claims `C`, its registered claims, and the key that verified it; or, for an
/// opaque token, what the authorization server's introspection endpoint said about it.
#[derive(Clone, Debug)]
pub struct Validated<C> {
    pub(crate) claims: C,
    /// `None` for an introspected token.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) kid: Option<Arc<str>>,
    pub(crate) origin: Option<KeyOrigin>,
    pub(crate) valid_until: Option<i64>,
    pub(crate) principal: Arc<Principal>,
}

impl<C> Validated<C> {
    /// The caller's authorities, read once by the validator's [`AuthorityMapping`](crate::AuthorityMapping).
    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// The custom claims.
    pub fn claims(&self) -> &C {
        &self.claims
    }

    /// Takes the custom claims.
    pub fn into_claims(self) -> C {
        self.claims
    }

    /// The registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`).
    pub fn registered(&self) -> &RegisteredClaims {
        self.principal.registered()
    }

    /// The algorithm the token was signed with; `None` for a token the authorization server vouched for by
    /// introspection (RFC 7662), which jwtgate did not verify itself.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// Whether the token was introspected (RFC 7662) rather than validated as a JWT: its claims are the
    /// introspection endpoint's answer.
    pub fn is_introspected(&self) -> bool {
        self.alg.is_none()
    }

    /// The id of the key that verified the token, if that key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Until when the token stays valid, in seconds since the Unix epoch, leeway aside: its `exp`, or the
    /// end of the validator's maximum age when that comes first. `None` for a token with neither, which a
    /// cache must not keep.
    pub fn valid_until(&self) -> Option<i64> {
        self.valid_until
    }

    /// Whether the keys that decided the token are still the ones its validator trusts. A token that names
    /// a fixed key by `kid`, or a validator without a [`KeySource`](crate::KeySource), stays current for
    /// good. Otherwise the source's key set decided (it held the key, or held none that competed with a
    /// fixed one), and the token stays current while the source answers with the same key set; any change
    /// (a rotation, a key removed or added, no keys available) ends it. A cache of validated tokens asks
    /// this on every hit.
    pub fn keys_current(&self) -> bool {
        self.origin.as_ref().is_none_or(KeyOrigin::is_current)
    }
}
