//! Client nonces: random, single-use and short-lived.
//!
//! The verifier (the client, or a CVM checking a peer) issues a [`Nonce`]
//! through a [`NonceTracker`] after the TLS handshake and redeems it exactly
//! once when the evidence comes back. A nonce that was never issued, was
//! already redeemed, or is older than the tracker's lifetime is refused, so
//! evidence can be neither replayed nor precomputed long in advance.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};

/// A 32-byte random challenge.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce([u8; 32]);

impl Nonce {
    /// A fresh nonce from the operating system's CSPRNG.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Wraps bytes received from the peer (the host side echoes them).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw challenge bytes, as sent on the wire.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nonce({})", hex::encode(&self.0[..4]))
    }
}

/// Why a nonce was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FreshnessError {
    /// This tracker never issued the nonce.
    #[error("nonce was never issued by this verifier")]
    Unknown,
    /// The nonce was issued but has outlived its lifetime.
    #[error("nonce expired {age:?} after issue (lifetime {lifetime:?})")]
    Expired {
        /// How old the nonce was when redeemed.
        age: Duration,
        /// The tracker's lifetime.
        lifetime: Duration,
    },
    /// The nonce was already redeemed once: the evidence is a replay.
    #[error("nonce was already used: evidence replayed")]
    Replayed,
}

/// Issues nonces and redeems each at most once within its lifetime.
///
/// Time is passed in explicitly so that callers (and tests) control the clock.
/// Memory stays bounded: entries are forgotten once they are past their
/// lifetime, after which a late replay is reported as [`FreshnessError::Unknown`]
/// — still a refusal.
#[derive(Debug)]
pub struct NonceTracker {
    lifetime: Duration,
    issued: HashMap<Nonce, Instant>,
    redeemed: HashMap<Nonce, Instant>,
}

impl NonceTracker {
    /// A tracker whose nonces expire `lifetime` after issue.
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            issued: HashMap::new(),
            redeemed: HashMap::new(),
        }
    }

    /// Issues a fresh random nonce at time `now`.
    pub fn issue(&mut self, now: Instant) -> Nonce {
        self.forget_expired(now);
        let nonce = Nonce::random();
        self.issued.insert(nonce, now);
        nonce
    }

    /// Consumes `nonce` at time `now`; succeeds only once per issued nonce.
    pub fn redeem(&mut self, nonce: &Nonce, now: Instant) -> Result<(), FreshnessError> {
        self.forget_expired(now);
        if self.redeemed.contains_key(nonce) {
            return Err(FreshnessError::Replayed);
        }
        let issued_at = self.issued.remove(nonce).ok_or(FreshnessError::Unknown)?;
        self.redeemed.insert(*nonce, issued_at);
        let age = now.saturating_duration_since(issued_at);
        if age > self.lifetime {
            return Err(FreshnessError::Expired {
                age,
                lifetime: self.lifetime,
            });
        }
        Ok(())
    }

    /// Drops bookkeeping for nonces well past their lifetime. An issued nonce
    /// is kept for twice its lifetime so that a late redemption is reported
    /// as expired rather than unknown.
    fn forget_expired(&mut self, now: Instant) {
        let keep = self.lifetime.saturating_mul(2);
        let live = |issued_at: &mut Instant| now.saturating_duration_since(*issued_at) <= keep;
        self.issued.retain(|_, issued_at| live(issued_at));
        self.redeemed.retain(|_, issued_at| live(issued_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_secs(30);

    #[test]
    fn a_nonce_redeems_once() {
        let mut tracker = NonceTracker::new(LIFETIME);
        let start = Instant::now();
        let nonce = tracker.issue(start);
        assert_eq!(
            tracker.redeem(&nonce, start + Duration::from_secs(1)),
            Ok(())
        );
        assert_eq!(
            tracker.redeem(&nonce, start + Duration::from_secs(2)),
            Err(FreshnessError::Replayed)
        );
    }

    #[test]
    fn an_old_nonce_is_expired() {
        let mut tracker = NonceTracker::new(LIFETIME);
        let start = Instant::now();
        let nonce = tracker.issue(start);
        let err = tracker.redeem(&nonce, start + LIFETIME + Duration::from_secs(1));
        assert!(
            matches!(err, Err(FreshnessError::Expired { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_foreign_nonce_is_unknown() {
        let mut tracker = NonceTracker::new(LIFETIME);
        let now = Instant::now();
        tracker.issue(now);
        assert_eq!(
            tracker.redeem(&Nonce::random(), now),
            Err(FreshnessError::Unknown)
        );
    }

    #[test]
    fn bookkeeping_is_forgotten_after_two_lifetimes() {
        let mut tracker = NonceTracker::new(LIFETIME);
        let start = Instant::now();
        let nonce = tracker.issue(start);
        tracker.issue(start + LIFETIME * 3);
        assert_eq!(tracker.issued.len(), 1);
        assert_eq!(
            tracker.redeem(&nonce, start + LIFETIME * 3),
            Err(FreshnessError::Unknown)
        );
    }

    #[test]
    fn random_nonces_differ() {
        assert_ne!(Nonce::random(), Nonce::random());
    }
}
