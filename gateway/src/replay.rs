//! Replay defence (RFC 9458 §6.5).
//!
//! An attacker who records an encapsulated request (the relay, or anyone on
//! the path) could resend it to make the host act twice. The gateway cannot
//! tell sender from attacker, so it combines two checks:
//!
//! * the inner request must carry a `Date` within `window` of the gateway's
//!   clock, so an old capture is refused by date alone; and
//! * within that window, the encapsulated key (`enc`, fresh per request and
//!   bound to the ciphertext by HPKE) of every accepted request is
//!   remembered and a second request with the same `enc` is refused.
//!
//! An entry is kept until its request's `Date` leaves the window, after which
//! the date check refuses the replay on its own. Memory is bounded by
//! `capacity`: when the store is full of live entries, new requests are
//! refused (fail closed) rather than forgetting an entry early.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The outcome of [`ReplayGuard::check_and_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// First sighting; now recorded.
    Fresh,
    /// The `Date` is outside the window; `now` is the gateway's time for the client to correct its clock.
    DateOutOfWindow,
    /// This encapsulated key was accepted before.
    Replayed,
    /// The store is full of live entries; refused to stay safe.
    StoreFull,
}

/// Remembers recently accepted encapsulated keys. See the module docs.
#[derive(Debug)]
pub struct ReplayGuard {
    window: Duration,
    capacity: usize,
    /// `enc` -> Unix second after which the entry may be forgotten.
    seen: Mutex<HashMap<Vec<u8>, u64>>,
}

impl ReplayGuard {
    /// A guard accepting dates within `window` of now and remembering at most `capacity` requests.
    #[must_use]
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// How far the inner `Date` may be from the gateway's clock.
    #[must_use]
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether a request dated `request_date_unix` is within the window of
    /// `now_unix`: the check a request must pass before it may spend a
    /// token, so that a client whose clock is off keeps its token for the
    /// retry with the corrected `Date`.
    #[must_use]
    pub fn date_acceptable(&self, request_date_unix: u64, now_unix: u64) -> bool {
        request_date_unix.abs_diff(now_unix) <= self.window.as_secs()
    }

    /// Check the request's date and encapsulated key, recording the key when fresh.
    pub fn check_and_record(
        &self,
        enc: &[u8],
        request_date_unix: u64,
        now_unix: u64,
    ) -> ReplayVerdict {
        let window = self.window.as_secs();
        if !self.date_acceptable(request_date_unix, now_unix) {
            return ReplayVerdict::DateOutOfWindow;
        }
        let forget_after = request_date_unix.saturating_add(window);
        // A poisoned lock only means another request panicked mid-insert; the map is still consistent.
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains_key(enc) {
            return ReplayVerdict::Replayed;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now_unix);
            if seen.len() >= self.capacity {
                return ReplayVerdict::StoreFull;
            }
        }
        seen.insert(enc.to_vec(), forget_after);
        ReplayVerdict::Fresh
    }

    /// Number of remembered requests (for tests and diagnostics).
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    #[test]
    fn refuses_the_second_sighting_and_dates_outside_the_window() {
        let guard = ReplayGuard::new(Duration::from_secs(60), 10);
        assert_eq!(
            guard.check_and_record(b"enc-a", NOW, NOW),
            ReplayVerdict::Fresh
        );
        assert_eq!(
            guard.check_and_record(b"enc-a", NOW, NOW + 5),
            ReplayVerdict::Replayed
        );
        assert_eq!(
            guard.check_and_record(b"enc-b", NOW - 61, NOW),
            ReplayVerdict::DateOutOfWindow
        );
        assert_eq!(
            guard.check_and_record(b"enc-b", NOW + 61, NOW),
            ReplayVerdict::DateOutOfWindow
        );
        assert_eq!(
            guard.check_and_record(b"enc-b", NOW - 60, NOW),
            ReplayVerdict::Fresh
        );
    }

    #[test]
    fn full_store_fails_closed_until_entries_expire() {
        let guard = ReplayGuard::new(Duration::from_secs(60), 2);
        assert_eq!(guard.check_and_record(b"1", NOW, NOW), ReplayVerdict::Fresh);
        assert_eq!(guard.check_and_record(b"2", NOW, NOW), ReplayVerdict::Fresh);
        assert_eq!(
            guard.check_and_record(b"3", NOW, NOW),
            ReplayVerdict::StoreFull
        );
        // Once the first two dates leave the window they are forgotten, and a replay of them fails the date check.
        assert_eq!(
            guard.check_and_record(b"3", NOW + 61, NOW + 61),
            ReplayVerdict::Fresh
        );
        assert_eq!(guard.len(), 1);
        assert_eq!(
            guard.check_and_record(b"1", NOW, NOW + 61),
            ReplayVerdict::DateOutOfWindow
        );
    }
}
