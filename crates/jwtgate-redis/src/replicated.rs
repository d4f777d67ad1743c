//! [`ReplicatedDenylist`]: every instance answers from a local replica of the revocations, kept in sync
//! through a Redis Stream, with Redis as the source of truth.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use jwtgate_core::{
    __private::unix_now, Denylist, DenylistError, Lookup, MemoryDenylist, PendingRevocation, RegisteredClaims,
    TokenStatus,
};
use redis::{RedisError, Script};
use tokio::sync::watch;

use crate::conn::{Durability, Endpoint, Nodes};
use crate::{DEFAULT_PREFIX, RedisDenylist, raise_cutoff_lua};

mod sync;

/// The default staleness bound: how long an instance trusts its replica without hearing from Redis.
pub const DEFAULT_STALENESS: Duration = Duration::from_secs(5);
/// The default capacity of the local replica, in live revocations (token ids and subject cutoffs).
pub const DEFAULT_REPLICA_CAPACITY: usize = 1_000_000;
/// How long one read of the stream blocks in Redis before it returns empty: also the heartbeat that proves
/// the replica is in sync when nothing is revoked.
const BLOCK: Duration = Duration::from_millis(500);
/// How many events the stream keeps (approximately) for instances that reconnect; older ones are trimmed, and
/// an instance that missed them loads a snapshot instead.
const STREAM_LENGTH: usize = 100_000;

/// What an instance does while its replica cannot be trusted: before its first snapshot, and after losing
/// the stream for longer than the staleness bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// Refuse to decide: the layer answers 503 (or lets the token through, if it fails open). The default.
    #[default]
    Closed,
    /// Ask Redis on every request, as [`RedisDenylist`] does, until the replica is in sync again.
    Redis,
}

/// A [`Denylist`] that answers from memory on every instance of a fleet, kept in sync through Redis.
///
/// - **Revoking** writes the revocation to Redis as [`RedisDenylist`] does (a key with the token's remaining
///   lifetime), and, in the same atomic script, appends it to a Redis Stream. The revoking instance applies
///   it to its own replica at once.
/// - **Every instance** reads the stream (`XREAD`, blocking) and applies each revocation to its replica, a
///   [`MemoryDenylist`]. A lookup is a local one: no network on the request path.
/// - **At startup** the instance loads a snapshot of every live revocation (a `SCAN` of the keys), then reads
///   the stream from the point the snapshot started. Until then it is not ready, and answers by its
///   [`Fallback`] (fail-closed by default). [`ReplicatedDenylist::ready`] waits for the snapshot.
/// - **After a disconnection** it resumes from the last event it applied when the stream still holds it, and
///   loads a snapshot on top of its replica otherwise (a restart without persistence, a trimmed stream).
///   Revocations only ever accumulate and expire, so what the replica held stays.
/// - **Staleness:** when the instance has not heard from Redis for longer than the bound (default 5 s), it
///   stops trusting the replica and answers by its fallback, and logs it, until the stream is back.
///
/// With the `metrics` feature:
/// - `jwtgate_denylist_replica_in_sync`, a gauge, 1 while the sync task follows the stream, 0 from when it
///   loses Redis;
/// - `jwtgate_denylist_replica_lost_total`, a counter of the times it lost Redis;
/// - `jwtgate_denylist_replica_snapshots_total`, a counter of snapshots loaded;
/// - `jwtgate_denylist_replica_fallbacks_total`, a counter of lookups answered by the fallback, labelled
///   `fallback` (`closed`, `redis`).
///
/// The consistency model: eventual, with a bounded window. A revocation reaches every connected instance
/// within one stream read (milliseconds on a LAN); an instance that cannot confirm it is in sync within the
/// staleness bound falls back rather than answer from a stale replica.
///
/// On a Redis Cluster ([`ReplicatedDenylist::cluster`]), the script writes the key and the stream together, so
/// every key of the denylist and its stream share one slot: the prefix is a hash tag, `{jwtgate:denylist:}`.
/// One shard holds the denylist (revocations are small and short-lived); the cluster fails it over like any
/// other. Its keys differ from a plain [`RedisDenylist`]'s on the same cluster.
#[derive(Clone)]
pub struct ReplicatedDenylist {
    inner: Arc<Inner>,
}

struct Inner {
    replica: MemoryDenylist,
    store: RedisDenylist,
    stream: String,
    staleness: Duration,
    fallback: Fallback,
    /// When the replica last heard from Redis, in milliseconds since `epoch`; 0 before the first snapshot.
    synced_at: AtomicU64,
    epoch: Instant,
    /// The replica missed a revocation (it was full): it is never trusted again.
    overflowed: AtomicBool,
    ready: watch::Sender<bool>,
}

/// Builds a [`ReplicatedDenylist`].
#[must_use]
pub struct ReplicatedDenylistBuilder {
    endpoint: Endpoint,
    prefix: String,
    staleness: Duration,
    fallback: Fallback,
    capacity: usize,
    durability: Durability,
}

impl ReplicatedDenylist {
    /// A builder for a replicated denylist on the Redis server at `url`.
    pub fn builder(url: &str) -> ReplicatedDenylistBuilder {
        Self::on(Endpoint::single(url))
    }

    /// A builder for a replicated denylist on the Redis Cluster whose seed nodes are `nodes`. Its keys and its
    /// stream share one slot, by a hash tag: the prefix is wrapped in `{` `}` (the default becomes
    /// `{jwtgate:denylist:}`), unless it has a hash tag already.
    pub fn cluster<I, S>(nodes: I) -> ReplicatedDenylistBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::on(Endpoint::cluster(nodes))
    }

    fn on(endpoint: Endpoint) -> ReplicatedDenylistBuilder {
        ReplicatedDenylistBuilder {
            endpoint,
            prefix: DEFAULT_PREFIX.to_owned(),
            staleness: DEFAULT_STALENESS,
            fallback: Fallback::default(),
            capacity: DEFAULT_REPLICA_CAPACITY,
            durability: Durability::Primary,
        }
    }

    /// Waits until the first snapshot is loaded and the replica answers.
    pub async fn ready(&self) {
        let mut ready = self.inner.ready.subscribe();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// Whether the replica is trusted now: its snapshot is loaded, and it heard from Redis within the
    /// staleness bound.
    pub fn in_sync(&self) -> bool {
        self.inner.in_sync()
    }

    /// How many live revocations the replica holds.
    pub fn len(&self) -> usize {
        self.inner.replica.len()
    }

    /// Whether the replica holds no revocation.
    pub fn is_empty(&self) -> bool {
        self.inner.replica.is_empty()
    }
}

impl ReplicatedDenylistBuilder {
    /// The prefix of every key, and of the stream. Default [`DEFAULT_PREFIX`], which a [`RedisDenylist`]
    /// shares: both read the same revocations.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long the replica is trusted without hearing from Redis. Default [`DEFAULT_STALENESS`].
    pub fn staleness(mut self, staleness: Duration) -> Self {
        self.staleness = staleness;
        self
    }

    /// What to do while the replica is not trusted. Default [`Fallback::Closed`].
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// How many live revocations the replica can hold. Default [`DEFAULT_REPLICA_CAPACITY`]. A replica that
    /// fills up stops being trusted for good (it would miss revocations), and logs it at error level.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How durable a revocation must be before it is confirmed: see [`RedisDenylist::with_durability`].
    /// Default [`Durability::Primary`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Speaks TLS to Redis with `tls`'s certificates (the URLs must be `rediss://`); `start` fails for a
    /// certificate or a key that does not parse.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: crate::RedisTls) -> Self {
        self.endpoint = self.endpoint.with_tls(tls);
        self
    }

    /// Starts the denylist: its sync task connects, loads the snapshot and follows the stream in the
    /// background. Fails only for a malformed URL. Call it inside a Tokio runtime.
    pub fn start(mut self) -> Result<ReplicatedDenylist, RedisError> {
        if matches!(self.endpoint.nodes, Nodes::Cluster(_)) && !has_hash_tag(&self.prefix) {
            self.prefix = format!("{{{}}}", self.prefix);
        }
        let store = RedisDenylist::on(self.endpoint.clone())?;
        let store = store.with_prefix(self.prefix.clone()).with_durability(self.durability)?;
        let (ready, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            replica: MemoryDenylist::with_capacity(self.capacity),
            store,
            stream: format!("{}stream", self.prefix),
            staleness: self.staleness,
            fallback: self.fallback,
            synced_at: AtomicU64::new(0),
            epoch: Instant::now(),
            overflowed: AtomicBool::new(false),
            ready,
        });
        tokio::spawn(sync::sync(Arc::downgrade(&inner), self.endpoint, self.prefix));
        Ok(ReplicatedDenylist { inner })
    }
}

/// Whether `key` has a hash tag: a `{` followed, later, by a `}` with something between (Redis's rule).
fn has_hash_tag(key: &str) -> bool {
    key.find('{').is_some_and(|open| key[open + 1..].find('}').is_some_and(|close| close > 0))
}

impl fmt::Debug for ReplicatedDenylistBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedDenylistBuilder")
            .field("connection", &self.endpoint.kind())
            .field("prefix", &self.prefix)
            .field("staleness", &self.staleness)
            .field("fallback", &self.fallback)
            .field("capacity", &self.capacity)
            .field("durability", &self.durability)
            .finish()
    }
}

impl Inner {
    fn in_sync(&self) -> bool {
        let synced_at = self.synced_at.load(Ordering::Acquire);
        synced_at != 0
            && !self.overflowed.load(Ordering::Relaxed)
            && self.now_ms().saturating_sub(synced_at) <= self.staleness.as_millis() as u64
    }

    fn now_ms(&self) -> u64 {
        // Never 0, which means "never synced".
        (self.epoch.elapsed().as_millis() as u64).max(1)
    }

    fn heard(&self) {
        self.synced_at.store(self.now_ms(), Ordering::Release);
    }

    /// Applies one revocation to the replica; a full replica is never trusted again.
    fn apply(&self, result: Result<(), DenylistError>) {
        if let Err(error) = result
            && !self.overflowed.swap(true, Ordering::Relaxed)
        {
            tracing::error!(%error, "jwtgate: the replicated denylist is full and missed a revocation; it now always falls back");
        }
    }
}

/// Sets the key and appends the event in one step, so that a snapshot and the stream never disagree.
const REVOKE_SCRIPT: &str = r"
redis.call('SET', KEYS[1], 1, 'EX', tonumber(ARGV[2]))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'k', 'jti', 'v', ARGV[1], 'until', ARGV[3])
return 1
";

/// Raises a subject's cutoff and expiry as [`RedisDenylist`] does (never lowers them), and appends the
/// resulting cutoff to the stream.
const CUTOFF_SCRIPT: &str = concat!(
    raise_cutoff_lua!(),
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'k', 'sub', 'v', ARGV[3], 'cut', cutoff, 'until', ARGV[4])\n",
    "return 1\n",
);

impl Denylist for ReplicatedDenylist {
    fn check(&self, claims: &RegisteredClaims) -> Lookup {
        let inner = &self.inner;
        if inner.in_sync() {
            return Lookup::Ready(Ok(if inner.replica.is_revoked(claims) {
                TokenStatus::Revoked
            } else {
                TokenStatus::Active
            }));
        }
        #[cfg(feature = "metrics")]
        match inner.fallback {
            Fallback::Redis => {
                metrics::counter!("jwtgate_denylist_replica_fallbacks_total", "fallback" => "redis").increment(1)
            }
            Fallback::Closed => {
                metrics::counter!("jwtgate_denylist_replica_fallbacks_total", "fallback" => "closed").increment(1)
            }
        }
        match inner.fallback {
            Fallback::Redis => inner.store.check(claims),
            Fallback::Closed => {
                Lookup::Ready(Err(DenylistError::new("the replicated denylist is not in sync with Redis")))
            }
        }
    }

    fn revoke(&self, jti: &str, until: i64) -> PendingRevocation {
        let ttl = until.saturating_sub(unix_now());
        if ttl <= 0 {
            return Box::pin(std::future::ready(Ok(())));
        }
        let inner = self.inner.clone();
        inner.apply(inner.replica.revoke_now(jti, until));
        static REVOKE: LazyLock<Script> = LazyLock::new(|| Script::new(REVOKE_SCRIPT));
        let mut invocation = REVOKE.prepare_invoke();
        let key = inner.store.token_key(jti);
        invocation.key(&key).key(&inner.stream);
        invocation.arg(jti).arg(ttl).arg(until).arg(STREAM_LENGTH);
        Box::pin(async move { inner.store.write(invocation, &key).await })
    }

    fn revoke_subject(&self, subject: &str, issued_before: i64, until: i64) -> PendingRevocation {
        let ttl = until.saturating_sub(unix_now());
        if ttl <= 0 {
            return Box::pin(std::future::ready(Ok(())));
        }
        let inner = self.inner.clone();
        inner.apply(inner.replica.revoke_subject_now(subject, issued_before, until));
        static CUTOFF: LazyLock<Script> = LazyLock::new(|| Script::new(CUTOFF_SCRIPT));
        let mut invocation = CUTOFF.prepare_invoke();
        let key = inner.store.subject_key(subject);
        invocation.key(&key).key(&inner.stream);
        invocation.arg(issued_before).arg(ttl).arg(subject).arg(until).arg(STREAM_LENGTH);
        Box::pin(async move { inner.store.write(invocation, &key).await })
    }
}

impl fmt::Debug for ReplicatedDenylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedDenylist")
            .field("stream", &self.inner.stream)
            .field("staleness", &self.inner.staleness)
            .field("fallback", &self.inner.fallback)
            .field("in_sync", &self.inner.in_sync())
            .field("len", &self.inner.replica.len())
            .finish()
    }
}
