//! Refresh-token records in Redis, rotated atomically by a Lua script.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use jwtgate_session::{PendingStore, RefreshRecord, RefreshStore, Rotation, StoreError, TokenHash};
use redis::aio::ConnectionManager;
use redis::{RedisError, Script, Value};

use jwtgate_core::__private::unix_now;

use crate::{DEFAULT_TIMEOUT, lazy_connection};

/// The default key prefix of [`RedisRefreshStore`].
pub const DEFAULT_REFRESH_PREFIX: &str = "jwtgate:refresh:";

/// Refresh-token records in Redis, shared by every server of a fleet.
///
/// - A token's record is a hash under its SHA-256 (never the token itself), kept until its session ends, so
///   that a used token is recognized as reuse even after its own expiry.
/// - A revoked family is a marker key, kept until the session ends; a revocation is never shortened.
/// - [`rotate`](RefreshStore::rotate) is one Lua script, which Redis runs atomically: of two refreshes with
///   one token, exactly one finds it unused; the other finds it used, and revokes the family.
///
/// It needs a single Redis server (or a primary): the script reads a family key it learns from the record,
/// which a Redis Cluster could place on another node.
#[derive(Clone)]
pub struct RedisRefreshStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
}

/// Rotates a refresh token. KEYS: the presented token's record, the next token's record. ARGV: now, the
/// prefix, the next record's id, its expiry, its DPoP key's thumbprint (empty for none). Records live until
/// their session's end (`sexp`), so that a used token is still recognized after its own expiry. Answers `{0}`
/// invalid, `{2, family}` reused (the family is now revoked until the session's end), `{1, user, family,
/// expiry, id, session end, jkt}` rotated.
const ROTATE_SCRIPT: &str = r"
local rec = redis.call('HMGET', KEYS[1], 'user', 'family', 'exp', 'used', 'id', 'sexp', 'jkt')
if not rec[1] then return {0} end
local now = tonumber(ARGV[1])
local sexp = tonumber(rec[6])
local family = ARGV[2] .. 'family:' .. rec[2]
if redis.call('EXISTS', family) == 1 then return {0} end
if rec[4] == '1' then
  redis.call('SET', family, '1', 'EX', math.max(sexp - now, 1))
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
        let conn = lazy_connection(url)?;
        Ok(Self { conn, prefix: DEFAULT_REFRESH_PREFIX.into(), timeout: DEFAULT_TIMEOUT })
    }

    /// The prefix of every key this store writes. Default [`DEFAULT_REFRESH_PREFIX`].
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

    fn token_key(&self, hash: &TokenHash) -> String {
        format!("{}token:{}", self.prefix, hash.to_hex())
    }

    fn family_key(&self, family: &str) -> String {
        format!("{}family:{family}", self.prefix)
    }

    fn run<T: Send + 'static>(
        &self,
        query: impl Future<Output = Result<T, RedisError>> + Send + 'static,
    ) -> PendingStore<T> {
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, query).await {
                Ok(result) => result.map_err(|err| StoreError(format!("Redis: {}", err.kind_name()))),
                Err(_) => Err(StoreError(format!("Redis did not answer within {timeout:?}"))),
            }
        })
    }
}

/// The kind of a Redis error, never its text (which may quote a key or a value).
trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for RedisError {
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
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
        let mut pipeline = redis::pipe();
        let key = self.token_key(&record.hash);
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
        let mut conn = self.conn.clone();
        self.run(async move { pipeline.query_async::<()>(&mut conn).await })
    }

    fn rotate(&self, presented: TokenHash, next: RefreshRecord, now: i64) -> PendingStore<Rotation> {
        static ROTATE: LazyLock<Script> = LazyLock::new(|| Script::new(ROTATE_SCRIPT));
        let mut invocation = ROTATE.prepare_invoke();
        invocation
            .key(self.token_key(&presented))
            .key(self.token_key(&next.hash))
            .arg(now)
            .arg(&*self.prefix)
            .arg(&next.id)
            .arg(next.expires_at)
            .arg(next.jkt.as_deref().unwrap_or_default());
        let mut conn = self.conn.clone();
        self.run(async move {
            let answer: Vec<Value> = invocation.invoke_async(&mut conn).await?;
            let field = |index: usize| answer.get(index).and_then(text).unwrap_or_default();
            Ok(match field(0).as_str() {
                "1" => Rotation::Rotated {
                    previous: RefreshRecord {
                        id: field(4),
                        user: field(1),
                        family: field(2),
                        expires_at: field(3).parse().unwrap_or(0),
                        session_expires_at: field(5).parse().unwrap_or(0),
                        used: true,
                        revoked: false,
                        hash: presented,
                        jkt: Some(field(6)).filter(|jkt| !jkt.is_empty()),
                    },
                },
                "2" => Rotation::Reused { family: field(1) },
                _ => Rotation::Invalid,
            })
        })
    }

    fn revoke_family(&self, family: &str, until: i64) -> PendingStore<()> {
        static REVOKE: LazyLock<Script> = LazyLock::new(|| Script::new(REVOKE_SCRIPT));
        let mut invocation = REVOKE.prepare_invoke();
        invocation.key(self.family_key(family)).arg(until.saturating_sub(unix_now()).max(1));
        let mut conn = self.conn.clone();
        self.run(async move { invocation.invoke_async::<()>(&mut conn).await })
    }

    fn find(&self, hash: TokenHash) -> PendingStore<Option<RefreshRecord>> {
        let key = self.token_key(&hash);
        let prefix = self.prefix.clone();
        let mut conn = self.conn.clone();
        self.run(async move {
            let fields: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&key)
                .arg(&["id", "user", "family", "exp", "used", "sexp", "jkt"])
                .query_async(&mut conn)
                .await?;
            let [Some(id), Some(user), Some(family), Some(exp), Some(used), Some(sexp), jkt] =
                <[Option<String>; 7]>::try_from(fields).unwrap_or_default()
            else {
                return Ok(None);
            };
            let revoked: bool =
                redis::cmd("EXISTS").arg(format!("{prefix}family:{family}")).query_async(&mut conn).await?;
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
        f.debug_struct("RedisRefreshStore").field("prefix", &self.prefix).field("timeout", &self.timeout).finish()
    }
}
