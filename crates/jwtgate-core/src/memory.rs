//! `MemoryDenylist`: revocations kept in this process, bounded, expiring with the tokens they revoke.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::__private::unix_now;
use crate::RegisteredClaims;
use crate::denylist::{Denylist, DenylistError, Lookup, PendingRevocation, TokenStatus};

const SHARDS: usize = 16;

/// The default capacity of a [`MemoryDenylist`], in entries.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// An in-memory [`Denylist`], for one process.
///
/// - Each entry lives until the `until` it was revoked with (the token's `exp` plus the leeway), so memory
///   is bounded by the number of live revoked tokens. Expired entries are purged as new ones arrive, with
///   no background task.
/// - Lookups answer at once and take a read lock on one of 16 shards: there is no global lock on the
///   request path.
/// - It holds at most `capacity` entries (token ids and subject cutoffs together; default
///   [`DEFAULT_CAPACITY`]). When it is full of live entries, a revocation fails with an error; it is never
///   dropped silently, and no live entry is evicted to make room.
///
/// Clones share the same entries. For a fleet of servers, use a shared store (`jwtgate-redis`).
#[derive(Clone, Debug)]
pub struct MemoryDenylist {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tokens: Shards<i64>,
    subjects: Shards<Cutoff>,
    len: AtomicUsize,
    capacity: usize,
    hasher: RandomState,
}

#[derive(Clone, Copy, Debug)]
struct Cutoff {
    issued_before: i64,
    until: i64,
}

trait Expiring {
    fn until(&self) -> i64;
}

impl Expiring for i64 {
    fn until(&self) -> i64 {
        *self
    }
}

impl Expiring for Cutoff {
    fn until(&self) -> i64 {
        self.until
    }
}

#[derive(Debug)]
struct Shards<V> {
    shards: [RwLock<Shard<V>>; SHARDS],
}

#[derive(Debug)]
struct Shard<V> {
    entries: HashMap<Box<str>, V>,
    /// The shard's size at which expired entries are purged next.
    purge_at: usize,
}

impl<V: Expiring + Copy> Shards<V> {
    fn new() -> Self {
        Self { shards: std::array::from_fn(|_| RwLock::new(Shard { entries: HashMap::new(), purge_at: 64 })) }
    }

    fn get(&self, index: usize, key: &str, now: i64) -> Option<V> {
        let shard = self.shards[index].read().unwrap_or_else(PoisonError::into_inner);
        shard.entries.get(key).copied().filter(|value| value.until() > now)
    }

    /// Inserts or replaces `key`, purging the shard's expired entries when it has grown. `len` counts the
    /// entries of every shard: each purged entry is taken off it at once, whatever happens next, and a new
    /// entry is added only while it is under `capacity`. Returns whether `value` was stored.
    fn insert(
        &self,
        index: usize,
        key: &str,
        value: V,
        now: i64,
        (len, capacity): (&AtomicUsize, usize),
        merge: impl Fn(V, V) -> V,
    ) -> bool {
        let mut shard = self.shards[index].write().unwrap_or_else(PoisonError::into_inner);
        if shard.entries.len() >= shard.purge_at {
            len.fetch_sub(purge(&mut shard.entries, now), Ordering::Relaxed);
            shard.purge_at = (shard.entries.len() * 2).max(64);
        }
        match shard.entries.get_mut(key) {
            Some(existing) if existing.until() > now => *existing = merge(*existing, value),
            Some(existing) => *existing = value,
            None if len.load(Ordering::Relaxed) < capacity => {
                shard.entries.insert(key.into(), value);
                len.fetch_add(1, Ordering::Relaxed);
            }
            None => return false,
        }
        true
    }

    /// Purges every shard's expired entries, and takes them off `len`.
    fn purge_all(&self, now: i64, len: &AtomicUsize) {
        for shard in &self.shards {
            len.fetch_sub(
                purge(&mut shard.write().unwrap_or_else(PoisonError::into_inner).entries, now),
                Ordering::Relaxed,
            );
        }
    }
}

/// Removes the expired entries, and returns how many there were.
fn purge<V: Expiring>(entries: &mut HashMap<Box<str>, V>, now: i64) -> usize {
    let before = entries.len();
    entries.retain(|_, value| value.until() > now);
    before - entries.len()
}

impl Default for MemoryDenylist {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryDenylist {
    /// An empty denylist holding at most [`DEFAULT_CAPACITY`] entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty denylist holding at most `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                tokens: Shards::new(),
                subjects: Shards::new(),
                len: AtomicUsize::new(0),
                capacity,
                hasher: RandomState::new(),
            }),
        }
    }

    /// The number of entries held, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Relaxed)
    }

    /// Whether the denylist holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Revokes `jti` until `until`, at once. See [`Denylist::revoke`].
    pub fn revoke_now(&self, jti: &str, until: i64) -> Result<(), DenylistError> {
        let inner = &*self.inner;
        inner.store(&inner.tokens, jti, until, until, i64::max, unix_now())
    }

    /// Revokes the tokens of `subject` issued before `issued_before`, until `until`, at once. See
    /// [`Denylist::revoke_subject`].
    pub fn revoke_subject_now(&self, subject: &str, issued_before: i64, until: i64) -> Result<(), DenylistError> {
        let inner = &*self.inner;
        let merge = |old: Cutoff, new: Cutoff| Cutoff {
            issued_before: old.issued_before.max(new.issued_before),
            until: old.until.max(new.until),
        };
        inner.store(&inner.subjects, subject, Cutoff { issued_before, until }, until, merge, unix_now())
    }

    /// Whether the token these claims describe is revoked, now.
    pub fn is_revoked(&self, claims: &RegisteredClaims) -> bool {
        self.inner.status(claims, unix_now()) == TokenStatus::Revoked
    }
}

impl Inner {
    fn shard(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn status(&self, claims: &RegisteredClaims, now: i64) -> TokenStatus {
        if let Some(jti) = claims.token_id()
            && self.tokens.get(self.shard(jti), jti, now).is_some()
        {
            return TokenStatus::Revoked;
        }
        if let Some(subject) = claims.subject()
            && let Some(cutoff) = self.subjects.get(self.shard(subject), subject, now)
            && claims.issued_at().is_none_or(|iat| iat < cutoff.issued_before)
        {
            return TokenStatus::Revoked;
        }
        TokenStatus::Active
    }

    fn store<V: Expiring + Copy>(
        &self,
        shards: &Shards<V>,
        key: &str,
        value: V,
        until: i64,
        merge: impl Fn(V, V) -> V,
        now: i64,
    ) -> Result<(), DenylistError> {
        if until <= now {
            // The token has expired already; the validator refuses it without any entry.
            return Ok(());
        }
        let index = self.shard(key);
        let count = (&self.len, self.capacity);
        if shards.insert(index, key, value, now, count, &merge) {
            return Ok(());
        }
        // Full: purge every expired entry, then try once more.
        self.tokens.purge_all(now, &self.len);
        self.subjects.purge_all(now, &self.len);
        if shards.insert(index, key, value, now, count, &merge) {
            return Ok(());
        }
        Err(DenylistError::new(format!(
            "the denylist is full ({} live entries); the revocation was not stored",
            self.capacity
        )))
    }
}

impl Denylist for MemoryDenylist {
    fn check(&self, claims: &RegisteredClaims) -> Lookup {
        Lookup::Ready(Ok(self.inner.status(claims, unix_now())))
    }

    fn revoke(&self, jti: &str, until: i64) -> PendingRevocation {
        Box::pin(std::future::ready(self.revoke_now(jti, until)))
    }

    fn revoke_subject(&self, subject: &str, issued_before: i64, until: i64) -> PendingRevocation {
        Box::pin(std::future::ready(self.revoke_subject_now(subject, issued_before, until)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Text;

    fn claims(jti: Option<&str>, sub: Option<&str>, iat: Option<i64>) -> RegisteredClaims {
        RegisteredClaims { jti: jti.map(Text::owned), sub: sub.map(Text::owned), iat, ..RegisteredClaims::default() }
    }

    #[test]
    fn a_revoked_jti_is_refused_until_its_time() {
        let list = MemoryDenylist::new();
        let now = unix_now();
        list.revoke_now("a", now + 60).unwrap();
        assert!(list.is_revoked(&claims(Some("a"), None, None)));
        assert!(!list.is_revoked(&claims(Some("b"), None, None)));
        assert!(!list.is_revoked(&claims(None, None, None)));
        assert_eq!(list.inner.status(&claims(Some("a"), None, None), now + 61), TokenStatus::Active);
    }

    #[test]
    fn revoking_an_expired_token_stores_nothing() {
        let list = MemoryDenylist::new();
        list.revoke_now("old", unix_now() - 1).unwrap();
        assert!(list.is_empty());
    }

    #[test]
    fn a_subject_cutoff_refuses_older_tokens_and_tokens_without_iat() {
        let list = MemoryDenylist::new();
        let now = unix_now();
        list.revoke_subject_now("ada", now, now + 600).unwrap();
        assert!(list.is_revoked(&claims(None, Some("ada"), Some(now - 10))));
        assert!(list.is_revoked(&claims(Some("x"), Some("ada"), None)));
        assert!(!list.is_revoked(&claims(None, Some("ada"), Some(now))));
        assert!(!list.is_revoked(&claims(None, Some("bob"), Some(now - 10))));
        // A later cutoff extends the earlier one; an earlier one never shortens it.
        list.revoke_subject_now("ada", now - 100, now + 60).unwrap();
        assert!(list.is_revoked(&claims(None, Some("ada"), Some(now - 10))));
    }

    #[test]
    fn a_full_denylist_refuses_new_revocations_and_keeps_live_ones() {
        let list = MemoryDenylist::with_capacity(3);
        let now = unix_now();
        for jti in ["a", "b", "c"] {
            list.revoke_now(jti, now + 60).unwrap();
        }
        let err = list.revoke_now("d", now + 60).unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
        assert!(!list.is_revoked(&claims(Some("d"), None, None)));
        assert!(["a", "b", "c"].iter().all(|jti| list.is_revoked(&claims(Some(jti), None, None))));
        // Revoking an entry that is already there needs no room.
        list.revoke_now("a", now + 120).unwrap();
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn expired_entries_make_room_when_it_is_full() {
        let list = MemoryDenylist::with_capacity(2);
        let inner = &*list.inner;
        let now = unix_now();
        for jti in ["old1", "old2"] {
            inner.store(&inner.tokens, jti, now + 1, now + 1, i64::max, now).unwrap();
        }
        assert!(inner.store(&inner.tokens, "new", now + 60, now + 60, i64::max, now).is_err(), "full of live entries");
        // Five seconds later both have expired: the next revocation purges them instead of failing.
        let later = now + 5;
        inner.store(&inner.tokens, "new", later + 60, later + 60, i64::max, later).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(inner.status(&claims(Some("new"), None, None), later), TokenStatus::Revoked);
        assert_eq!(inner.status(&claims(Some("old1"), None, None), later), TokenStatus::Active);
    }

    #[test]
    fn a_shard_that_purges_yet_finds_no_room_keeps_the_count_true() {
        // Regression (issue 17): the entries a shard purged on its way to "full" were not taken off the
        // count, which then stayed too high for good: every later revocation failed as "full".
        let live = 10;
        let list = MemoryDenylist::with_capacity(64 + live);
        let inner = &*list.inner;
        let now = unix_now();
        let in_shard = |shard: usize| (0..).map(|i| format!("k{i}")).filter(move |key| inner.shard(key) == shard);
        // One shard fills to the size at which it purges, with entries that expire in a second; others
        // hold live entries up to the capacity.
        for key in in_shard(0).take(64) {
            inner.store(&inner.tokens, &key, now + 1, now + 1, i64::max, now).unwrap();
        }
        for key in in_shard(1).take(live) {
            inner.store(&inner.tokens, &key, now + 600, now + 600, i64::max, now).unwrap();
        }
        assert_eq!(list.len(), 64 + live);
        // Later, the first shard's entries have expired: a revocation into it must succeed.
        let later = now + 5;
        let key = in_shard(0).nth(64).unwrap();
        inner.store(&inner.tokens, &key, later + 60, later + 60, i64::max, later).unwrap();
        assert_eq!(list.len(), live + 1, "the count is the live entries");
        assert_eq!(inner.status(&claims(Some(&key), None, None), later), TokenStatus::Revoked);
        // And there is room for the rest of the capacity.
        for key in in_shard(2).take(63) {
            inner.store(&inner.tokens, &key, later + 60, later + 60, i64::max, later).unwrap();
        }
        assert_eq!(list.len(), 64 + live);
    }

    #[test]
    fn a_thousand_revocations_from_eight_threads_are_all_kept() {
        let list = MemoryDenylist::new();
        let until = unix_now() + 600;
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let list = &list;
                scope.spawn(move || {
                    for i in 0..125 {
                        list.revoke_now(&format!("{thread}-{i}"), until).unwrap();
                    }
                });
            }
        });
        assert_eq!(list.len(), 1000);
        for thread in 0..8 {
            for i in 0..125 {
                assert!(list.is_revoked(&claims(Some(&format!("{thread}-{i}")), None, None)));
            }
        }
    }
}
