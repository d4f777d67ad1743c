//! The revocation hook: the layer asks a [`Denylist`] about every validated token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::RegisteredClaims;

/// Whether a validated token is still good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenStatus {
    /// Not revoked.
    Active,
    /// Revoked: the request is refused with 401 `invalid_token`.
    Revoked,
}

/// A denylist lookup that has not finished.
pub type PendingLookup = Pin<Box<dyn Future<Output = Result<TokenStatus, DenylistError>> + Send + 'static>>;

/// A revocation that has not finished. It resolves to `Ok(())` once the revocation is stored.
pub type PendingRevocation = Pin<Box<dyn Future<Output = Result<(), DenylistError>> + Send + 'static>>;

/// The answer of [`Denylist::check`]: at once, or later.
///
/// An in-memory denylist answers [`Lookup::Ready`], and the layer then boxes nothing. A networked store
/// answers [`Lookup::Pending`] with the future of its round trip.
pub enum Lookup {
    /// The answer is known now.
    Ready(Result<TokenStatus, DenylistError>),
    /// The answer comes from this future.
    Pending(PendingLookup),
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(result) => f.debug_tuple("Ready").field(result).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// Revocation of tokens that are otherwise valid.
///
/// `JwtAuthLayer` calls [`check`](Denylist::check) for every token that passed validation, with its
/// registered claims (`jti`, `sub`, `iat`, `exp`). An error means the store could not answer; the layer then
/// refuses the request with 503 rather than let an unchecked token through.
pub trait Denylist: Send + Sync + 'static {
    /// Looks the token up: revoked by its `jti`, or by a cutoff for its `sub`.
    fn check(&self, claims: &RegisteredClaims) -> Lookup;

    /// Revokes the token with id `jti` until `until` (seconds since the Unix epoch). Pass the token's `exp`
    /// plus the validator's leeway: after that the token is refused as expired anyway. A revocation that
    /// cannot be stored is an error, never silently dropped.
    fn revoke(&self, jti: &str, until: i64) -> PendingRevocation;

    /// Revokes every token of `subject` issued before `issued_before` (its `iat`; tokens of that subject
    /// without `iat` are refused too), until `until`: "log out everywhere", or a password change. Pass an
    /// `until` at least as late as the last such token's `exp` plus the leeway.
    fn revoke_subject(&self, subject: &str, issued_before: i64, until: i64) -> PendingRevocation;
}

impl<D: Denylist + ?Sized> Denylist for Arc<D> {
    fn check(&self, claims: &RegisteredClaims) -> Lookup {
        (**self).check(claims)
    }

    fn revoke(&self, jti: &str, until: i64) -> PendingRevocation {
        (**self).revoke(jti, until)
    }

    fn revoke_subject(&self, subject: &str, issued_before: i64, until: i64) -> PendingRevocation {
        (**self).revoke_subject(subject, issued_before, until)
    }
}

/// The default denylist: nothing is revoked. Revoking fails, since the revocation would be lost.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDenylist;

impl Denylist for NoDenylist {
    fn check(&self, _claims: &RegisteredClaims) -> Lookup {
        Lookup::Ready(Ok(TokenStatus::Active))
    }

    fn revoke(&self, _jti: &str, _until: i64) -> PendingRevocation {
        Box::pin(std::future::ready(Err(DenylistError::new("no denylist is configured"))))
    }

    fn revoke_subject(&self, _subject: &str, _issued_before: i64, _until: i64) -> PendingRevocation {
        Box::pin(std::future::ready(Err(DenylistError::new("no denylist is configured"))))
    }
}

/// A denylist could not answer: the store is unreachable, or too slow.
///
/// Its text is for logs. Responses only ever say that the revocation list is unavailable.
#[derive(Debug)]
pub struct DenylistError {
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl DenylistError {
    /// Wraps the store's own error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { source: source.into() }
    }
}

impl fmt::Display for DenylistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "denylist unavailable: {}", self.source)
    }
}

impl std::error::Error for DenylistError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
