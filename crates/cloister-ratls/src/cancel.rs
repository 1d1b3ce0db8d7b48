//! Cancellation of work whose caller has gone away.
//!
//! One Privacy Pass token buys one exchange, and the gateway waits for its
//! answer only so long: when it gives up (or the client disconnects), the
//! HTTP handler's future is dropped. [`Cancellation::cancel_on_drop`] ties a
//! flag to that drop, and a [`crate::FeatureService`] that runs long work
//! checks the flag and stops, so that nobody can buy hours of inference with
//! one token by walking away from the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag set once the work's caller no longer waits for it. Clones share
/// the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<AtomicBool>);

impl Cancellation {
    /// A flag not set yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag: the work should stop as soon as it can.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the caller has gone away.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// A guard that sets the flag when it is dropped: keep it in the future
    /// whose caller may give up.
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// Sets its [`Cancellation`] when dropped.
#[derive(Debug)]
pub struct CancelOnDrop(Cancellation);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_guard_cancels_every_clone() {
        let cancellation = Cancellation::new();
        let seen_by_worker = cancellation.clone();
        let guard = cancellation.cancel_on_drop();
        assert!(!seen_by_worker.is_cancelled());
        drop(guard);
        assert!(seen_by_worker.is_cancelled());
    }
}
