//! A bounded cache of validated tokens: a token seen again skips the signature check, the parse and the
//! mapping.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use quick_cache::Equivalent;
use quick_cache::sync::Cache;

use crate::Validated;

/// Validated tokens, kept so that a token seen again is not checked again.
///
/// A hit hands back the same `Arc<Validated<C>>` the first validation produced: its claims, registered
/// claims and principal. What stays true of a cached token:
/// - **Exact match.** An entry is found by the whole token, compared in constant time after a keyed hash
///   (randomly seeded per process) chooses where to look. A token that differs in any byte, a forged
///   signature included, is a miss and is validated in full.
/// - **Never past its time.** An entry is served only before the token's
///   [`valid_until`](Validated::valid_until): its `exp`, or the end of the validator's maximum age. The
///   leeway is not granted from the cache. A token with neither is never cached.
/// - **Keys.** An entry is served only while the keys that verified it are current
///   ([`Validated::keys_current`]). When a remote key set changes, the first stale entry found empties the
///   cache.
/// - **Bounded.** At most `capacity` entries, evicted by the CLOCK-Pro policy of
///   [quick_cache](https://docs.rs/quick_cache), in shards each with their own lock: there is no global lock,
///   and readers of a shard share it.
///
/// Revocation is not the cache's business: `JwtAuthLayer` asks its denylist about every token, cached or
/// not, so a revoked token is refused at once.
///
/// Memory: each entry holds the token, its claims set and the deserialized claims, about three times the
/// token's length (3 KiB or less for a typical 1 KiB token); tokens are at most the validator's size limit.
pub struct ValidatedCache<C> {
    entries: Arc<Cache<TokenKey, Entry<C>>>,
    capacity: usize,
}

struct Entry<C> {
    validated: Arc<Validated<C>>,
    until: i64,
}

impl<C> Clone for Entry<C> {
    fn clone(&self) -> Self {
        Self { validated: self.validated.clone(), until: self.until }
    }
}

impl<C> ValidatedCache<C> {
    /// A cache of at most `capacity` tokens (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { entries: Arc::new(Cache::new(capacity)), capacity }
    }

    /// The validated token cached for `token`, if it is still valid at `now` (seconds since the Unix epoch)
    /// and its keys are current. An entry found expired, or verified by keys no longer current, is dropped.
    pub fn get(&self, token: &str, now: i64) -> Option<Arc<Validated<C>>> {
        let entry = self.entries.get(&TokenRef(token))?;
        if now >= entry.until {
            self.entries.remove(&TokenRef(token));
            return None;
        }
        if !entry.validated.keys_current() {
            // The keys changed: whatever they verified goes, not only this entry.
            self.entries.clear();
            return None;
        }
        Some(entry.validated)
    }

    /// Keeps `validated` for `token`, unless it has no [`valid_until`](Validated::valid_until) or that time
    /// is not after `now`.
    pub fn insert(&self, token: &str, validated: &Arc<Validated<C>>, now: i64) {
        if let Some(until) = validated.valid_until()
            && until > now
        {
            self.entries.insert(TokenKey(token.into()), Entry { validated: validated.clone(), until });
        }
    }

    /// How many tokens are cached now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// The most tokens the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops every cached token.
    pub fn clear(&self) {
        self.entries.clear();
    }
}

impl<C> Clone for ValidatedCache<C> {
    fn clone(&self) -> Self {
        Self { entries: self.entries.clone(), capacity: self.capacity }
    }
}

impl<C> fmt::Debug for ValidatedCache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatedCache").field("len", &self.len()).field("capacity", &self.capacity).finish()
    }
}

/// A cached token. Equality is constant-time, so that how long a comparison takes says nothing of how much
/// of a cached token another token shares.
struct TokenKey(Box<str>);

/// A token being looked up; it hashes as [`TokenKey`] does.
struct TokenRef<'a>(&'a str);

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Hash for TokenRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        same_token(&self.0, &other.0)
    }
}

impl Eq for TokenKey {}

impl Equivalent<TokenKey> for TokenRef<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        same_token(self.0, &key.0)
    }
}

fn same_token(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, Key, KeySet, Secret, Validator};

    fn validator() -> (Validator, aws_lc_rs::hmac::Key) {
        let secret = vec![9; 32];
        let key = Key::hmac(Algorithm::HS256, &Secret::new(secret.clone())).unwrap();
        let validator = Validator::builder(KeySet::new([key]).unwrap()).leeway(std::time::Duration::ZERO).build();
        (validator, aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret))
    }

    fn sign(key: &aws_lc_rs::hmac::Key, claims: &str) -> String {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let input = format!("{}.{}", B64.encode(r#"{"alg":"HS256"}"#), B64.encode(claims));
        format!("{input}.{}", B64.encode(aws_lc_rs::hmac::sign(key, input.as_bytes())))
    }

    #[test]
    fn an_entry_is_served_until_exp_and_never_after() {
        let (validator, key) = validator();
        let token = sign(&key, r#"{"sub":"a","exp":1000}"#);
        let cache = ValidatedCache::<serde_json::Value>::new(8);
        let validated = Arc::new(validator.validate_at(&token, 500).unwrap());
        cache.insert(&token, &validated, 500);
        assert!(Arc::ptr_eq(&cache.get(&token, 999).unwrap(), &validated));
        assert!(cache.get(&token, 1000).is_none(), "served at exp");
        assert!(cache.is_empty(), "the expired entry was dropped");
        assert!(cache.get(&token, 999).is_none(), "an expired entry came back");
    }

    #[test]
    fn tokens_without_an_end_are_never_cached() {
        let key = Key::hmac(Algorithm::HS256, &Secret::new(vec![9; 32])).unwrap();
        let validator = Validator::builder(KeySet::new([key]).unwrap()).require_exp(false).build();
        let (_, hmac) = self::validator();
        let token = sign(&hmac, r#"{"sub":"a"}"#);
        let cache = ValidatedCache::<serde_json::Value>::new(8);
        let validated = Arc::new(validator.validate_at(&token, 500).unwrap());
        assert_eq!(validated.valid_until(), None);
        cache.insert(&token, &validated, 500);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_token_differing_in_any_byte_misses() {
        let (validator, key) = validator();
        let token = sign(&key, r#"{"sub":"a","exp":1000}"#);
        let cache = ValidatedCache::<serde_json::Value>::new(8);
        cache.insert(&token, &Arc::new(validator.validate_at(&token, 500).unwrap()), 500);
        let (input, _) = token.rsplit_once('.').unwrap();
        for other in [format!("{input}.AAAA"), format!("{token}A"), token[..token.len() - 1].to_owned(), String::new()]
        {
            assert!(cache.get(&other, 500).is_none(), "{other}");
        }
        assert!(cache.get(&token, 500).is_some());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let (validator, key) = validator();
        let cache = ValidatedCache::<serde_json::Value>::new(100);
        for i in 0..1_000 {
            let token = sign(&key, &format!(r#"{{"sub":"{i}","exp":1000}}"#));
            cache.insert(&token, &Arc::new(validator.validate_at(&token, 500).unwrap()), 500);
            assert!(cache.len() <= cache.capacity(), "{} entries after {i} inserts", cache.len());
        }
        assert!(cache.len() > 50, "the cache kept only {} entries", cache.len());
    }

    #[test]
    fn a_maximum_age_ends_an_entry_before_exp() {
        let key = Key::hmac(Algorithm::HS256, &Secret::new(vec![9; 32])).unwrap();
        let validator =
            Validator::builder(KeySet::new([key]).unwrap()).max_age(std::time::Duration::from_secs(60)).build();
        let (_, hmac) = self::validator();
        let token = sign(&hmac, r#"{"sub":"a","iat":500,"exp":1000}"#);
        let validated = Arc::new(validator.validate_at(&token, 510).unwrap());
        assert_eq!(validated.valid_until(), Some(560));
        let cache = ValidatedCache::<serde_json::Value>::new(8);
        cache.insert(&token, &validated, 510);
        assert!(cache.get(&token, 559).is_some());
        assert!(cache.get(&token, 560).is_none());
    }

    #[derive(Debug)]
    struct Swappable(std::sync::Mutex<Result<Arc<KeySet>, crate::KeysUnavailable>>);

    impl crate::KeySource for Swappable {
        fn current(&self) -> Result<Arc<KeySet>, crate::KeysUnavailable> {
            self.0.lock().unwrap().clone()
        }

        fn refresh_for(&self, _kid: &str) -> Option<crate::PendingRefresh> {
            None
        }
    }

    #[test]
    fn a_change_of_keys_empties_the_cache() {
        let set = || KeySet::new([Key::hmac(Algorithm::HS256, &Secret::new(vec![9; 32])).unwrap()]).unwrap();
        let source = Arc::new(Swappable(std::sync::Mutex::new(Ok(Arc::new(set())))));
        let validator = Validator::builder(crate::TrustedKeys::from_source(source.clone())).build();
        let (_, hmac) = self::validator();
        let (first, second) = (sign(&hmac, r#"{"sub":"a","exp":1000}"#), sign(&hmac, r#"{"sub":"b","exp":1000}"#));
        let cache = ValidatedCache::<serde_json::Value>::new(8);
        for token in [&first, &second] {
            cache.insert(token, &Arc::new(validator.validate_at(token, 500).unwrap()), 500);
        }
        assert!(cache.get(&first, 500).is_some());

        // The same keys in a new set still count as a change: the source said the keys changed.
        *source.0.lock().unwrap() = Ok(Arc::new(set()));
        assert!(cache.get(&first, 500).is_none());
        assert!(cache.is_empty(), "the other entry survived the change of keys");

        cache.insert(&first, &Arc::new(validator.validate_at(&first, 500).unwrap()), 500);
        assert!(cache.get(&first, 500).is_some());
        *source.0.lock().unwrap() = Err(crate::KeysUnavailable);
        assert!(cache.get(&first, 500).is_none(), "served while the source has no keys");
    }

    #[test]
    fn fixed_keys_never_expire_an_entry() {
        let (validator, key) = validator();
        let token = sign(&key, r#"{"sub":"a","exp":1000}"#);
        assert!(validator.validate_at::<serde_json::Value>(&token, 500).unwrap().keys_current());
    }

    #[test]
    fn a_fixed_key_chosen_because_the_source_had_none_goes_stale_with_the_source() {
        // A token without `kid`, verified by the only HS256 key: the fixed one, since the source has only an
        // HS384 key. Once the source has an HS256 key too, the token would be ambiguous: no longer current.
        let fixed = Key::hmac(Algorithm::HS256, &Secret::new(vec![9; 32])).unwrap();
        let other = |alg| KeySet::new([Key::hmac(alg, &Secret::new(vec![8; 48])).unwrap()]).unwrap();
        let source = Arc::new(Swappable(std::sync::Mutex::new(Ok(Arc::new(other(Algorithm::HS384))))));
        let keys = crate::TrustedKeys::from(KeySet::new([fixed]).unwrap()).with_source(source.clone());
        let validator = Validator::builder(keys).build();
        let (_, hmac) = self::validator();
        let token = sign(&hmac, r#"{"sub":"a","exp":1000}"#);
        let validated = validator.validate_at::<serde_json::Value>(&token, 500).unwrap();
        assert!(validated.keys_current());
        *source.0.lock().unwrap() = Ok(Arc::new(other(Algorithm::HS256)));
        assert!(!validated.keys_current());
        assert_eq!(
            validator.validate_at::<serde_json::Value>(&token, 500).unwrap_err().kind(),
            crate::ErrorKind::UnknownKey
        );
    }
}
