//! Refresh-token records in Redis, rotated atomically by a Lua script.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use jwtgate_core::__private::unix_now;
use jwtgate_session::{PendingStore, RefreshRecord, RefreshStore, Rotation, StoreError, TokenHash};
use redis::{RedisError, Script, Value};

use crate::DEFAULT_TIMEOUT;
use crate::conn::{Connections, Durability, Endpoint};

/// The default key prefix of [`RedisRefreshStore`].
pub const DEFAULT_REFRESH_PREFIX: &str = "jwtgate:refresh:";

/// Refresh-token records in Redis, shared by every server of a fleet: one server, or a Redis Cluster.
///
/// - A token's record is a hash under its SHA-256 (never the token itself), kept until its session ends, so
///   that a used token is recognized as reuse even after its own expiry.
/// - A revoked family is a marker key, kept until the session ends; a revocation is never shortened.
/// - [`rotate`](RefreshStore::rotate) is one Lua script, which Redis runs atomically: of two refreshes with
///   one token, exactly one finds it unused; the other finds it used, and revokes the family.
///
/// Keys, for a cluster: the script touches the presented token's record, the next one's, and the family's
/// marker, so the three share a slot: each record key and the marker carry the family id as a hash tag,
/// `<prefix>{<family>}:token:<hash>` and `<prefix>{<family>}:revoked`. Families, and so sessions, spread over
/// every shard. A token names no family, so a small index key, `<prefix>index:<hash>`, holding the family id,
/// finds it; it lives as long as the record. The prefix must not contain `{` or `}`.
#[derive(Clone)]
pub struct RedisRefreshStore {
    redis: Connections,
    prefix: Arc<str>,
    timeout: Duration,
}

/// Rotates a refresh token. KEYS: the presented token's record, the next token's record, the family's marker.
/// ARGV: now, the family id, the next record's id, its expiry, its DPoP key's thumbprint (empty for none).
/// Records live until their session's end (`sexp`), so that a used token is still recognized after its own
/// expiry. Answers `{0}` invalid, `{2, family}` reused (the family is now revoked until the session's end),
/// `{1, user, family, expiry, id, session end, jkt}` rotated.
const ROTATE_SCRIPT: &str = r"
local rec = redis.call('HMGET', KEYS[1], 'user', 'family', 'exp', 'used', 'id', 'sexp', 'jkt')
if not rec[1] or rec[2] ~= ARGV[2] then return {0} end
local now = tonumber(ARGV[1])
local sexp = tonumber(rec[6])
if redis.call('EXISTS', KEYS[3]) == 1 then return {0} end
if rec[4] == '1' then
  redis.call('SET', KEYS[3], '1', 'EX', math.max(sexp - now, 1))
  return {2, rec[2]}
end
if tonumber(rec[3]) <= now then return {0} end
local exp = math.min(tonumber(ARGV[4]), sexp)
redis.call('HSET', KEYS[1], 'used', '1')
redis.call('HSET', KEYS[2], 'id', ARGV[3], 'user', rec[1], 'family', rec[2], 'exp', exp, 'used', '0', 'sexp', sexp, 'jkt', ARGV[5])
redis.call('EXPIRE', KEYS[2], math.max(sexp - now, 1))
return {1, rec[1], rec[2], rec[3], rec[5], rec[6], rec[7] or ''}
";

/// Revokes a family until ARGV[1] seconds from now, never shortening a revocation already there.
const REVOKE_SCRIPT: &str = r"
local ttl = tonumber(ARGV[1])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('SET', KEYS[1], '1', 'EX', ttl) end
return 1
";

impl RedisRefreshStore {
    /// A store in the Redis server at `url`. It connects lazily: this fails only for a malformed URL. Call it
    /// inside a Tokio runtime.
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

    fn on(endpoint: Endpoint) -> Result<Self, RedisError> {
        Ok(Self { redis: Connections::new(endpoint)?, prefix: DEFAULT_REFRESH_PREFIX.into(), timeout: DEFAULT_TIMEOUT })
    }

    /// Speaks TLS to Redis with `tls`'s certificates (the URLs must be `rediss://`). Fails for a certificate or
    /// a key that does not parse, or a `redis://` URL.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn with_tls(mut self, tls: crate::RedisTls) -> Result<Self, RedisError> {
        self.redis = self.redis.with_tls(tls)?;
        Ok(self)
    }

    /// The prefix of every key this store writes. Default [`DEFAULT_REFRESH_PREFIX`]. It must not contain `{`
    /// or `}`, which would change the keys' hash tags on a cluster.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// How long an operation may take before it counts as a failure. Default 2 s.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How durable a new session, a rotation and a family's revocation must be before they are confirmed. Default
    /// [`Durability::Primary`]. With [`Durability::Replicas`], a rotation confirmed to the client survives its
    /// primary's failover: the used token stays used, so a replay is caught as reuse.
    pub fn with_durability(mut self, durability: Durability) -> Result<Self, RedisError> {
        self.redis = self.redis.with_durability(durability)?;
        Ok(self)
    }

    fn index_key(&self, hash: &TokenHash) -> String {
        format!("{}index:{}", self.prefix, hash.to_hex())
    }

    fn token_key(&self, family: &str, hash: &TokenHash) -> String {
        format!("{}{{{family}}}:token:{}", self.prefix, hash.to_hex())
    }

    fn family_key(&self, family: &str) -> String {
        format!("{}{{{family}}}:revoked", self.prefix)
    }

    fn run<T: Send + 'static>(
        &self,
        query: impl Future<Output = Result<T, RedisError>> + Send + 'static,
    ) -> PendingStore<T> {
        let timeout = self.timeout + self.redis.durability.extra_time();
        Box::pin(async move {
            match tokio::time::timeout(timeout, query).await {
                Ok(result) => result.map_err(|err| StoreError(format!("Redis: {}", describe(&err)))),
                Err(_) => Err(StoreError(format!("Redis did not answer within {timeout:?}"))),
            }
        })
    }
}

/// A Redis error in words safe to show: its kind, or this crate's own message (the replicas that did not
/// confirm a write); never a key or a value.
fn describe(error: &RedisError) -> String {
    match error.kind() {
        redis::ErrorKind::Io if error.to_string().contains("replicas required") => error.to_string(),
        kind => format!("{kind:?}"),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(number) => Some(number.to_string()),
        _ => None,
    }
}

impl RefreshStore for RedisRefreshStore {
    fn insert(&self, record: RefreshRecord) -> PendingStore<()> {
        let ttl = record.session_expires_at.saturating_sub(unix_now()).max(1);
        let key = self.token_key(&record.family, &record.hash);
        let index = self.index_key(&record.hash);
        let mut index_command = redis::cmd("SET");
        index_command.arg(&index).arg(&record.family).arg("EX").arg(ttl);
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .hset_multiple(
                &key,
                &[
                    ("id", record.id),
                    ("user", record.user),
                    ("family", record.family),
                    ("exp", record.expires_at.to_string()),
                    ("used", "0".to_owned()),
                    ("sexp", record.session_expires_at.to_string()),
                    ("jkt", record.jkt.unwrap_or_default()),
                ],
            )
            .ignore()
            .expire(&key, ttl)
            .ignore();
        let (writer, durability) = (self.redis.writer.clone(), self.redis.durability);
        self.run(async move {
            writer.pipeline::<()>(&pipeline).await?;
            writer.query::<()>(&index_command).await?;
            writer.confirm(&key, durability).await?;
            writer.confirm(&index, durability).await
        })
    }

    fn rotate(&self, presented: TokenHash, next: RefreshRecord, now: i64) -> PendingStore<Rotation> {
        static ROTATE: LazyLock<Script> = LazyLock::new(|| Script::new(ROTATE_SCRIPT));
        let this = self.clone();
        let (writer, durability) = (self.redis.writer.clone(), self.redis.durability);
        self.run(async move {
            // The family, by the index; then the rotation, on the family's slot.
            let Some(family) =
                this.redis.conn.query::<Option<String>>(redis::cmd("GET").arg(this.index_key(&presented))).await?
            else {
                return Ok(Rotation::Invalid);
            };
            let presented_key = this.token_key(&family, &presented);
            let mut invocation = ROTATE.prepare_invoke();
            invocation
                .key(&presented_key)
                .key(this.token_key(&family, &next.hash))
                .key(this.family_key(&family))
                .arg(now)
                .arg(&family)
                .arg(&next.id)
                .arg(next.expires_at)
                .arg(next.jkt.as_deref().unwrap_or_default());
            let answer: Vec<Value> = writer.invoke(&invocation).await?;
            let field = |index: usize| answer.get(index).and_then(text).unwrap_or_default();
            Ok(match field(0).as_str() {
                "1" => {
                    let session_expires_at: i64 = field(5).parse().unwrap_or(0);
                    // The next token's index, for as long as its record lives; before the token leaves.
                    let index = this.index_key(&next.hash);
                    let ttl = session_expires_at.saturating_sub(now).max(1);
                    writer.query::<()>(redis::cmd("SET").arg(&index).arg(&family).arg("EX").arg(ttl)).await?;
                    writer.confirm(&presented_key, durability).await?;
                    writer.confirm(&index, durability).await?;
                    Rotation::Rotated {
                        previous: RefreshRecord {
                            id: field(4),
                            user: field(1),
                            family: field(2),
                            expires_at: field(3).parse().unwrap_or(0),
                            session_expires_at,
                            used: true,
                            revoked: false,
                            hash: presented,
                            jkt: Some(field(6)).filter(|jkt| !jkt.is_empty()),
                        },
                    }
                }
                "2" => {
                    writer.confirm(&presented_key, durability).await?;
                    Rotation::Reused { family: field(1) }
                }
                _ => Rotation::Invalid,
            })
        })
    }

    fn revoke_family(&self, family: &str, until: i64) -> PendingStore<()> {
        static REVOKE: LazyLock<Script> = LazyLock::new(|| Script::new(REVOKE_SCRIPT));
        let key = self.family_key(family);
        let mut invocation = REVOKE.prepare_invoke();
        invocation.key(&key).arg(until.saturating_sub(unix_now()).max(1));
        let (writer, durability) = (self.redis.writer.clone(), self.redis.durability);
        self.run(async move {
            writer.invoke::<()>(&invocation).await?;
            writer.confirm(&key, durability).await
        })
    }

    fn find(&self, hash: TokenHash) -> PendingStore<Option<RefreshRecord>> {
        let this = self.clone();
        self.run(async move {
            let Some(family) =
                this.redis.conn.query::<Option<String>>(redis::cmd("GET").arg(this.index_key(&hash))).await?
            else {
                return Ok(None);
            };
            // The record and the marker share the family's slot: one pipeline.
            let mut pipeline = redis::pipe();
            pipeline
                .cmd("HMGET")
                .arg(this.token_key(&family, &hash))
                .arg(&["id", "user", "family", "exp", "used", "sexp", "jkt"])
                .exists(this.family_key(&family));
            let (fields, revoked): (Vec<Option<String>>, bool) = this.redis.conn.pipeline(&pipeline).await?;
            let [Some(id), Some(user), Some(family), Some(exp), Some(used), Some(sexp), jkt] =
                <[Option<String>; 7]>::try_from(fields).unwrap_or_default()
            else {
                return Ok(None);
            };
            Ok(Some(RefreshRecord {
                id,
                user,
                family,
                expires_at: exp.parse().unwrap_or(0),
                session_expires_at: sexp.parse().unwrap_or(0),
                used: used == "1",
                revoked,
                hash,
                jkt: jkt.filter(|jkt| !jkt.is_empty()),
            }))
        })
    }
}

impl fmt::Debug for RedisRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshStore")
            .field("connection", &self.redis.conn.kind())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("durability", &self.redis.durability)
            .finish()
    }
}
