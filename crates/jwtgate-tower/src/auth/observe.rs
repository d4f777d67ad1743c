//! What the layer tells the outside about each request: its log lines, the `authenticate` span (one per
//! request, at debug level), and with the `metrics` feature, counters and a histogram through the `metrics`
//! facade. The rest of the layer logs, records and counts nothing itself.
//!
//! Metric names:
//! - `jwtgate_requests_total`, a counter labelled `outcome` (`authenticated`, `anonymous`, `refused`,
//!   `fail_open`) and `reason` (for `refused`: [`ErrorKind::name`](jwtgate_core::ErrorKind::name), such as
//!   `expired`; otherwise empty);
//! - `jwtgate_validation_seconds`, a histogram of the time a token's validation took (signature, parse,
//!   checks; not the denylist);
//! - `jwtgate_cache_lookups_total`, a counter labelled `result` (`hit`, `miss`), for a layer with a cache;
//! - `jwtgate_denylist_errors_total`, a counter of lookups the denylist could not answer.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use jwtgate_core::{Algorithm, ConfigError, DenylistError, Error, Key, Secret, Validated};
use tracing::Span;
use tracing::field::Empty;

/// What the `authenticate` span says about a token's subject (`sub`). A subject is often an email address
/// or a user id, so the default ([`SubjectInLogs::omitted`]) says nothing.
#[derive(Clone, Default)]
pub struct SubjectInLogs {
    key: Option<Arc<hmac::Key>>,
}

impl SubjectInLogs {
    /// The span has no `sub` field. The default.
    pub fn omitted() -> Self {
        Self::default()
    }

    /// The span's `sub` is the first 16 hex digits of HMAC-SHA256 over the subject, under `key`: the same
    /// subject gives the same value under the same key, so one user's requests can be followed across log
    /// lines (and across instances sharing the key) without naming the user. Keep the key secret, since
    /// whoever holds it can test a guess, and make it a key of its own, not a signing secret.
    ///
    /// Refuses a key shorter than 32 bytes, as [`Key::hmac`] refuses one for HS256.
    pub fn hashed(key: &Secret) -> Result<Self, ConfigError> {
        Key::hmac(Algorithm::HS256, key)?;
        Ok(Self { key: Some(Arc::new(hmac::Key::new(hmac::HMAC_SHA256, key.expose()))) })
    }

    /// The value the span records for `subject`, if any.
    fn of(&self, subject: &str) -> Option<String> {
        let tag = hmac::sign(self.key.as_deref()?, subject.as_bytes());
        Some(tag.as_ref()[..8].iter().map(|byte| format!("{byte:02x}")).collect())
    }
}

impl fmt::Debug for SubjectInLogs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.key.is_some() { "SubjectInLogs::Hashed" } else { "SubjectInLogs::Omitted" })
    }
}

/// How a request the layer decided ends, for the span's `outcome` and the request counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// A valid token; the inner service is called.
    Authenticated,
    /// No token, in optional mode.
    Anonymous,
    /// The denylist could not answer, and the layer fails open.
    FailOpen,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::Anonymous => "anonymous",
            Self::FailOpen => "fail_open",
        }
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

/// Records the decision for a request that goes on. Refusals go through [`refused`].
pub(super) fn outcome(span: &Span, outcome: Outcome) {
    if !span.is_disabled() {
        span.record("outcome", outcome.name());
    }
    #[cfg(feature = "metrics")]
    match outcome {
        Outcome::Authenticated => count!("jwtgate_requests_total", "outcome" => "authenticated", "reason" => ""),
        Outcome::Anonymous => count!("jwtgate_requests_total", "outcome" => "anonymous", "reason" => ""),
        Outcome::FailOpen => count!("jwtgate_requests_total", "outcome" => "fail_open", "reason" => ""),
    }
}

/// Records a refusal and its reason, the [`ErrorKind`](jwtgate_core::ErrorKind)'s name, such as `expired`.
pub(super) fn refused(span: &Span, error: &Error) {
    let reason = error.kind().name();
    if !span.is_disabled() {
        span.record("outcome", "refused");
        span.record("reason", reason);
    }
    #[cfg(feature = "metrics")]
    count_refused(reason);
}

/// Increments a counter whose name and labels are literals: the `metrics` macros then build its key once, in
/// a static, where labels from variables would allocate a vector on every request.
#[cfg(feature = "metrics")]
macro_rules! count {
    ($($key:tt)*) => {
        metrics::counter!($($key)*).increment(1)
    };
}
#[cfg(feature = "metrics")]
use count;

/// `jwtgate_requests_total{outcome="refused"}`, with the reason as a label. The keys, one per
/// [`ErrorKind::NAMES`](jwtgate_core::ErrorKind::NAMES), are built once: a key built per call would allocate.
#[cfg(feature = "metrics")]
fn count_refused(reason: &'static str) {
    use std::sync::OnceLock;

    use metrics::{Key, Label, Level, Metadata};
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
    let keys = KEYS.get_or_init(|| {
        let labels = |reason| vec![Label::new("outcome", "refused"), Label::new("reason", reason)];
        let names = jwtgate_core::ErrorKind::NAMES.iter();
        names.map(|reason| Key::from_parts("jwtgate_requests_total", labels(*reason))).collect()
    });
    // Every kind's name is in `ErrorKind::NAMES`, which the same table in jwtgate-core generates.
    let position = jwtgate_core::ErrorKind::NAMES.iter().position(|name| *name == reason);
    if let Some(key) = position.and_then(|position| keys.get(position)) {
        metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA).increment(1));
    }
}

/// Logs why a token was refused, with its `kid`, at debug level, inside the current span. The token itself
/// is never logged; its `kid` is read (unverified, truncated) only when debug logging is on.
pub(super) fn not_authenticated(error: &Error, token: Option<&str>) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let kid = token.and_then(jwtgate_core::__private::unverified_kid);
        tracing::debug!(kind = ?error.kind(), kid = ?kid, "jwtgate: request not authenticated");
    }
}

/// Logs a revoked token, with its `kid`, at debug level.
pub(super) fn revoked(span: &Span, kid: Option<&str>) {
    let kind = jwtgate_core::ErrorKind::Revoked;
    within(span, || tracing::debug!(kind = ?kind, kid = ?kid, "jwtgate: request not authenticated"));
}

/// Counts a denylist that could not answer, and warns that the token goes through unchecked.
pub(super) fn denylist_failed_open(span: &Span, error: &DenylistError, kid: Option<&str>) {
    denylist_error();
    within(
        span,
        || tracing::warn!(%error, kid = ?kid, "jwtgate: denylist unavailable; FAIL-OPEN: letting the token through unchecked"),
    );
}

/// Counts a denylist that could not answer, and warns that the request is refused.
pub(super) fn denylist_failed_closed(span: &Span, error: &DenylistError) {
    denylist_error();
    within(span, || tracing::warn!(%error, "jwtgate: denylist unavailable; refusing the request with 503"));
}

/// Logs a DPoP replay store that could not answer: the request is refused with 503.
pub(super) fn replay_failed(span: &Span, error: &jwtgate_core::ReplayError) {
    within(span, || tracing::warn!(%error, "jwtgate: DPoP replay store unavailable; refusing the request with 503"));
}

/// Logs the `on_token_validated` hook's refusal, at debug level.
pub(super) fn hook_refused(span: &Span, error: &Error) {
    let kind = error.kind();
    within(span, || tracing::debug!(?kind, "jwtgate: the on_token_validated hook refused the request"));
}

/// Times a validation, with the `metrics` feature, when `finished` says it came to an answer (one that waits
/// for a key refresh is timed when it is checked again); does nothing without the feature.
pub(super) fn timed<T>(validate: impl FnOnce() -> T, finished: impl FnOnce(&T) -> bool) -> T {
    #[cfg(feature = "metrics")]
    {
        let started = std::time::Instant::now();
        let result = validate();
        if finished(&result) {
            metrics::histogram!("jwtgate_validation_seconds").record(started.elapsed().as_secs_f64());
        }
        result
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = finished;
        validate()
    }
}

/// Counts a lookup in the layer's cache of validated tokens.
pub(super) fn cache_lookup(hit: bool) {
    #[cfg(feature = "metrics")]
    if hit {
        count!("jwtgate_cache_lookups_total", "result" => "hit");
    } else {
        count!("jwtgate_cache_lookups_total", "result" => "miss");
    }
    #[cfg(not(feature = "metrics"))]
    let _ = hit;
}

/// Counts a denylist lookup that failed.
fn denylist_error() {
    #[cfg(feature = "metrics")]
    count!("jwtgate_denylist_errors_total");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_subject_is_16_hex_digits_stable_under_one_key() {
        let one = SubjectInLogs::hashed(&Secret::new(vec![1; 32])).unwrap();
        let other = SubjectInLogs::hashed(&Secret::new(vec![2; 32])).unwrap();
        let hash = one.of("alice@example.com").unwrap();
        assert_eq!(hash.len(), 16);
        assert!(hash.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_eq!(one.of("alice@example.com"), Some(hash.clone()));
        assert_ne!(one.of("bob@example.com"), Some(hash.clone()));
        assert_ne!(other.of("alice@example.com"), Some(hash));
        assert_eq!(SubjectInLogs::omitted().of("alice@example.com"), None);
        assert_eq!(format!("{one:?}"), "SubjectInLogs::Hashed");
    }

    #[test]
    fn a_short_key_for_hashing_subjects_is_refused() {
        let err = SubjectInLogs::hashed(&Secret::new(vec![1; 31])).unwrap_err();
        assert_eq!(err.to_string(), "HMAC secret is 31 bytes; HS256 requires at least 32");
    }
}
