//! Refresh tokens: opaque, stored hashed, rotated on every use, with reuse detection.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use jwtgate_core::__private::unix_now;
use jwtgate_core::ConfigError;

use crate::issuer::random_id;

/// The default lifetime of a refresh token: 14 days.
pub const DEFAULT_REFRESH_LIFETIME: Duration = Duration::from_secs(14 * 24 * 3600);
/// The default longest life of a session, however often it is refreshed: 30 days.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// An opaque refresh token: 256 random bits, base64url. Only its SHA-256 hash is stored. `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// A fresh token.
    pub fn generate() -> Result<Self, ConfigError> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| crate::issuer_error("the system random generator failed".to_owned()))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The token as the client holds it. Send it (in an HttpOnly cookie, ideally); never log it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SHA-256 hash of a presented token: what stores keep and look up.
    pub fn hash(presented: &str) -> TokenHash {
        let digest = digest::digest(&digest::SHA256, presented.as_bytes());
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.as_ref());
        TokenHash(hash)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// The SHA-256 hash of a refresh token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as lowercase hex, for store keys.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
    }

    /// Compares in constant time (aws-lc-rs), so that how long a comparison takes says nothing of the hash.
    pub fn matches(&self, other: &TokenHash) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &other.0).is_ok()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// What a store keeps of one refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshRecord {
    /// The record's id.
    pub id: String,
    /// The user it was issued to (the access tokens' `sub`).
    pub user: String,
    /// The family: every token rotated from one login shares it.
    pub family: String,
    /// When it expires, in seconds since the Unix epoch: never after `session_expires_at`.
    pub expires_at: i64,
    /// When the whole session (the family) ends, however often it is refreshed. Records are kept until then,
    /// so that a used token is recognized as reuse even after its own expiry.
    pub session_expires_at: i64,
    /// Whether it has been exchanged already. Presenting it again is reuse.
    pub used: bool,
    /// Whether its family was revoked (logout, or reuse).
    pub revoked: bool,
    /// The token's hash.
    pub hash: TokenHash,
    /// The thumbprint of the DPoP key the token is bound to (RFC 9449 §5), if any: it is exchanged only with a
    /// proof of that key.
    pub jkt: Option<String>,
}

/// What a rotation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid and unused: it is now used, and `next` is stored in its family.
    Rotated {
        /// The record of the token that was presented, now used.
        previous: RefreshRecord,
    },
    /// No such token, or it has expired, or its family is revoked.
    Invalid,
    /// The token had been used already: the whole family is now revoked.
    Reused {
        /// The family that was revoked.
        family: String,
    },
}

/// A store failed: the rotation did not happen. Its message never holds a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// A store's answer, later.
pub type PendingStore<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// Where refresh-token records live. [`MemoryRefreshStore`] keeps them in this process; `jwtgate-redis`
/// has one for a fleet.
///
/// [`rotate`](Self::rotate) must be atomic: of two rotations with the same token, exactly one finds it
/// unused; the other finds it used, and revokes the family.
pub trait RefreshStore: Send + Sync + 'static {
    /// Stores the first token of a new family (a login).
    fn insert(&self, record: RefreshRecord) -> PendingStore<()>;

    /// Atomically: finds the record with `presented`'s hash. Unknown, or of a revoked family:
    /// [`Rotation::Invalid`]. Used already (expired or not): revokes its family until the session's end,
    /// [`Rotation::Reused`]. Expired (at `now`): [`Rotation::Invalid`]. Otherwise marks it used, stores `next`
    /// in its family (the store sets `next.family`, `next.user` and `next.session_expires_at` from the
    /// presented record, caps `next.expires_at` at the session's end, and keeps `next.jkt` as given), and
    /// answers [`Rotation::Rotated`] with the presented record, its `jkt` included.
    fn rotate(&self, presented: TokenHash, next: RefreshRecord, now: i64) -> PendingStore<Rotation>;

    /// Revokes every token of `family` (logout) until `until` (seconds since the Unix epoch): at least the
    /// end of the session. A revocation is never shortened.
    fn revoke_family(&self, family: &str, until: i64) -> PendingStore<()>;

    /// The record with this hash, if any (for logout, and for tests).
    fn find(&self, hash: TokenHash) -> PendingStore<Option<RefreshRecord>>;
}

impl<S: RefreshStore + ?Sized> RefreshStore for Arc<S> {
    fn insert(&self, record: RefreshRecord) -> PendingStore<()> {
        (**self).insert(record)
    }

    fn rotate(&self, presented: TokenHash, next: RefreshRecord, now: i64) -> PendingStore<Rotation> {
        (**self).rotate(presented, next, now)
    }

    fn revoke_family(&self, family: &str, until: i64) -> PendingStore<()> {
        (**self).revoke_family(family, until)
    }

    fn find(&self, hash: TokenHash) -> PendingStore<Option<RefreshRecord>> {
        (**self).find(hash)
    }
}

/// The default capacity of a [`MemoryRefreshStore`]: refresh-token records and revoked families together.
pub const DEFAULT_REFRESH_CAPACITY: usize = 1_000_000;

/// Refresh-token records in this process's memory, for one server. A restart forgets every session.
///
/// - Each operation costs the same whatever the number of sessions: records are found by hash, a family is
///   revoked with one marker (its records are not visited), and records whose session has ended are purged
///   in batches, each time the store has doubled since the last purge.
/// - It holds at most `capacity` entries (records and revoked families together; default
///   [`DEFAULT_REFRESH_CAPACITY`]). When it is full of live ones, a login or a refresh fails with a
///   [`StoreError`], and nothing live is dropped to make room.
#[derive(Clone, Debug)]
pub struct MemoryRefreshStore {
    state: Arc<Mutex<MemoryState>>,
}

#[derive(Debug)]
struct MemoryState {
    by_hash: HashMap<TokenHash, RefreshRecord>,
    /// Families revoked, until their last token's expiry.
    revoked: HashMap<String, i64>,
    capacity: usize,
    /// The number of entries at which ended sessions are purged next.
    purge_at: usize,
}

impl Default for MemoryRefreshStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_REFRESH_CAPACITY)
    }
}

impl MemoryRefreshStore {
    /// An empty store holding at most [`DEFAULT_REFRESH_CAPACITY`] entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store holding at most `capacity` entries (records and revoked families together).
    pub fn with_capacity(capacity: usize) -> Self {
        let state = MemoryState { by_hash: HashMap::new(), revoked: HashMap::new(), capacity, purge_at: 64 };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl MemoryState {
    fn len(&self) -> usize {
        self.by_hash.len() + self.revoked.len()
    }

    /// Makes room for one more entry: purges ended sessions when the store has doubled since the last purge
    /// (amortized, a constant cost per entry), or when it is full. Fails when it is full of live entries.
    fn make_room(&mut self, now: i64) -> Result<(), StoreError> {
        if self.len() >= self.purge_at || self.len() >= self.capacity {
            self.by_hash.retain(|_, record| record.session_expires_at > now);
            self.revoked.retain(|_, until| *until > now);
            self.purge_at = (self.len() * 2).max(64);
        }
        if self.len() >= self.capacity {
            return Err(StoreError(format!(
                "the refresh-token store is full ({} live entries); the session was not stored",
                self.capacity
            )));
        }
        Ok(())
    }

    fn is_revoked(&self, family: &str) -> bool {
        self.revoked.contains_key(family)
    }

    /// Revokes a family with one marker, kept until `until`; its records are not visited.
    fn revoke(&mut self, family: &str, until: i64) {
        match self.revoked.get_mut(family) {
            Some(kept) => *kept = (*kept).max(until),
            // A revocation is never dropped for want of room: it is what ends a stolen session.
            None => drop(self.revoked.insert(family.to_owned(), until)),
        }
    }
}

impl RefreshStore for MemoryRefreshStore {
    fn insert(&self, record: RefreshRecord) -> PendingStore<()> {
        let stored = self.with(|state| {
            state.make_room(unix_now())?;
            state.by_hash.insert(record.hash, record);
            Ok(())
        });
        Box::pin(std::future::ready(stored))
    }

    fn rotate(&self, presented: TokenHash, mut next: RefreshRecord, now: i64) -> PendingStore<Rotation> {
        let rotation = self.with(|state| {
            let Some(record) = state.by_hash.get(&presented).filter(|record| record.hash.matches(&presented)) else {
                return Ok(Rotation::Invalid);
            };
            if record.revoked || state.is_revoked(&record.family) {
                return Ok(Rotation::Invalid);
            }
            if record.used {
                let (family, until) = (record.family.clone(), record.session_expires_at);
                state.revoke(&family, until);
                return Ok(Rotation::Reused { family });
            }
            if record.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            // Room for the next record before anything changes: a full store refuses the refresh without
            // marking the token used, so the session goes on once there is room.
            state.make_room(now)?;
            let Some(record) = state.by_hash.get_mut(&presented) else { return Ok(Rotation::Invalid) };
            record.used = true;
            let previous = record.clone();
            next.family = previous.family.clone();
            next.user = previous.user.clone();
            next.session_expires_at = previous.session_expires_at;
            next.expires_at = next.expires_at.min(previous.session_expires_at);
            state.by_hash.insert(next.hash, next);
            Ok(Rotation::Rotated { previous })
        });
        Box::pin(std::future::ready(rotation))
    }

    fn revoke_family(&self, family: &str, until: i64) -> PendingStore<()> {
        self.with(|state| state.revoke(family, until));
        Box::pin(std::future::ready(Ok(())))
    }

    fn find(&self, hash: TokenHash) -> PendingStore<Option<RefreshRecord>> {
        let found = self.with(|state| {
            let mut record = state.by_hash.get(&hash).cloned()?;
            record.revoked |= state.is_revoked(&record.family);
            Some(record)
        });
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// A new refresh token and the record to store for it, valid for `lifetime` within a session that ends at
/// `session_expires_at`.
pub(crate) fn new_record(
    user: &str,
    family: &str,
    lifetime: Duration,
    session_expires_at: i64,
    jkt: Option<&str>,
) -> Result<(RefreshToken, RefreshRecord), ConfigError> {
    let token = RefreshToken::generate()?;
    let record = RefreshRecord {
        id: random_id()?,
        user: user.to_owned(),
        family: family.to_owned(),
        expires_at: after(lifetime).min(session_expires_at),
        session_expires_at,
        used: false,
        revoked: false,
        hash: RefreshToken::hash(token.as_str()),
        jkt: jkt.map(str::to_owned),
    };
    Ok((token, record))
}

/// `duration` from now, in seconds since the Unix epoch.
pub(crate) fn after(duration: Duration) -> i64 {
    unix_now().saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}
