//! A Redis [`Denylist`] for jwtgate, shared by every server of a fleet.
//!
//! ```no_run
//! # async fn run() -> Result<(), redis::RedisError> {
//! use jwtgate_redis::RedisDenylist;
//! let denylist = RedisDenylist::new("redis://127.0.0.1:6379/")?; // connects lazily
//! // JwtAuthLayer::<MyClaims>::new(validator).denylist(denylist.clone())
//! # Ok(()) }
//! ```
//!
//! - Each revocation is a key `SET` with an expiry equal to the token's remaining lifetime, so Redis holds
//!   only live revoked tokens.
//! - A lookup is one round trip (a pipeline of the `jti` key and the subject key; on a cluster, one
//!   request to each key's node, side by side), bounded by a timeout (default 2 s). A store that does not answer in time is an error, which the layer answers with 503:
//!   fail-closed.
//! - The connection is made lazily and remade after a failure, so a server started while Redis is down
//!   answers 503 until Redis is back, and recovers without a restart.
//! - Redis Cluster works through the redis crate's cluster support: [`RedisDenylist::cluster`], and the same
//!   constructor on every store here. Keys that one script touches share a slot by a hash tag.
//! - [`Durability::replicas`] confirms a write only once replicas hold it (`WAIT`), so that a failover cannot
//!   lose it. See the deployment guide (`docs/deployment.md`) for which store goes where, and what each failure
//!   does.
//!
//! - With the `tls` feature, `rediss://` URLs speak TLS (rustls), and `RedisTls` sets a private authority or a
//!   client certificate (`with_tls` on every store).
//!
//! `RedisReplayStore` remembers used DPoP proofs for a fleet: one `SET NX EX` per proof.
//!
//! With the `refresh` feature, `RedisRefreshStore` keeps `jwtgate-session`'s refresh tokens, hashed, and
//! rotates them atomically. Without it, this crate does not depend on `jwtgate-session`.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod conn;
pub mod metric_names;
#[cfg(feature = "refresh")]
mod refresh;
mod replay;
mod replicated;

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use jwtgate_core::{
    __private::unix_now, Denylist, DenylistError, Lookup, PendingRevocation, RegisteredClaims, TokenStatus,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

pub use conn::Durability;
#[cfg(feature = "tls")]
pub use conn::RedisTls;
use conn::{Conn, Connections, Endpoint};

#[cfg(feature = "refresh")]
#[cfg_attr(docsrs, doc(cfg(feature = "refresh")))]
pub use refresh::{DEFAULT_REFRESH_PREFIX, RedisRefreshStore};
pub use replay::{DEFAULT_REPLAY_PREFIX, RedisReplayStore};
pub use replicated::{
    DEFAULT_REPLICA_CAPACITY, DEFAULT_STALENESS, Fallback, ReplicatedDenylist, ReplicatedDenylistBuilder,
};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "jwtgate:denylist:";
/// The default time a lookup or a revocation may take before it counts as a failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A denylist in Redis. Clones share the connection.
#[derive(Clone)]
pub struct RedisDenylist {
    redis: Connections,
    prefix: Arc<str>,
    timeout: Duration,
}

/// The Lua that raises a subject's cutoff (`ARGV[1]`) and expiry (`ARGV[2]`, seconds) at `KEYS[1]`, never
/// lowering them, leaving the cutoff in `cutoff`: shared by [`RedisDenylist`] and [`ReplicatedDenylist`],
/// which appends it to its stream.
macro_rules! raise_cutoff_lua {
    () => {
        r"
local cutoff = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current and current > cutoff then cutoff = current end
local left = redis.call('TTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], cutoff, 'EX', ttl)
"
    };
}
pub(crate) use raise_cutoff_lua;

/// Raises a subject's cutoff and expiry, never lowers them.
const CUTOFF_SCRIPT: &str = concat!(raise_cutoff_lua!(), "return 1\n");

/// Revokes a token id at `KEYS[1]` for `ARGV[1]` seconds, never shortening a revocation already there.
const REVOKE_SCRIPT: &str = r"
local ttl = tonumber(ARGV[1])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('SET', KEYS[1], 1, 'EX', ttl) end
return 1
";

impl RedisDenylist {
    /// A denylist in the Redis server at `url` (`redis://host:port/db`). It connects lazily: this fails
    /// only for a malformed URL, never because Redis is down. Call it inside a Tokio runtime.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        Self::on(Endpoint::single(url))
    }

    /// A denylist in the Redis Cluster whose seed nodes are `nodes` (`redis://host:port`, one or more). It
    /// connects on first use, as [`new`](Self::new) does: this fails only for a malformed URL, never because
    /// the cluster is down. The redis crate follows the cluster's slots, its redirections (`MOVED`, `ASK`) and
    /// its failovers. Each key is one token's or one subject's, so revocations spread over every shard.
    pub fn cluster<I, S>(nodes: I) -> Result<Self, RedisError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::on(Endpoint::cluster(nodes))
    }

    pub(crate) fn on(endpoint: Endpoint) -> Result<Self, RedisError> {
        Ok(Self { redis: Connections::new(endpoint)?, prefix: DEFAULT_PREFIX.into(), timeout: DEFAULT_TIMEOUT })
    }

    /// Speaks TLS to Redis with `tls`'s certificates (the URLs must be `rediss://`). Fails for a certificate or
    /// a key that does not parse, or a `redis://` URL.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_tls(mut self, tls: RedisTls) -> Result<Self, RedisError> {
        self.redis = self.redis.with_tls(tls)?;
        Ok(self)
    }

    /// How durable a revocation must be before it is confirmed. Default [`Durability::Primary`]: a revocation
    /// confirmed just before its primary fails may be lost. With [`Durability::Replicas`], `revoke` and
    /// `revoke_subject` return only once that many replicas hold the revocation, and fail otherwise (the layer's
    /// `POST /logout` then answers 503 and the client retries); the write stays on the primary either way.
    pub fn with_durability(mut self, durability: Durability) -> Result<Self, RedisError> {
        self.redis = self.redis.with_durability(durability)?;
        Ok(self)
    }

    /// The prefix of every key this denylist writes. Default [`DEFAULT_PREFIX`].
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// How long a lookup or a revocation may take. Default [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn token_key(&self, jti: &str) -> String {
        format!("{}jti:{jti}", self.prefix)
    }

    pub(crate) fn subject_key(&self, subject: &str) -> String {
        format!("{}sub:{subject}", self.prefix)
    }

    /// Writes a revocation with a script (loaded when Redis does not know it yet: after a restart, or on a
    /// replica just promoted), then confirms it as durable as configured, all within the timeout plus the
    /// durability's own.
    pub(crate) async fn write(&self, invocation: redis::ScriptInvocation<'_>, key: &str) -> Result<(), DenylistError> {
        let (writer, durability) = (&self.redis.writer, self.redis.durability);
        let write = async move {
            writer.invoke::<()>(&invocation).await?;
            writer.confirm(key, durability).await
        };
        within(self.timeout + durability.extra_time(), write).await
    }
}

/// Whether the token key exists, and the subject's cutoff: exactly the keys the token has, so a key that is
/// not ours is never read.
async fn lookup(conn: Conn, jti: Option<String>, subject: Option<String>) -> Result<(bool, Option<i64>), RedisError> {
    if conn.is_cluster() {
        // The two keys hash to different slots, so to different nodes: one request each, side by side.
        let revoked = async {
            match &jti {
                Some(key) => conn.query::<bool>(redis::cmd("EXISTS").arg(key)).await,
                None => Ok(false),
            }
        };
        let cutoff = async {
            match &subject {
                Some(key) => conn.query::<Option<i64>>(redis::cmd("GET").arg(key)).await,
                None => Ok(None),
            }
        };
        return tokio::try_join!(revoked, cutoff);
    }
    // One round trip: a pipeline.
    let mut pipeline = redis::pipe();
    match (&jti, &subject) {
        (Some(jti), Some(subject)) => {
            pipeline.exists(jti).get(subject);
            conn.pipeline(&pipeline).await
        }
        (Some(jti), None) => {
            pipeline.exists(jti);
            let (revoked,): (bool,) = conn.pipeline(&pipeline).await?;
            Ok((revoked, None))
        }
        (None, Some(subject)) => {
            pipeline.get(subject);
            let (cutoff,): (Option<i64>,) = conn.pipeline(&pipeline).await?;
            Ok((false, cutoff))
        }
        (None, None) => Ok((false, None)),
    }
}

/// A connection to `client`'s server, made on first use and remade after a failure, with the default
/// timeouts.
fn lazy_connection(client: redis::Client, response_timeout: Duration) -> Result<ConnectionManager, RedisError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(DEFAULT_TIMEOUT))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1);
    ConnectionManager::new_lazy_with_config(client, config)
}

/// Reads the server's `maxmemory-policy` once it answers (trying for about a minute), and warns unless it
/// is `noeviction` (a cluster's primaries are checked the same way, see `conn`). Under any other policy a Redis short of memory may evict jwtgate's keys, which all have
/// an expiry (the `volatile-*` policies pick exactly those): an evicted revocation is a lost one, and an
/// evicted refresh-token record ends a session. It asks `INFO memory`, not `CONFIG GET`, which a user limited
/// to jwtgate's keys should not be allowed (it shows the server's passwords); a server that refuses `INFO`
/// too is not checked, and that is logged at debug level.
pub(crate) async fn check_eviction_policy(mut conn: ConnectionManager) {
    for _ in 0..12 {
        let mut command = redis::cmd("INFO");
        command.arg("memory");
        match tokio::time::timeout(DEFAULT_TIMEOUT, command.query_async::<String>(&mut conn)).await {
            Ok(Ok(info)) => return report_eviction_policies(&[info]),
            Ok(Err(error)) if !retry_policy_check(&error) => {
                return tracing::debug!(%error, "jwtgate: cannot read Redis's maxmemory-policy");
            }
            Ok(Err(error)) => tracing::debug!(%error, "jwtgate: cannot read Redis's maxmemory-policy yet"),
            Err(_) => tracing::debug!("jwtgate: cannot read Redis's maxmemory-policy yet: no answer"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Whether a failure to read the policy may pass: the connection, not a refusal (no permission, an unknown
/// command), which asking again will not change.
pub(crate) fn retry_policy_check(error: &RedisError) -> bool {
    error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal() || error.is_timeout()
}

/// Logs the `maxmemory_policy` of each `INFO memory` answer in `infos` (one per server; a cluster's primaries
/// each have their own): a warning for any policy but `noeviction`.
pub(crate) fn report_eviction_policies(infos: &[String]) {
    for info in infos {
        match info.lines().find_map(|line| line.trim().strip_prefix("maxmemory_policy:")) {
            Some("noeviction") => tracing::debug!("jwtgate: Redis's maxmemory-policy is noeviction"),
            Some(policy) => tracing::warn!(
                policy,
                "jwtgate: Redis's maxmemory-policy is not noeviction: when Redis runs short of memory it may \
                 evict revocations and sessions; set maxmemory-policy noeviction"
            ),
            None => tracing::debug!("jwtgate: Redis did not tell its maxmemory-policy"),
        }
    }
}

/// `query`'s answer, or an error when Redis fails or does not answer within `timeout`.
pub(crate) async fn within<T>(
    timeout: Duration,
    query: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, DenylistError> {
    match tokio::time::timeout(timeout, query).await {
        Ok(result) => result.map_err(DenylistError::new),
        Err(_) => Err(DenylistError::new(format!("Redis did not answer within {timeout:?}"))),
    }
}

impl Denylist for RedisDenylist {
    fn check(&self, claims: &RegisteredClaims) -> Lookup {
        let jti = claims.token_id().map(|jti| self.token_key(jti));
        let subject = claims.subject().map(|sub| self.subject_key(sub));
        if jti.is_none() && subject.is_none() {
            return Lookup::Ready(Ok(TokenStatus::Active));
        }
        let (conn, timeout, iat) = (self.redis.conn.clone(), self.timeout, claims.issued_at());
        Lookup::Pending(Box::pin(async move {
            let (revoked, cutoff) = within(timeout, lookup(conn, jti, subject)).await?;
            let cut_off = cutoff.is_some_and(|cutoff| iat.is_none_or(|iat| iat < cutoff));
            Ok(if revoked || cut_off { TokenStatus::Revoked } else { TokenStatus::Active })
        }))
    }

    fn revoke(&self, jti: &str, until: i64) -> PendingRevocation {
        let ttl = until.saturating_sub(unix_now());
        if ttl <= 0 {
            return Box::pin(std::future::ready(Ok(())));
        }
        static REVOKE: LazyLock<Script> = LazyLock::new(|| Script::new(REVOKE_SCRIPT));
        let key = self.token_key(jti);
        let mut invocation = REVOKE.prepare_invoke();
        invocation.key(&key).arg(ttl);
        let this = self.clone();
        Box::pin(async move { this.write(invocation, &key).await })
    }

    fn revoke_subject(&self, subject: &str, issued_before: i64, until: i64) -> PendingRevocation {
        let ttl = until.saturating_sub(unix_now());
        if ttl <= 0 {
            return Box::pin(std::future::ready(Ok(())));
        }
        static CUTOFF: LazyLock<Script> = LazyLock::new(|| Script::new(CUTOFF_SCRIPT));
        let key = self.subject_key(subject);
        let mut invocation = CUTOFF.prepare_invoke();
        invocation.key(&key).arg(issued_before).arg(ttl);
        let this = self.clone();
        Box::pin(async move { this.write(invocation, &key).await })
    }
}

impl fmt::Debug for RedisDenylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDenylist")
            .field("connection", &self.redis.conn.kind())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("durability", &self.redis.durability)
            .finish()
    }
}
