//! Replay of DPoP proofs (RFC 9449 §11.1): each proof is accepted once within its window.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

/// Whether a proof is used for the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProofUse {
    /// First seen: the request goes on.
    First,
    /// Seen before: the request is refused with 401 `invalid_dpop_proof`.
    Replayed,
}

/// A replay check that has not finished.
pub type PendingReplayCheck = Pin<Box<dyn Future<Output = Result<ProofUse, ReplayError>> + Send + 'static>>;

/// The answer of [`ReplayStore::record`]: at once (in memory), or later (over the network).
pub enum ReplayCheck {
    /// The answer is known now.
    Ready(Result<ProofUse, ReplayError>),
    /// The answer comes from this future.
    Pending(PendingReplayCheck),
}

impl fmt::Debug for ReplayCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(result) => f.debug_tuple("Ready").field(result).finish(),
            Self::Pending(_) => f.write_str("Pending(..)"),
        }
    }
}

/// Where used DPoP proofs are remembered, for as long as they could be accepted.
///
/// The layer calls [`record`](ReplayStore::record) for every proof that passed its checks. An error means the
/// store could not tell; the layer then refuses the request with 503 and `Retry-After`: a proof is never
/// accepted unchecked.
pub trait ReplayStore: Send + Sync + 'static {
    /// Records the proof `jti` of the key whose thumbprint is `jkt` as used until `until` (seconds since the
    /// Unix epoch: the end of the proof's `iat` window), and says whether it had been used already. Recording
    /// and asking are one step, so that two requests with the same proof can never both be first.
    fn record(&self, jkt: &str, jti: &str, until: i64) -> ReplayCheck;
}

impl<S: ReplayStore + ?Sized> ReplayStore for Arc<S> {
    fn record(&self, jkt: &str, jti: &str, until: i64) -> ReplayCheck {
        (**self).record(jkt, jti, until)
    }
}

/// A replay store could not tell whether a proof is new: it is full, or unreachable.
#[derive(Debug)]
pub struct ReplayError {
    kind: ReplayErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The kinds of [`ReplayError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplayErrorKind {
    /// The store holds as many proofs as it may, or the key holds its quota.
    Full,
    /// The store did not answer.
    Unavailable,
}

impl ReplayError {
    /// The store is full, or the key has used its quota.
    pub fn full() -> Self {
        Self { kind: ReplayErrorKind::Full, source: None }
    }

    /// The store could not answer; `source` says why, for logs.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { kind: ReplayErrorKind::Unavailable, source: Some(source.into()) }
    }

    /// Why.
    pub fn kind(&self) -> ReplayErrorKind {
        self.kind
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.source) {
            (ReplayErrorKind::Full, _) => f.write_str("the DPoP replay store is full"),
            (_, Some(source)) => write!(f, "the DPoP replay store is unavailable: {source}"),
            (_, None) => f.write_str("the DPoP replay store is unavailable"),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}

/// How many proofs [`MemoryReplayStore`] remembers by default.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// How many proofs of one key [`MemoryReplayStore`] remembers by default.
pub const DEFAULT_REPLAY_QUOTA_PER_KEY: usize = 1_000;

/// A [`ReplayStore`] in this process's memory: for one instance, or a fleet whose load balancer keeps each
/// client on one instance. A fleet that spreads a client's requests needs a shared store (Redis).
///
/// It is bounded twice: at most `capacity` proofs in all, and at most `quota_per_key` proofs of one key at a
/// time, so that one client cannot fill it for everyone (Spring Security's `DPoPProofReplayValidator` does
/// the same). A proof is forgotten once its window has passed, never sooner. When the store or the key's
/// quota is full, [`record`](ReplayStore::record) answers [`ReplayErrorKind::Full`]: the request is refused,
/// never let through unchecked.
///
/// Proofs are remembered by a 128-bit keyed hash (two SipHash values under a key drawn at random for each store,
/// of differently tagged inputs) of their key's thumbprint and `jti`: 16 bytes each, whatever their size. Nobody who does not know the keys can make
/// two proofs collide; and two that did would only refuse the second as a replay, never accept a replay.
pub struct MemoryReplayStore {
    state: Mutex<State>,
    capacity: usize,
    quota_per_key: usize,
    /// Keys the hashes: a proof's two halves and a key's thumbprint are hashed under it with distinct tags.
    hasher: RandomState,
}

/// Hashes that are already uniformly random and secret are used as they are.
type Prehashed = BuildHasherDefault<PrehashedHasher>;

#[derive(Default)]
struct State {
    /// Proof hash → until when it is remembered.
    seen: HashMap<u128, i64, Prehashed>,
    /// Proofs of each key (by the hash of its thumbprint) still remembered.
    per_key: HashMap<u64, usize, Prehashed>,
    /// The proofs in the order they came: (until, proof, key). Windows are nearly equal, so the oldest come
    /// first and expire first; one that came later but expires sooner waits behind, which only costs memory.
    order: VecDeque<(i64, u128, u64)>,
}

/// A `Hasher` for keys that are keyed hashes already: it keeps their low 64 bits.
#[derive(Default)]
struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` and `write_u128` are used; any other input is folded in, never dropped.
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

impl MemoryReplayStore {
    /// A store of [`DEFAULT_REPLAY_CAPACITY`] proofs, [`DEFAULT_REPLAY_QUOTA_PER_KEY`] per key.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_REPLAY_CAPACITY, DEFAULT_REPLAY_QUOTA_PER_KEY)
    }

    /// A store of at most `capacity` proofs, and `quota_per_key` of one key.
    pub fn with_limits(capacity: usize, quota_per_key: usize) -> Self {
        Self { state: Mutex::new(State::default()), capacity, quota_per_key, hasher: RandomState::new() }
    }

    /// How many proofs it remembers now.
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).seen.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a proof as used at `now` (seconds since the Unix epoch); for tests, and for callers with a
    /// clock of their own.
    pub fn record_at(&self, jkt: &str, jti: &str, until: i64, now: i64) -> Result<ProofUse, ReplayError> {
        let key = self.hasher.hash_one((0u8, jkt));
        // A `str` hashes with a terminator, which keeps `("ab", "c")` and `("a", "bc")` apart.
        let half = |tag: u8| u128::from(self.hasher.hash_one((tag, jkt, jti)));
        let proof = half(1) << 64 | half(2);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.forget_expired(now);
        if state.seen.get(&proof).is_some_and(|remembered| *remembered > now) {
            return Ok(ProofUse::Replayed);
        }
        // Never first without being remembered, for a second at least.
        let until = until.max(now.saturating_add(1));
        if state.seen.len() >= self.capacity || state.per_key.get(&key).copied().unwrap_or(0) >= self.quota_per_key {
            return Err(ReplayError::full());
        }
        state.seen.insert(proof, until);
        *state.per_key.entry(key).or_insert(0) += 1;
        state.order.push_back((until, proof, key));
        Ok(ProofUse::First)
    }
}

impl State {
    fn forget_expired(&mut self, now: i64) {
        while let Some(&(until, proof, key)) = self.order.front() {
            if until > now {
                break;
            }
            self.order.pop_front();
            // A proof recorded again after it expired has a later entry of its own: keep it.
            if self.seen.get(&proof) == Some(&until) {
                self.seen.remove(&proof);
            }
            if let Some(count) = self.per_key.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.per_key.remove(&key);
                }
            }
        }
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("quota_per_key", &self.quota_per_key)
            .finish()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn record(&self, jkt: &str, jti: &str, until: i64) -> ReplayCheck {
        ReplayCheck::Ready(self.record_at(jkt, jti, until, crate::validator::unix_now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_first_once_and_replayed_until_its_window_ends() {
        let store = MemoryReplayStore::new();
        assert_eq!(store.record_at("key", "p1", 160, 100).unwrap(), ProofUse::First);
        assert_eq!(store.record_at("key", "p1", 160, 120).unwrap(), ProofUse::Replayed);
        assert_eq!(store.record_at("key", "p1", 170, 159).unwrap(), ProofUse::Replayed);
        // The same jti from another key is another proof.
        assert_eq!(store.record_at("other", "p1", 160, 120).unwrap(), ProofUse::First);
        assert_eq!(store.record_at("ke", "yp1", 160, 120).unwrap(), ProofUse::First, "no ambiguity in the digest");
        assert_eq!(store.len(), 3);
        // Once its window has passed, the proof is forgotten (its own checks refuse it by then).
        assert_eq!(store.record_at("key", "p1", 220, 160).unwrap(), ProofUse::First);
        assert_eq!(store.len(), 1);
        assert!(!store.is_empty());
    }

    #[test]
    fn a_full_store_or_a_key_over_its_quota_refuses_and_frees_room_as_windows_pass() {
        let store = MemoryReplayStore::with_limits(3, 2);
        assert!(store.record_at("a", "1", 110, 100).is_ok());
        assert!(store.record_at("a", "2", 111, 100).is_ok());
        assert_eq!(store.record_at("a", "3", 112, 100).unwrap_err().kind(), ReplayErrorKind::Full, "quota");
        assert!(store.record_at("b", "1", 112, 100).is_ok());
        assert_eq!(store.record_at("c", "1", 112, 100).unwrap_err().kind(), ReplayErrorKind::Full, "capacity");
        // A replay is still told apart when full.
        assert_eq!(store.record_at("a", "1", 110, 105).unwrap(), ProofUse::Replayed);
        // At 110 the first proof's window has passed: room for one more, and key a's quota has room.
        assert_eq!(store.record_at("a", "3", 170, 110).unwrap(), ProofUse::First);
        assert_eq!(store.len(), 3);
        assert_eq!(ReplayError::full().to_string(), "the DPoP replay store is full");
    }

    #[test]
    fn a_proof_is_never_first_without_being_remembered() {
        let store = MemoryReplayStore::with_limits(2, 2);
        assert_eq!(store.record_at("a", "old", 90, 100).unwrap(), ProofUse::First);
        assert_eq!(store.record_at("a", "old", 90, 100).unwrap(), ProofUse::Replayed, "for a second at least");
        assert_eq!(store.record_at("a", "edge", 100, 100).unwrap(), ProofUse::First);
        assert_eq!(store.record_at("a", "edge", 100, 100).unwrap(), ProofUse::Replayed);
        assert_eq!(store.record_at("a", "old", 90, 101).unwrap(), ProofUse::First, "forgotten after that second");
    }
}
