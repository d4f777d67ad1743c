//! Server-provided DPoP nonces (RFC 9449 §8), without state: a fleet that shares the secret shares them.

use std::fmt;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{ConfigError, Secret};

/// The default period of [`DpopNonces`]: a nonce is good for 30 to 60 seconds.
pub const DEFAULT_NONCE_PERIOD: Duration = Duration::from_secs(30);

/// Bytes of the MAC kept in a nonce: 128 bits.
const TAG_BYTES: usize = 16;

/// Issues and checks DPoP nonces derived from a secret and the time, so that no instance needs to remember
/// any: every instance with the same secret accepts the nonces of the others.
///
/// A nonce names its period (the time divided by [`period`](Self::with_period)) and carries an HMAC-SHA256 of
/// it. It is accepted during its own period and the next, so it stays good for at least one period and at
/// most two. A client gets a fresh one in the `DPoP-Nonce` header of a 401 `use_dpop_nonce`, and, once the
/// one it sent is from the previous period, on a successful response too.
///
/// ```
/// use jwtgate_core::{DpopNonces, Secret};
///
/// let nonces = DpopNonces::new(&Secret::new(vec![7; 32]))?;
/// // Periods of 30 s: this one is 1,020 to 1,049, and the next ends at 1,079.
/// let nonce = nonces.issue_at(1_020);
/// assert!(nonces.accepts_at(&nonce, 1_020) && nonces.accepts_at(&nonce, 1_079));
/// assert!(!nonces.accepts_at(&nonce, 1_080), "two periods later");
/// # Ok::<(), jwtgate_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct DpopNonces {
    key: hmac::Key,
    period: u64,
}

impl DpopNonces {
    /// Nonces keyed with `secret` (at least 32 bytes, shared by every instance of a fleet), with the default
    /// period of 30 s.
    pub fn new(secret: &Secret) -> Result<Self, ConfigError> {
        if secret.expose().len() < 32 {
            return Err(ConfigError::key("a DPoP nonce secret needs at least 32 bytes".to_owned()));
        }
        Ok(Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()), period: DEFAULT_NONCE_PERIOD.as_secs() })
    }

    /// Sets the period (whole seconds, at least 1): a nonce is good for one to two periods.
    #[must_use]
    pub fn with_period(mut self, period: Duration) -> Self {
        self.period = period.as_secs().max(1);
        self
    }

    /// A nonce for the period of `now` (seconds since the Unix epoch).
    pub fn issue_at(&self, now: i64) -> String {
        self.nonce_for(self.period_of(now))
    }

    /// Whether `nonce` is one of this secret's, of the period of `now` or the one before.
    pub fn accepts_at(&self, nonce: &str, now: i64) -> bool {
        self.period_in(nonce).is_some_and(|period| {
            let current = self.period_of(now);
            period == current || period.checked_add(1) == Some(current)
        })
    }

    /// Whether a client that sent `nonce` should get a fresh one with its answer: its nonce is valid but
    /// from the previous period, and will soon be refused.
    pub fn should_renew_at(&self, nonce: &str, now: i64) -> bool {
        self.period_in(nonce).is_some_and(|period| period != self.period_of(now))
    }

    fn period_of(&self, now: i64) -> u64 {
        u64::try_from(now).unwrap_or(0) / self.period
    }

    fn nonce_for(&self, period: u64) -> String {
        let counter = period.to_be_bytes();
        let tag = hmac::sign(&self.key, &counter);
        let mut bytes = Vec::with_capacity(8 + TAG_BYTES);
        bytes.extend_from_slice(&counter);
        bytes.extend_from_slice(&tag.as_ref()[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The period a nonce of this secret names; `None` for anything else.
    fn period_in(&self, nonce: &str) -> Option<u64> {
        if nonce.len() > 64 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        let (counter, tag) = bytes.split_at_checked(8)?;
        if tag.len() != TAG_BYTES {
            return None;
        }
        let expected = hmac::sign(&self.key, counter);
        // Compared in constant time: the tag is a secret until it matches.
        aws_lc_rs::constant_time::verify_slices_are_equal(&expected.as_ref()[..TAG_BYTES], tag).ok()?;
        Some(u64::from_be_bytes(counter.try_into().ok()?))
    }
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces").field("period", &self.period).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(byte: u8) -> DpopNonces {
        DpopNonces::new(&Secret::new(vec![byte; 32])).unwrap()
    }

    #[test]
    fn a_nonce_is_good_for_its_period_and_the_next_on_every_instance_sharing_the_secret() {
        let (one, other_instance) = (nonces(1), nonces(1));
        let nonce = one.issue_at(3_000);
        for now in [3_000, 3_029, 3_030, 3_059] {
            assert!(other_instance.accepts_at(&nonce, now), "{now}");
        }
        for now in [2_999, 3_060, 10_000] {
            assert!(!other_instance.accepts_at(&nonce, now), "{now}");
        }
        assert!(!one.should_renew_at(&nonce, 3_010));
        assert!(one.should_renew_at(&nonce, 3_040), "valid, but from the previous period");
        assert_eq!(one.issue_at(3_000), one.issue_at(3_029), "one nonce per period");
        assert_ne!(one.issue_at(3_000), one.issue_at(3_030));
    }

    #[test]
    fn a_nonce_of_another_secret_or_forged_is_refused() {
        let nonce = nonces(1).issue_at(3_000);
        assert!(!nonces(2).accepts_at(&nonce, 3_000));
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        bytes[0] ^= 1;
        let moved = URL_SAFE_NO_PAD.encode(&bytes);
        assert!(!nonces(1).accepts_at(&moved, 3_000), "another period with the old tag");
        for junk in ["", "x", "!!!!", &"A".repeat(65), &URL_SAFE_NO_PAD.encode([0u8; 8])] {
            assert!(!nonces(1).accepts_at(junk, 3_000), "{junk}");
        }
        assert!(DpopNonces::new(&Secret::new(vec![1; 31])).is_err());
        let short = nonces(1).with_period(Duration::from_secs(5));
        let nonce = short.issue_at(100);
        assert!(short.accepts_at(&nonce, 109) && !short.accepts_at(&nonce, 110));
    }
}
