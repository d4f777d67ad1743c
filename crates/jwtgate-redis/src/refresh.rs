//! Refresh-token records in Redis, rotated atomically by a Lua script.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use jwtgate_session::{PendingStore, RefreshRecord, RefreshStore, Rotation, StoreError, TokenHash};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, Value};

use crate::{DEFAULT_TIMEOUT, unix_now};

/// The default key prefix of [`RedisRefreshStore`].
pub const DEFAULT_REFRESH_PREFIX: &str = "jwtgate:refresh:";

/// Refresh-token records in Redis, shared by every server of a fleet.
///
/// - A token's record is a hash under its SHA-256 (never the token itself), expiring with the token.
/// - A revoked family is a marker key, kept as long as any of its tokens could still be presented.
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
    family_ttl: Duration,
}

/// Rotates a refresh token. KEYS: the presented token's record, the next token's record. ARGV: now, the
/// prefix, the next record's id, its expiry, its time to live. Answers `{0}` invalid, `{2, family}` reused
/// (the family is now revoked), `{1, user, family, expiry, id}` rotated.
const ROTATE_SCRIPT: &str = r"
local rec = redis.call('HMGET', KEYS[1], 'user', 'family', 'exp', 'used', 'id')
if not rec[1] then return {0} end
local now = tonumber(ARGV[1])
if tonumber(rec[3]) <= now then return {0} end
local family = ARGV[2] .. 'family:' .. rec[2]
if redis.call('EXISTS', family) == 1 then return {0} end
local ttl = tonumber(ARGV[5])
if rec[4] == '1' then
  redis.call('SET', family, '1', 'EX', ttl)
  return {2, rec[2]}
end
redis.call('HSET', KEYS[1], 'used', '1')
redis.call('HSET', KEYS[2], 'id', ARGV[3], 'user', rec[1], 'family', rec[2], 'exp', ARGV[4], 'used', '0')
redis.call('EXPIRE', KEYS[2], ttl)
return {1, rec[1], rec[2], rec[3], rec[5]}
";

impl RedisRefreshStore {
    /// A store in the Redis server at `url`. It connects lazily: this fails only for a malformed URL. Call it
    /// inside a Tokio runtime.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            prefix: DEFAULT_REFRESH_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
            family_ttl: jwtgate_session::DEFAULT_REFRESH_LIFETIME,
        })
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

    /// How long a logout's family revocation is kept: at least your refresh-token lifetime. Default 14
    /// days, [`DEFAULT_REFRESH_LIFETIME`](jwtgate_session::DEFAULT_REFRESH_LIFETIME).
    #[must_use]
    pub fn with_family_ttl(mut self, ttl: Duration) -> Self {
        self.family_ttl = ttl;
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
        let ttl = record.expires_at.saturating_sub(unix_now()).max(1);
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
        let ttl = next.expires_at.saturating_sub(now).max(1);
        let mut invocation = ROTATE.prepare_invoke();
        invocation
            .key(self.token_key(&presented))
            .key(self.token_key(&next.hash))
            .arg(now)
            .arg(&*self.prefix)
            .arg(&next.id)
            .arg(next.expires_at)
            .arg(ttl);
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
                        used: true,
                        revoked: false,
                        hash: presented,
                    },
                },
                "2" => Rotation::Reused { family: field(1) },
                _ => Rotation::Invalid,
            })
        })
    }

    fn revoke_family(&self, family: &str) -> PendingStore<()> {
        let key = self.family_key(family);
        let ttl = self.family_ttl.as_secs().max(1);
        let mut conn = self.conn.clone();
        self.run(async move { redis::cmd("SET").arg(key).arg(1).arg("EX").arg(ttl).query_async::<()>(&mut conn).await })
    }

    fn find(&self, hash: TokenHash) -> PendingStore<Option<RefreshRecord>> {
        let key = self.token_key(&hash);
        let prefix = self.prefix.clone();
        let mut conn = self.conn.clone();
        self.run(async move {
            let fields: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&key)
                .arg(&["id", "user", "family", "exp", "used"])
                .query_async(&mut conn)
                .await?;
            let [Some(id), Some(user), Some(family), Some(exp), Some(used)] =
                <[Option<String>; 5]>::try_from(fields).unwrap_or_default()
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
                used: used == "1",
                revoked,
                hash,
            }))
        })
    }
}

impl fmt::Debug for RedisRefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("family_ttl", &self.family_ttl)
            .finish()
    }
}
