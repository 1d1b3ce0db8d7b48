//! Per-account fixed-window issuance limits. Memory is bounded by the
//! number of registered accounts (only authenticated accounts get here).

use std::collections::HashMap;

/// Counts tokens per account per window.
#[derive(Debug)]
pub struct RateLimiter {
    per_window: u32,
    window_secs: u64,
    used: HashMap<String, (u64, u32)>,
}

impl RateLimiter {
    /// `per_window` tokens per `window_secs` (at least one second).
    pub fn new(per_window: u32, window_secs: u64) -> Self {
        Self {
            per_window,
            window_secs: window_secs.max(1),
            used: HashMap::new(),
        }
    }

    /// Takes one token from `account`'s allowance at `now`, or returns the
    /// seconds until its next window opens.
    pub fn take(&mut self, account: &str, now: u64) -> Result<(), u64> {
        let window = now / self.window_secs;
        let entry = self.used.entry(account.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.per_window {
            return Err((window + 1) * self.window_secs - now);
        }
        entry.1 += 1;
        Ok(())
    }

    /// Gives back a token taken for a request that then failed.
    pub fn refund(&mut self, account: &str) {
        if let Some(entry) = self.used.get_mut(account) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_applies_per_account_and_resets_each_window() {
        let mut limiter = RateLimiter::new(2, 100);
        assert_eq!(limiter.take("a", 10), Ok(()));
        assert_eq!(limiter.take("a", 20), Ok(()));
        assert_eq!(limiter.take("a", 30), Err(70));
        assert_eq!(limiter.take("b", 30), Ok(()));
        limiter.refund("a");
        assert_eq!(limiter.take("a", 40), Ok(()));
        assert_eq!(limiter.take("a", 50), Err(50));
        assert_eq!(limiter.take("a", 100), Ok(()));
    }
}
