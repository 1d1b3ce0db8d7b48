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
//! the date check refuses the replay on its own. The keys live in a
//! [`OnceSet`] of the gateway's state store (a redb file, or Redis shared by
//! every replica, so a request replayed to another replica is refused too).
//! The set is bounded by its capacity: when it is full of live entries, new
//! requests are refused (fail closed) rather than forgetting an entry early,
//! and a store that cannot answer refuses the request as well.

use std::time::Duration;

use cloister_state_store::{Inserted, OnceSet, StateError};

/// The outcome of [`ReplayGuard::check_and_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// First sighting; now recorded.
    Fresh,
    /// The `Date` is outside the window; `now` is the gateway's time for the client to correct its clock.
    DateOutOfWindow,
    /// This encapsulated key was accepted before.
    Replayed,
}

/// Remembers recently accepted encapsulated keys. See the module docs.
#[derive(Debug)]
pub struct ReplayGuard {
    window: Duration,
    /// Each accepted `enc`, kept until its `Date` leaves the window.
    seen: OnceSet,
}

impl ReplayGuard {
    /// A guard accepting dates within `window` of now and remembering
    /// requests in `seen` (whose capacity bounds how many).
    #[must_use]
    pub fn new(window: Duration, seen: OnceSet) -> Self {
        Self { window, seen }
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
    ///
    /// # Errors
    /// The store is full ([`StateError::Full`]) or cannot answer: the
    /// request must be refused.
    pub async fn check_and_record(
        &self,
        enc: &[u8],
        request_date_unix: u64,
        now_unix: u64,
    ) -> Result<ReplayVerdict, StateError> {
        if !self.date_acceptable(request_date_unix, now_unix) {
            return Ok(ReplayVerdict::DateOutOfWindow);
        }
        // The date is acceptable up to and including `date + window`.
        let expires_at = request_date_unix
            .saturating_add(self.window.as_secs())
            .saturating_add(1);
        Ok(match self.seen.insert(enc, expires_at, now_unix).await? {
            Inserted::Fresh => ReplayVerdict::Fresh,
            Inserted::Present => ReplayVerdict::Replayed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    fn guard(capacity: u64) -> ReplayGuard {
        let store = cloister_state_store::StateStore::in_memory().expect("store");
        ReplayGuard::new(Duration::from_secs(60), store.once_set("replay", capacity))
    }

    #[tokio::test]
    async fn refuses_the_second_sighting_and_dates_outside_the_window() {
        let guard = guard(10);
        assert_eq!(
            guard.check_and_record(b"enc-a", NOW, NOW).await.ok(),
            Some(ReplayVerdict::Fresh)
        );
        assert_eq!(
            guard.check_and_record(b"enc-a", NOW, NOW + 5).await.ok(),
            Some(ReplayVerdict::Replayed)
        );
        assert_eq!(
            guard.check_and_record(b"enc-b", NOW - 61, NOW).await.ok(),
            Some(ReplayVerdict::DateOutOfWindow)
        );
        assert_eq!(
            guard.check_and_record(b"enc-b", NOW + 61, NOW).await.ok(),
            Some(ReplayVerdict::DateOutOfWindow)
        );
        assert_eq!(
            guard.check_and_record(b"enc-b", NOW - 60, NOW).await.ok(),
            Some(ReplayVerdict::Fresh)
        );
    }

    #[tokio::test]
    async fn full_store_fails_closed_until_entries_expire() {
        let guard = guard(2);
        assert_eq!(
            guard.check_and_record(b"1", NOW, NOW).await.ok(),
            Some(ReplayVerdict::Fresh)
        );
        assert_eq!(
            guard.check_and_record(b"2", NOW, NOW).await.ok(),
            Some(ReplayVerdict::Fresh)
        );
        assert!(matches!(
            guard.check_and_record(b"3", NOW, NOW).await,
            Err(StateError::Full { .. })
        ));
        // Once the first two dates leave the window they are forgotten, and a replay of them fails the date check.
        assert_eq!(
            guard.check_and_record(b"3", NOW + 61, NOW + 61).await.ok(),
            Some(ReplayVerdict::Fresh)
        );
        assert_eq!(guard.seen.count().await.ok(), Some(1));
        assert_eq!(
            guard.check_and_record(b"1", NOW, NOW + 61).await.ok(),
            Some(ReplayVerdict::DateOutOfWindow)
        );
    }
}
