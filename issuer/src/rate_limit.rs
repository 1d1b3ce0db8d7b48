//! Per-account fixed-window issuance limits, counted in the issuer's state
//! store (a redb file, or Redis shared by every issuer replica), so that
//! neither a restart nor a second replica hands out a fresh allowance. The
//! counters are bounded by the number of registered accounts (only
//! authenticated accounts get here).

use cloister_state_store::{Counters, StateError, StateStore, Taken};

/// Counts tokens per account per window.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    counters: Counters,
}

impl RateLimiter {
    /// `per_window` tokens per `window_secs` (at least one second), counted in `store`.
    #[must_use]
    pub fn new(store: &StateStore, per_window: u32, window_secs: u64) -> Self {
        Self {
            counters: store.counters("issued", per_window, window_secs),
        }
    }

    /// Takes one token from `account`'s allowance at `now`: `Ok(Err(secs))`
    /// when it is used up, with the seconds until its next window opens.
    ///
    /// # Errors
    /// The store cannot answer: the request must be refused.
    pub async fn take(&self, account: &str, now: u64) -> Result<Result<(), u64>, StateError> {
        Ok(match self.counters.take(account, now).await? {
            Taken::Granted => Ok(()),
            Taken::Exhausted { retry_after } => Err(retry_after),
        })
    }

    /// Gives back a token taken at `now` for a request that then failed.
    ///
    /// # Errors
    /// The store cannot answer (the client then loses that one token).
    pub async fn refund(&self, account: &str, now: u64) -> Result<(), StateError> {
        self.counters.refund(account, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limit_applies_per_account_and_resets_each_window() {
        let store = StateStore::in_memory().expect("store");
        let limiter = RateLimiter::new(&store, 2, 100);
        assert_eq!(limiter.take("a", 10).await.ok(), Some(Ok(())));
        assert_eq!(limiter.take("a", 20).await.ok(), Some(Ok(())));
        assert_eq!(limiter.take("a", 30).await.ok(), Some(Err(70)));
        assert_eq!(limiter.take("b", 30).await.ok(), Some(Ok(())));
        limiter.refund("a", 35).await.expect("refund");
        assert_eq!(limiter.take("a", 40).await.ok(), Some(Ok(())));
        assert_eq!(limiter.take("a", 50).await.ok(), Some(Err(50)));
        assert_eq!(limiter.take("a", 100).await.ok(), Some(Ok(())));
    }
}
