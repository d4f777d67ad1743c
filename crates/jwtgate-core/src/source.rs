//! Keys that change while the program runs: the hook a remote JWKS plugs into.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use crate::{Algorithm, ErrorKind, Key, KeySet};

/// A wait for a [`KeySource`]'s fetch that has not ended. It resolves once the fetch is over, whether it
/// brought new keys or failed ([`RefreshOutcome::Finished`]), or once the source stops waiting for it
/// ([`RefreshOutcome::TimedOut`]). The token that asked for it is then checked once more, without another
/// wait: see [`Validator::after_refresh`](crate::Validator::after_refresh).
pub type PendingRefresh = Pin<Box<dyn Future<Output = RefreshOutcome> + Send + 'static>>;

/// How a [`PendingRefresh`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The fetch is over, with new keys or not: the token is checked against the keys there are now.
    Finished,
    /// The fetch was still running when the wait's bound passed. The keys the token needs may be on their
    /// way, so the token is answered as [`ErrorKind::KeysUnavailable`] (503, try again), not as an unknown
    /// key.
    TimedOut,
}

/// Keys that can change while the program runs, such as the JWK Set an identity provider publishes.
///
/// `jwtgate-jwks`'s `RemoteKeySet` is the implementation most users want. A validator reads
/// [`current`](KeySource::current) for every token that its fixed keys do not cover, so it must be cheap and
/// must never block: load an `ArcSwap`, do not take a lock that a fetch holds.
///
/// Return the same `Arc` for as long as the keys are unchanged, and a new one when they change: a cache of
/// validated tokens compares it, and drops what an older key set verified.
pub trait KeySource: Send + Sync + fmt::Debug + 'static {
    /// The keys now. [`KeysUnavailable`] when there are none to trust yet (the first fetch has not
    /// succeeded) or any more (the last good keys are older than the source allows). The request is then
    /// answered 503, never 401: the token may well be good.
    fn current(&self) -> Result<Arc<KeySet>, KeysUnavailable>;

    /// A token names `kid`, which the current keys lack. Returns the future of a refresh that may bring it,
    /// or `None` when no refresh may start now (a source limits how often unknown `kid`s make it fetch);
    /// the token is then refused as [`ErrorKind::UnknownKey`](crate::ErrorKind::UnknownKey).
    fn refresh_for(&self, kid: &str) -> Option<PendingRefresh>;

    /// [`current`](KeySource::current) has no keys, and a token needs them. Returns the future of a fetch
    /// that may bring them, one already running (the first fetch after a cold start) or one started now, so
    /// that the token waits for it rather than being answered 503 at once. `None`, the default, answers 503
    /// at once. The wait must be bounded: it holds a request.
    fn wait_for_keys(&self) -> Option<PendingRefresh> {
        None
    }
}

impl<S: KeySource + ?Sized> KeySource for Arc<S> {
    fn current(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        (**self).current()
    }

    fn refresh_for(&self, kid: &str) -> Option<PendingRefresh> {
        (**self).refresh_for(kid)
    }

    fn wait_for_keys(&self) -> Option<PendingRefresh> {
        (**self).wait_for_keys()
    }
}

/// A [`KeySource`] has no keys to offer: it has not loaded any yet, or its keys are too stale to trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeysUnavailable;

impl fmt::Display for KeysUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no signing keys are available yet")
    }
}

impl std::error::Error for KeysUnavailable {}

/// The keys a [`Validator`](crate::Validator) trusts: fixed keys, a [`KeySource`], or both.
///
/// Build it from a [`KeySet`] (`KeySet` converts into it), from a source with [`TrustedKeys::from_source`],
/// or from both with [`TrustedKeys::with_source`]. A token's `kid` is looked up among the fixed keys first,
/// then among the source's current keys. A token without `kid` is checked only when exactly one key of its
/// algorithm exists across both. Either way a token is verified with at most one key.
#[derive(Clone)]
pub struct TrustedKeys {
    fixed: Option<KeySet>,
    source: Option<Arc<dyn KeySource>>,
}

impl TrustedKeys {
    /// Trusts the keys of `source` only.
    pub fn from_source(source: impl KeySource) -> Self {
        Self { fixed: None, source: Some(Arc::new(source)) }
    }

    /// Trusts the keys of `source` as well as the ones already here. A `kid` present in both resolves to the
    /// fixed key.
    #[must_use]
    pub fn with_source(mut self, source: impl KeySource) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The fixed keys, if any.
    pub fn fixed(&self) -> Option<&KeySet> {
        self.fixed.as_ref()
    }

    /// The source of changing keys, if any.
    pub fn source(&self) -> Option<&Arc<dyn KeySource>> {
        self.source.as_ref()
    }

    /// Whether keys are at hand: always with fixed keys alone; with a source, once it has keys. When it has
    /// none yet and `refresh` is given, leaves there the wait for its first keys.
    pub(crate) fn available(&self, refresh: Option<&mut Option<PendingRefresh>>) -> Result<(), ErrorKind> {
        let Some(source) = &self.source else { return Ok(()) };
        if source.current().is_ok() {
            return Ok(());
        }
        if let Some(slot) = refresh {
            *slot = source.wait_for_keys();
        }
        Err(ErrorKind::KeysUnavailable)
    }

    /// Finds the key for a token's `kid` (or none) and `alg`, and hands it to `verify`. When the `kid` is
    /// unknown, or the source has no keys yet, and `refresh` is given, it asks the source for a fetch and
    /// leaves the pending wait there.
    /// Returns `verify`'s answer with the key set that decided it: `None` when only the fixed keys did (a
    /// `kid` naming a fixed key, or no source at all).
    pub(crate) fn with_key<T>(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        refresh: Option<&mut Option<PendingRefresh>>,
        verify: impl FnOnce(&Key) -> Result<T, ErrorKind>,
    ) -> Result<(T, Option<KeyOrigin>), ErrorKind> {
        let fixed = self.fixed.as_ref();
        let Some(source) = &self.source else {
            return Ok((verify(fixed.ok_or(ErrorKind::UnknownKey)?.select(kid, alg)?)?, None));
        };
        if let Some(kid) = kid
            && let Some(key) = fixed.and_then(|set| set.by_kid(kid))
        {
            return Ok((verify(checked(key, alg)?)?, None));
        }
        let current = match source.current() {
            Ok(current) => current,
            // The fixed keys still answer tokens that name them while the source has nothing.
            Err(KeysUnavailable) => {
                if let Some(slot) = refresh {
                    *slot = source.wait_for_keys();
                }
                return Err(ErrorKind::KeysUnavailable);
            }
        };
        let origin = || Some(KeyOrigin { source: source.clone(), set: Arc::downgrade(&current) });
        match kid {
            Some(kid) => match current.by_kid(kid) {
                Some(key) => Ok((verify(checked(key, alg)?)?, origin())),
                None => {
                    if let Some(slot) = refresh {
                        *slot = source.refresh_for(kid);
                    }
                    Err(ErrorKind::UnknownKey)
                }
            },
            None => {
                let fixed_key = fixed.map_or(Ok(None), |set| set.only_for(alg))?;
                match (fixed_key, current.only_for(alg)?) {
                    // Either way the source's keys decided: a fixed key is chosen only because the source
                    // has none for this algorithm, and that can change.
                    (Some(key), None) | (None, Some(key)) => Ok((verify(key)?, origin())),
                    _ => Err(ErrorKind::UnknownKey),
                }
            }
        }
    }
}

/// The key set of a [`KeySource`] that verified a token.
#[derive(Clone)]
pub(crate) struct KeyOrigin {
    source: Arc<dyn KeySource>,
    /// Weak, so that a cached token never keeps old keys alive; a weak reference still keeps the allocation,
    /// so no later key set can take its address.
    set: Weak<KeySet>,
}

impl KeyOrigin {
    /// Whether the source still answers with the key set that verified the token.
    pub(crate) fn is_current(&self) -> bool {
        self.source.current().is_ok_and(|current| std::ptr::eq(Arc::as_ptr(&current), self.set.as_ptr()))
    }
}

impl fmt::Debug for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyOrigin").field("source", &self.source).finish_non_exhaustive()
    }
}

fn checked(key: &Key, alg: Algorithm) -> Result<&Key, ErrorKind> {
    if key.algorithm() == alg { Ok(key) } else { Err(ErrorKind::AlgorithmMismatch) }
}

impl From<KeySet> for TrustedKeys {
    fn from(keys: KeySet) -> Self {
        Self { fixed: Some(keys), source: None }
    }
}

/// One key needs no [`KeySet`]: `Validator::builder(Key::hmac(Algorithm::HS256, &secret)?)`.
impl From<Key> for TrustedKeys {
    fn from(key: Key) -> Self {
        KeySet::from(key).into()
    }
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKeys").field("fixed", &self.fixed).field("source", &self.source).finish()
    }
}
