//! The introspector: the endpoint, the answers' cache, the calls under way.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use futures_util::FutureExt;
use futures_util::future::Shared;
use jwtgate_core::__private::unix_now;
use jwtgate_core::{
    ActiveAnswer, AnswerError, AnswerRules, ConfigError, ConfigErrorKind, DEFAULT_MAX_TOKEN_BYTES, Error, ErrorKind,
    Introspect, Introspection, Secret, SigningKey, Validated,
};
use jwtgate_jwks::__private::{Shown, parse_endpoint};
use quick_cache::sync::Cache;
use reqwest::{Client, Url};
use serde::de::DeserializeOwned;

use crate::call::{self, Credentials, Failure};

/// The default bound on a call: connecting, sending, and reading the whole answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an active answer is reused by default, never past the token's `exp`.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(30);
/// How many active answers are kept by default.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// How long a refusal (an inactive token, or an answer whose claims fail a check) is reused by default.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// How many refusals are kept by default, apart from the active answers so that a flood of garbage tokens
/// cannot push good answers out.
pub const DEFAULT_NEGATIVE_CAPACITY: usize = 1_000;
/// How many calls to the endpoint may be under way at once by default; a token that would need one more is
/// answered 503.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 256;

/// The answer about one token, as the layer takes it.
type Answer<C> = Result<Arc<Validated<C>>, Error>;
/// A call under way, which every request with the same token awaits.
type SharedCall<C> = Shared<Pin<Box<dyn Future<Output = Answer<C>> + Send>>>;
/// A token's place in the caches: SHA-256 of the token after a secret block made for this process.
type Digest = [u8; 32];

/// Opaque tokens, validated by asking the authorization server's introspection endpoint (RFC 7662), with a
/// cache of its answers. Give it to `JwtAuthLayer::introspection` (beside JWTs) or
/// `JwtAuthLayer::introspected` (opaque tokens only).
///
/// For each token it:
/// 1. refuses a token longer than the size limit (8 KiB by default) without a call;
/// 2. reuses a cached answer: an active one for at most the cache TTL and never past the token's `exp`, a
///    refusal for at most the negative TTL;
/// 3. otherwise POSTs `token` and `token_type_hint=access_token` as a form, with the client's credentials, and
///    waits at most the timeout (2 s) for the whole answer. Concurrent requests with the same token share
///    that one call;
/// 4. reads the answer strictly ([`ActiveAnswer::read`]): only `"active": true` is active, and a body that
///    is not a JSON object is a failure, never an inactive token;
/// 5. checks the active answer's claims with its [`AnswerRules`] (`exp`, `nbf`, `iat` with the leeway; `iss`;
///    `aud`), and deserializes `C` from it. `scope` and `roles` become the principal's authorities, so guards
///    work unchanged; `client_id`, `username` and `token_type` are read with `Principal::claim`.
///
/// A call that fails (no connection, a timeout, a status other than 200 (a redirect included), a body that is
/// not a JSON object) refuses the request with 503 and `Retry-After`
/// ([`ErrorKind::IntrospectionUnavailable`]), never 401 and never 200: fail-open is not offered. Tokens with an
/// answer still cached go on being served, and JWTs are never slowed by a failing endpoint.
///
/// The calls run as tasks on the Tokio runtime of the request, which must have its time and I/O drivers
/// (`#[tokio::main]` and axum's defaults have both); without a runtime, a token that needs a call gets 503.
///
/// The cache is keyed by a SHA-256 of the token under a secret made for this process: the token itself is not
/// kept. A revocation at the authorization server takes effect once the answer's TTL is over; for at once,
/// call [`purge`](Self::purge) from the server's back-channel, or set a denylist on the layer, which is asked
/// about every token, cached or not.
pub struct Introspector<C> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    endpoint: Url,
    client: Client,
    credentials: Credentials,
    rules: AnswerRules,
    timeout: Duration,
    max_token_bytes: usize,
    cache_ttl: i64,
    cache_without_exp: bool,
    negative_ttl: i64,
    answers: Cache<Digest, Active<C>>,
    refusals: Cache<Digest, Refusal>,
    /// SHA-256 that has absorbed one block of 64 random bytes: the key of the caches' hash (see `digest`).
    keyed: digest::Context,
    /// The calls under way, by token, in shards chosen by the digest: requests with different tokens seldom
    /// meet on a lock, and no lock is taken on a cache hit.
    in_flight: [Mutex<HashMap<Digest, Call<C>>>; IN_FLIGHT_SHARDS],
    /// How many calls are under way, in all shards.
    calls: AtomicUsize,
    max_calls: usize,
    /// The ids of calls, so that a call leaves `in_flight` only if it is still there, not a newer one.
    next_call: AtomicU64,
    /// Bumped by every purge: a call that started before it does not cache its answer, which may be older than
    /// the revocation the purge is for. Read and bumped under the token's shard lock.
    purges: AtomicU64,
}

/// A call under way: its id, and its answer, which every request with the same token awaits.
struct Call<C> {
    id: u64,
    answer: SharedCall<C>,
}

const IN_FLIGHT_SHARDS: usize = 16;

struct Active<C> {
    validated: Arc<Validated<C>>,
    until: i64,
}

impl<C> Clone for Active<C> {
    fn clone(&self) -> Self {
        Self { validated: self.validated.clone(), until: self.until }
    }
}

#[derive(Clone, Copy)]
struct Refusal {
    error: Error,
    until: i64,
}

/// Configures an [`Introspector`].
#[must_use]
pub struct IntrospectorBuilder<C> {
    endpoint: String,
    credentials: Result<Credentials, ConfigError>,
    rules: AnswerRules,
    timeout: Duration,
    max_token_bytes: usize,
    cache_ttl: Duration,
    capacity: usize,
    cache_without_exp: bool,
    negative_ttl: Duration,
    negative_capacity: usize,
    max_calls: usize,
    assertion_audience: Option<String>,
    claims: PhantomData<fn() -> C>,
}

impl<C> Introspector<C> {
    /// Starts an introspector of the endpoint at `endpoint` (https, or plain http to a loopback address),
    /// with no client authentication, [`AnswerRules::new`], and the defaults: 2 s per call, active answers
    /// reused for 30 s (never past `exp`; not at all without `exp`), 10,000 of them, refusals for 5 s, 1,000
    /// of them, 256 calls at once, tokens of at most 8 KiB.
    pub fn builder(endpoint: impl Into<String>) -> IntrospectorBuilder<C> {
        IntrospectorBuilder {
            endpoint: endpoint.into(),
            credentials: Ok(Credentials::None),
            rules: AnswerRules::new(),
            timeout: DEFAULT_TIMEOUT,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            cache_ttl: DEFAULT_CACHE_TTL,
            capacity: DEFAULT_CAPACITY,
            cache_without_exp: false,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            negative_capacity: DEFAULT_NEGATIVE_CAPACITY,
            max_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            assertion_audience: None,
            claims: PhantomData,
        }
    }

    /// Forgets what is known about `token`, active or not: its next use asks the endpoint anew. A call about it
    /// already under way still answers the requests that were waiting for it, but its answer is not cached, and
    /// later requests do not join it. For an authorization server's back-channel that says a token was revoked.
    pub fn purge(&self, token: &str) {
        let inner = &self.inner;
        let digest = inner.digest(token);
        let mut in_flight = inner.shard(&digest).lock().unwrap_or_else(PoisonError::into_inner);
        inner.purges.fetch_add(1, Ordering::AcqRel);
        inner.answers.remove(&digest);
        inner.refusals.remove(&digest);
        in_flight.remove(&digest);
    }

    /// Forgets every cached answer, and every call under way, as [`purge`](Self::purge) does for one token.
    pub fn purge_all(&self) {
        let inner = &self.inner;
        let mut shards: Vec<_> =
            inner.in_flight.iter().map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner)).collect();
        inner.purges.fetch_add(1, Ordering::AcqRel);
        inner.answers.clear();
        inner.refusals.clear();
        shards.iter_mut().for_each(|shard| shard.clear());
    }

    /// How many active answers, and how many refusals, are cached.
    pub fn cached(&self) -> (usize, usize) {
        (self.inner.answers.len(), self.inner.refusals.len())
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }
}

impl<C: DeserializeOwned + Send + Sync + 'static> Introspect<C> for Introspector<C> {
    fn introspect(&self, token: &str) -> Introspection<C> {
        let inner = &self.inner;
        if token.len() > inner.max_token_bytes {
            return Introspection::Ready(Err(ErrorKind::TooLarge.into()));
        }
        let digest = inner.digest(token);
        if let Some(answer) = inner.cached(&digest, unix_now()) {
            return Introspection::Ready(answer);
        }
        let mut in_flight = inner.shard(&digest).lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(call) = in_flight.get(&digest) {
            observe::cache("shared");
            return Introspection::Pending(Box::pin(call.answer.clone()));
        }
        // A call may have ended, its answer cached, between the look above and this lock.
        if let Some(answer) = inner.cached(&digest, unix_now()) {
            return Introspection::Ready(answer);
        }
        observe::cache("miss");
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("jwtgate: token introspection needs a Tokio runtime; refusing with 503");
            observe::not_called();
            return Introspection::Ready(Err(ErrorKind::IntrospectionUnavailable.into()));
        };
        if inner.calls.fetch_add(1, Ordering::AcqRel) >= inner.max_calls {
            inner.calls.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(max = inner.max_calls, "jwtgate: too many introspection calls under way; refusing with 503");
            observe::not_called();
            return Introspection::Ready(Err(ErrorKind::IntrospectionUnavailable.into()));
        }
        // The call runs as a task of its own: it ends and is cached even when every request that awaits it goes
        // away. It is in `in_flight` before it is spawned, and `Leave`, which the task owns, takes it out however
        // the task ends: answered, panicked, or dropped unpolled by a runtime that shuts down.
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let call: Pin<Box<dyn Future<Output = Answer<C>> + Send>> =
            Box::pin(async move { receiver.await.unwrap_or_else(|_| Err(ErrorKind::IntrospectionUnavailable.into())) });
        let call = call.shared();
        let id = inner.next_call.fetch_add(1, Ordering::Relaxed);
        let purges = inner.purges.load(Ordering::Acquire);
        in_flight.insert(digest, Call { id, answer: call.clone() });
        drop(in_flight);
        let leave = Leave { inner: inner.clone(), digest, id };
        let token = token.to_owned();
        runtime.spawn(async move {
            let answer = leave.inner.call(token, digest, purges).await;
            // No one may be waiting any more; the answer is cached all the same.
            let _ = sender.send(answer);
        });
        Introspection::Pending(Box::pin(call))
    }
}

impl<C> Inner<C> {
    fn shard(&self, digest: &Digest) -> &Mutex<HashMap<Digest, Call<C>>> {
        &self.in_flight[usize::from(digest[0]) % IN_FLIGHT_SHARDS]
    }

    /// The token's key in the caches: SHA-256(k ‖ token), k a random block made for this process. Two tokens
    /// share an entry only if SHA-256 collides. Without k, nobody can tell from the cache (a memory dump, say)
    /// which tokens were seen, nor choose tokens that crowd one shard. The digest never leaves the process, so
    /// the secret-prefix construction's one weakness as a MAC, length extension, gives nothing to anyone; and
    /// it costs one compression from a state that has absorbed k, less than half of HMAC's two from a context
    /// copied per call (77 ns against 181 ns, `benches/benches/introspection.rs`), on every cache hit.
    fn digest(&self, token: &str) -> Digest {
        let mut hash = self.keyed.clone();
        hash.update(token.as_bytes());
        let mut digest = [0; 32];
        digest.copy_from_slice(hash.finish().as_ref());
        digest
    }

    /// A cached answer about the token, if one is still good at `now`.
    fn cached(&self, digest: &Digest, now: i64) -> Option<Answer<C>> {
        if let Some(active) = self.answers.get(digest) {
            if now < active.until {
                observe::cache("hit");
                return Some(Ok(active.validated));
            }
            // Only if it is still the expired one: a call may have put a fresh answer in its place.
            self.answers.remove_if(digest, |active| now >= active.until);
        }
        if let Some(refusal) = self.refusals.get(digest) {
            if now < refusal.until {
                observe::cache("negative_hit");
                return Some(Err(refusal.error));
            }
            self.refusals.remove_if(digest, |refusal| now >= refusal.until);
        }
        None
    }
}

/// A call under way, owned by its task: when the task ends, however it ends, the call leaves `in_flight`.
struct Leave<C> {
    inner: Arc<Inner<C>>,
    digest: Digest,
    id: u64,
}

impl<C> Drop for Leave<C> {
    fn drop(&mut self) {
        let Self { inner, digest, id } = self;
        let mut in_flight = inner.shard(digest).lock().unwrap_or_else(PoisonError::into_inner);
        // Not a newer call for the same token, after a purge took this one out.
        if in_flight.get(digest).is_some_and(|call| call.id == *id) {
            in_flight.remove(digest);
        }
        inner.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<C: DeserializeOwned + Send + Sync + 'static> Inner<C> {
    /// Asks the endpoint about `token`, and keeps the answer unless a purge came since the call started
    /// (`purges` is the count then).
    async fn call(&self, token: String, digest: Digest, purges: u64) -> Answer<C> {
        let started = Instant::now();
        let answer = self.ask(&token).await;
        drop(token);
        let shard = self.shard(&digest).lock().unwrap_or_else(PoisonError::into_inner);
        let keep = self.purges.load(Ordering::Acquire) == purges;
        let now = unix_now();
        let outcome = match &answer {
            Ok(validated) => {
                let ttl_end = now.saturating_add(self.cache_ttl);
                let until = match validated.valid_until() {
                    Some(exp) => Some(exp.min(ttl_end)),
                    None if self.cache_without_exp => Some(ttl_end),
                    None => None,
                };
                if let Some(until) = until.filter(|&until| keep && until > now) {
                    self.answers.insert(digest, Active { validated: validated.clone(), until });
                }
                "active"
            }
            Err(error) if error.kind() == ErrorKind::IntrospectionUnavailable => "error",
            Err(error) => {
                if keep && self.negative_ttl > 0 {
                    self.refusals
                        .insert(digest, Refusal { error: *error, until: now.saturating_add(self.negative_ttl) });
                }
                if error.kind() == ErrorKind::Inactive { "inactive" } else { "refused" }
            }
        };
        drop(shard);
        observe::call(outcome, started.elapsed());
        answer
    }

    async fn ask(&self, token: &str) -> Answer<C> {
        let unavailable = |Failure(reason)| {
            tracing::warn!(%reason, "jwtgate: token introspection failed; refusing with 503");
            Error::from(ErrorKind::IntrospectionUnavailable)
        };
        let body = call::post(&self.client, &self.endpoint, &self.credentials, token, self.timeout)
            .await
            .map_err(unavailable)?;
        match ActiveAnswer::read(&body) {
            Ok(answer) => self.rules.check::<C>(&answer, unix_now()).map(Arc::new),
            Err(AnswerError::Inactive) => Err(ErrorKind::Inactive.into()),
            // Unreadable, or a kind added later: never taken for an inactive token.
            Err(_) => Err(unavailable(Failure(format!("{}: the answer is not a JSON object", Shown(&self.endpoint))))),
        }
    }
}

impl<C> IntrospectorBuilder<C> {
    /// Authenticates with HTTP Basic (`client_secret_basic`), the client id and secret each form-urlencoded
    /// first (RFC 6749 §2.3.1).
    pub fn client_secret_basic(mut self, client_id: &str, secret: &Secret) -> Self {
        self.credentials = Credentials::basic(client_id, secret);
        self
    }

    /// Authenticates with `client_id` and `client_secret` in the form (`client_secret_post`).
    pub fn client_secret_post(mut self, client_id: impl Into<String>, secret: Secret) -> Self {
        self.credentials = Ok(Credentials::Post { id: client_id.into(), secret });
        self
    }

    /// Authenticates with a client assertion signed by `key` for every call (`private_key_jwt`, RFC 7523):
    /// `iss` and `sub` the client id, `aud` the endpoint's URL unless
    /// [`assertion_audience`](Self::assertion_audience) says otherwise, a fresh `jti`, one minute of validity.
    pub fn private_key_jwt(mut self, client_id: impl Into<String>, key: SigningKey) -> Self {
        self.credentials = Ok(Credentials::PrivateKeyJwt { id: client_id.into(), key, audience: None });
        self
    }

    /// The `aud` of `private_key_jwt` assertions, such as the issuer, for servers that expect it rather than
    /// the endpoint's URL.
    pub fn assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// Authenticates with `Authorization: Bearer` and a token of the resource server's own.
    pub fn bearer(mut self, token: &Secret) -> Self {
        self.credentials = Credentials::bearer(token);
        self
    }

    /// The checks of an active answer's claims: issuer, audience, leeway, what is required, and the mapping of
    /// authorities. Default: [`AnswerRules::new`].
    pub fn rules(mut self, rules: AnswerRules) -> Self {
        self.rules = rules;
        self
    }

    /// The bound on one call: connecting, sending, and reading the whole answer. Default 2 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Refuses tokens longer than `bytes` without a call. Default 8 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// How long an active answer is reused, never past the token's `exp`: a revocation at the authorization
    /// server takes effect after this at the latest. Counted in whole seconds, as `exp` is: a fraction is dropped,
    /// so less than one second is `Duration::ZERO`, which asks about every request. Default 30 s.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How many active answers are kept at most (at least one). Default 10,000.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Reuses active answers without `exp` too, for the cache TTL. Default: such an answer is not reused,
    /// since nothing bounds the token's life but the endpoint's next answer.
    pub fn cache_without_exp(mut self) -> Self {
        self.cache_without_exp = true;
        self
    }

    /// How long a refusal is reused (an inactive token, an answer whose claims fail a check), and how many
    /// are kept. Default 5 s and 1,000. Whole seconds, as [`cache_ttl`](Self::cache_ttl): less than one second
    /// is `Duration::ZERO`, which asks again every time.
    pub fn negative_cache(mut self, ttl: Duration, capacity: usize) -> Self {
        self.negative_ttl = ttl;
        self.negative_capacity = capacity;
        self
    }

    /// How many calls may be under way at once; a token that would need one more is answered 503. Default
    /// 256.
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.max_calls = calls;
        self
    }

    /// Builds the introspector. Refuses an endpoint that is not https (plain http only to loopback), and
    /// credentials that cannot be sent.
    pub fn build(self) -> Result<Introspector<C>, ConfigError> {
        let config = |message: String| ConfigError::new(ConfigErrorKind::Introspection, message);
        let endpoint = parse_endpoint(&self.endpoint, "tokens are introspected").map_err(config)?;
        let mut credentials = self.credentials?;
        if let (Credentials::PrivateKeyJwt { audience, .. }, Some(chosen)) = (&mut credentials, self.assertion_audience)
        {
            *audience = Some(chosen);
        }
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .build()
            .map_err(|_| config("the HTTP client could not be built".to_owned()))?;
        let mut key = [0; 64];
        SystemRandom::new().fill(&mut key).map_err(|_| config("no randomness for the cache's key".to_owned()))?;
        let mut keyed = digest::Context::new(&digest::SHA256);
        keyed.update(&key);
        let seconds = |ttl: Duration| i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        Ok(Introspector {
            inner: Arc::new(Inner {
                endpoint,
                client,
                credentials,
                rules: self.rules,
                timeout: self.timeout,
                max_token_bytes: self.max_token_bytes,
                cache_ttl: seconds(self.cache_ttl),
                cache_without_exp: self.cache_without_exp,
                negative_ttl: seconds(self.negative_ttl),
                answers: Cache::new(self.capacity.max(1)),
                refusals: Cache::new(self.negative_capacity.max(1)),
                keyed,
                in_flight: std::array::from_fn(|_| Mutex::new(HashMap::new())),
                calls: AtomicUsize::new(0),
                next_call: AtomicU64::new(0),
                purges: AtomicU64::new(0),
                max_calls: self.max_calls.max(1),
            }),
        })
    }
}

impl<C> Clone for Introspector<C> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<C> fmt::Debug for Introspector<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Introspector")
            .field("endpoint", &Shown(&inner.endpoint).to_string())
            .field("authentication", &inner.credentials)
            .field("rules", &inner.rules)
            .field("timeout", &inner.timeout)
            .field("cache_ttl", &inner.cache_ttl)
            .field("negative_ttl", &inner.negative_ttl)
            .field("cached", &(inner.answers.len(), inner.refusals.len()))
            .finish_non_exhaustive()
    }
}

impl<C> fmt::Debug for IntrospectorBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectorBuilder")
            .field("authentication", &self.credentials.as_ref().map(Credentials::method))
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Logs and metrics. Never the token, never a secret.
mod observe {
    use std::time::Duration;

    pub(super) fn cache(result: &'static str) {
        #[cfg(feature = "metrics")]
        metrics::counter!(crate::metric_names::INTROSPECTION_CACHE_TOTAL, "result" => result).increment(1);
        #[cfg(not(feature = "metrics"))]
        let _ = result;
    }

    /// A miss refused without a call: too many calls under way, or no runtime to make one on.
    pub(super) fn not_called() {
        #[cfg(feature = "metrics")]
        metrics::counter!(crate::metric_names::INTROSPECTION_CALLS_TOTAL, "outcome" => "limited").increment(1);
    }

    pub(super) fn call(outcome: &'static str, elapsed: Duration) {
        tracing::debug!(outcome, elapsed_ms = elapsed.as_millis() as u64, "jwtgate: token introspected");
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(crate::metric_names::INTROSPECTION_CALLS_TOTAL, "outcome" => outcome).increment(1);
            metrics::histogram!(crate::metric_names::INTROSPECTION_CALL_SECONDS, "outcome" => outcome)
                .record(elapsed.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use jwtgate_core::ActiveAnswer;
    use serde_json::Value;

    use super::*;

    fn introspector() -> Introspector<Value> {
        Introspector::builder("http://127.0.0.1:1/introspect").build().unwrap()
    }

    #[test]
    fn an_active_answer_is_served_until_its_end_and_no_second_later() {
        let introspector = introspector();
        let inner = &introspector.inner;
        let answer = ActiveAnswer::read(br#"{"active":true,"sub":"alice"}"#).unwrap();
        let validated = Arc::new(AnswerRules::new().check::<Value>(&answer, 1_000).unwrap());
        let digest = inner.digest("token");
        inner.answers.insert(digest, Active { validated, until: 1_030 });
        assert!(matches!(inner.cached(&digest, 1_029), Some(Ok(_))));
        assert!(inner.cached(&digest, 1_030).is_none());
        assert_eq!(introspector.cached(), (0, 0), "an entry found expired is dropped");
    }

    #[test]
    fn a_refusal_is_served_for_the_negative_ttl_only() {
        let introspector = introspector();
        let inner = &introspector.inner;
        assert_eq!(inner.negative_ttl, 5);
        let digest = inner.digest("garbage");
        inner.refusals.insert(digest, Refusal { error: ErrorKind::Inactive.into(), until: 1_000 + inner.negative_ttl });
        assert!(matches!(inner.cached(&digest, 1_004), Some(Err(error)) if error.kind() == ErrorKind::Inactive));
        assert!(inner.cached(&digest, 1_005).is_none());
        assert_eq!(introspector.cached(), (0, 0));
    }

    #[test]
    fn a_call_dropped_with_its_runtime_leaves_no_trace() {
        // An endpoint that takes the connection and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let introspector = Introspector::<Value>::builder(url).max_concurrent_calls(1).build().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let Introspection::Pending(waiting) = runtime.block_on(async { introspector.introspect("token") }) else {
            panic!("a call")
        };
        let inner = &introspector.inner;
        assert_eq!(inner.calls.load(Ordering::Acquire), 1);
        // The runtime shuts down before the call's task ever ran.
        drop(runtime);
        assert_eq!(inner.calls.load(Ordering::Acquire), 0);
        assert!(inner.in_flight.iter().all(|shard| shard.lock().unwrap().is_empty()));
        let answer = waiting.now_or_never().expect("the waiting request is answered");
        assert_eq!(answer.unwrap_err().kind(), ErrorKind::IntrospectionUnavailable);
        // The one call allowed is free again.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert!(matches!(runtime.block_on(async { introspector.introspect("token") }), Introspection::Pending(_)));
    }

    #[test]
    fn the_cache_key_is_a_keyed_hash_never_the_token() {
        let (one, two) = (introspector(), introspector());
        let digest = one.inner.digest("token");
        assert_eq!(digest, one.inner.digest("token"));
        assert_ne!(digest, two.inner.digest("token"), "each introspector has a key of its own");
        assert_ne!(&digest[..], digest::digest(&digest::SHA256, b"token").as_ref(), "never the plain SHA-256");
    }
}
