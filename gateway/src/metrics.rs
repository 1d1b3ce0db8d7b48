//! Aggregate counters: the gateway exports totals only, never anything per
//! request or per client.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the gateway counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Encapsulated requests received.
    Requests,
    /// Requests answered by a host and encapsulated back.
    Routed,
    /// Outer errors: wrong media type.
    BadMediaType,
    /// Outer errors: key id not held (the client should refetch keys).
    UnknownKeyId,
    /// Outer errors: malformed or undecryptable encapsulation.
    DecapsulationFailed,
    /// Inner errors: not a valid Binary HTTP request.
    BadInnerRequest,
    /// Inner errors: `Date` missing or outside the window.
    DateRejected,
    /// Inner errors: encapsulated request seen before.
    Replayed,
    /// Inner errors: replay store full, request refused.
    ReplayStoreFull,
    /// Inner errors: token missing or not redeemable.
    TokenRejected,
    /// Inner errors: the router could not reach a host.
    RouteFailed,
    /// Key configuration list served.
    KeyConfigServed,
}

impl Counter {
    const ALL: [Self; 12] = [
        Self::Requests,
        Self::Routed,
        Self::BadMediaType,
        Self::UnknownKeyId,
        Self::DecapsulationFailed,
        Self::BadInnerRequest,
        Self::DateRejected,
        Self::Replayed,
        Self::ReplayStoreFull,
        Self::TokenRejected,
        Self::RouteFailed,
        Self::KeyConfigServed,
    ];

    /// The Prometheus metric name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Requests => "gateway_requests_total",
            Self::Routed => "gateway_routed_total",
            Self::BadMediaType => "gateway_bad_media_type_total",
            Self::UnknownKeyId => "gateway_unknown_key_id_total",
            Self::DecapsulationFailed => "gateway_decapsulation_failed_total",
            Self::BadInnerRequest => "gateway_bad_inner_request_total",
            Self::DateRejected => "gateway_date_rejected_total",
            Self::Replayed => "gateway_replayed_total",
            Self::ReplayStoreFull => "gateway_replay_store_full_total",
            Self::TokenRejected => "gateway_token_rejected_total",
            Self::RouteFailed => "gateway_route_failed_total",
            Self::KeyConfigServed => "gateway_key_config_served_total",
        }
    }
}

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    values: [AtomicU64; Counter::ALL.len()],
}

impl Metrics {
    /// Add one to `counter`.
    pub fn incr(&self, counter: Counter) {
        self.values[counter as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The current value of `counter`.
    #[must_use]
    pub fn get(&self, counter: Counter) -> u64 {
        self.values[counter as usize].load(Ordering::Relaxed)
    }

    /// All counters in the Prometheus text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for counter in Counter::ALL {
            let _ = writeln!(
                out,
                "# TYPE {} counter\n{} {}",
                counter.name(),
                counter.name(),
                self.get(counter)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_independent_and_rendered() {
        let metrics = Metrics::default();
        metrics.incr(Counter::Replayed);
        metrics.incr(Counter::Replayed);
        metrics.incr(Counter::KeyConfigServed);
        assert_eq!(metrics.get(Counter::Replayed), 2);
        assert_eq!(metrics.get(Counter::Requests), 0);
        let text = metrics.render();
        assert!(text.contains("gateway_replayed_total 2\n"));
        assert!(text.contains("gateway_key_config_served_total 1\n"));
        assert_eq!(text.matches(" counter\n").count(), Counter::ALL.len());
    }
}
