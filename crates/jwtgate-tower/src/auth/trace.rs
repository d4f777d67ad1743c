//! The `authenticate` span: one per request, at debug level, with what the authentication decided.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use jwtgate_core::{Error, Secret, Validated};
use tracing::Span;
use tracing::field::{Empty, debug};

/// What the `authenticate` span says about a token's subject (`sub`). A subject is often an email address
/// or a user id, so the default says nothing.
#[derive(Clone, Default)]
pub enum SubjectInLogs {
    /// The span has no `sub` field. The default.
    #[default]
    Omitted,
    /// The span's `sub` is the first 16 hex digits of HMAC-SHA256 over the subject, with a key of yours:
    /// the same subject gives the same value under the same key, so one user's requests can be followed
    /// across log lines (and across instances sharing the key) without naming the user. Keep the key secret:
    /// whoever holds it can test a guess.
    Hashed(Arc<hmac::Key>),
}

impl SubjectInLogs {
    /// Hashes subjects with `key` (see [`SubjectInLogs::Hashed`]). Give every instance of a service the same
    /// key to follow a user across them; it need not be the key that signs tokens, and should not be.
    pub fn hashed(key: &Secret) -> Self {
        Self::Hashed(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, key.expose())))
    }

    /// The value the span records for `subject`, if any.
    fn of(&self, subject: &str) -> Option<String> {
        match self {
            Self::Omitted => None,
            Self::Hashed(key) => {
                let tag = hmac::sign(key, subject.as_bytes());
                Some(tag.as_ref()[..8].iter().map(|byte| format!("{byte:02x}")).collect())
            }
        }
    }
}

impl fmt::Debug for SubjectInLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Omitted => "Omitted",
            Self::Hashed(_) => "Hashed",
        })
    }
}

/// A new `authenticate` span, its fields recorded as the authentication goes. It never holds the token.
///
/// When nothing listens at debug level, it is `Span::none()`, which costs nothing to carry, enter, record
/// into or drop (a disabled span built by the macro would still pay for `log` compatibility on each).
pub(super) fn span() -> Span {
    if !tracing::enabled!(target: "jwtgate", tracing::Level::DEBUG) {
        return Span::none();
    }
    tracing::debug_span!(
        target: "jwtgate",
        "authenticate",
        outcome = Empty,
        reason = Empty,
        kid = Empty,
        iss = Empty,
        sub = Empty,
    )
}

/// Runs `f` inside `span`.
pub(super) fn within<T>(span: &Span, f: impl FnOnce() -> T) -> T {
    if span.is_disabled() { f() } else { span.in_scope(f) }
}

/// Records what a validated token says about itself: its `kid`, `iss`, and `sub` as the layer was told.
pub(super) fn validated<C>(span: &Span, validated: &Validated<C>, subject: &SubjectInLogs) {
    if span.is_disabled() {
        return;
    }
    if let Some(kid) = validated.kid() {
        span.record("kid", kid);
    }
    if let Some(iss) = validated.registered().issuer() {
        span.record("iss", iss);
    }
    if let Some(sub) = validated.registered().subject().and_then(|sub| subject.of(sub)) {
        span.record("sub", sub);
    }
}

/// Records the decision: `authenticated`, `anonymous`, `refused` (with the reason), or `fail_open`.
pub(super) fn outcome(span: &Span, outcome: &'static str) {
    if !span.is_disabled() {
        span.record("outcome", outcome);
    }
}

/// Records a refusal and its reason: the [`ErrorKind`](jwtgate_core::ErrorKind), such as `Expired`.
pub(super) fn refused(span: &Span, error: &Error) {
    if !span.is_disabled() {
        span.record("outcome", "refused");
        span.record("reason", debug(error.kind()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_subject_is_16_hex_digits_stable_under_one_key() {
        let one = SubjectInLogs::hashed(&Secret::new(vec![1; 32]));
        let other = SubjectInLogs::hashed(&Secret::new(vec![2; 32]));
        let hash = one.of("alice@example.com").unwrap();
        assert_eq!(hash.len(), 16);
        assert!(hash.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_eq!(one.of("alice@example.com"), Some(hash.clone()));
        assert_ne!(one.of("bob@example.com"), Some(hash.clone()));
        assert_ne!(other.of("alice@example.com"), Some(hash));
        assert_eq!(SubjectInLogs::Omitted.of("alice@example.com"), None);
        assert_eq!(format!("{one:?}"), "Hashed");
    }
}
