//! A DPoP replay store in Redis, shared by every server of a fleet.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jwtgate_core::__private::unix_now;
use jwtgate_core::{ProofUse, ReplayCheck, ReplayError, ReplayStore};
use redis::RedisError;

use crate::conn::{Conn, Endpoint};
use crate::{DEFAULT_TIMEOUT, within};

/// The default key prefix of [`RedisReplayStore`].
pub const DEFAULT_REPLAY_PREFIX: &str = "jwtgate:dpop:";

/// A DPoP [`ReplayStore`] in Redis: every instance of a fleet that shares the server refuses a proof that
/// any of them has seen.
///
/// Each proof is one key, `<prefix><jkt>:<jti>`, written with `SET NX EX`: one round trip that records the
/// proof and says whether it was there, so that two instances can never both take the same proof as new.
/// The key expires when the proof's window ends. On a Redis Cluster, proofs spread over the shards by their
/// keys; nothing needs two keys at once. A proof recorded just before its primary fails may be lost with it,
/// and could then be replayed within the rest of its window (seconds): replay protection is not worth a `WAIT`
/// per request.
///
/// A Redis that fails or does not answer within the timeout (2 s by default) is an error: the request is
/// refused with 503, never let through unchecked. Like [`RedisDenylist`](crate::RedisDenylist), it connects
/// lazily and reconnects after a failure.
#[derive(Clone)]
pub struct RedisReplayStore {
    conn: Conn,
    #[cfg(feature = "tls")]
    endpoint: Endpoint,
    prefix: Arc<str>,
    timeout: Duration,
}

impl RedisReplayStore {
    /// A store in the Redis server at `url`. It connects lazily: this fails only for a malformed URL. Call
    /// it inside a Tokio runtime.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        Self::on(Endpoint::single(url))
    }

    /// A store in the Redis Cluster whose seed nodes are `nodes`. It connects on first use: this fails only
    /// for a malformed URL.
    pub fn cluster<I, S>(nodes: I) -> Result<Self, RedisError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::on(Endpoint::cluster(nodes))
    }

    #[cfg_attr(
        not(feature = "tls"),
        expect(clippy::needless_pass_by_value, reason = "kept, for `with_tls`, when the feature is on")
    )]
    fn on(endpoint: Endpoint) -> Result<Self, RedisError> {
        let conn = Conn::connect(&endpoint)?;
        conn.watch_eviction_policy();
        Ok(Self {
            conn,
            #[cfg(feature = "tls")]
            endpoint,
            prefix: DEFAULT_REPLAY_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Speaks TLS to Redis with `tls`'s certificates (the URLs must be `rediss://`). Fails for a certificate or
    /// a key that does not parse, or a `redis://` URL.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_tls(mut self, tls: crate::RedisTls) -> Result<Self, RedisError> {
        self.endpoint = self.endpoint.with_tls(tls);
        self.conn = Conn::connect(&self.endpoint)?;
        self.conn.watch_eviction_policy();
        Ok(self)
    }

    /// The prefix of every key this store writes. Default [`DEFAULT_REPLAY_PREFIX`].
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// How long one check may take. Default 2 s.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The key of a proof: a thumbprint is base64url, without `:`, so `jkt:jti` names one proof only.
    fn key(&self, jkt: &str, jti: &str) -> String {
        format!("{}{jkt}:{jti}", self.prefix)
    }
}

impl ReplayStore for RedisReplayStore {
    fn record(&self, jkt: &str, jti: &str, until: i64) -> ReplayCheck {
        // Never first without being remembered, for a second at least.
        let ttl = until.saturating_sub(unix_now()).max(1);
        let mut command = redis::cmd("SET");
        command.arg(self.key(jkt, jti)).arg(1).arg("NX").arg("EX").arg(ttl);
        let (conn, timeout) = (self.conn.clone(), self.timeout);
        ReplayCheck::Pending(Box::pin(async move {
            // `OK` when the key was set, nil when it was there already.
            match within(timeout, conn.query::<Option<String>>(&command)).await {
                Ok(Some(_)) => Ok(ProofUse::First),
                Ok(None) => Ok(ProofUse::Replayed),
                Err(error) => Err(ReplayError::unavailable(error)),
            }
        }))
    }
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("connection", &self.conn.kind())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
