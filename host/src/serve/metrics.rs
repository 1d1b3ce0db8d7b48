//! Aggregate counters in the Prometheus text format, and the feature
//! service that counts requests.
//!
//! Only aggregates leave the CVM (DESIGN.md, "Logging"): session counts,
//! and request outcomes per feature. A feature label is a name from the
//! fixed `FeatureRequest` enum, never text from a request; nothing here is
//! per session or per user.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use cloister_api::{FeatureRequest, FeatureResponse, RequestError};
use cloister_ratls::{FeatureService, SessionStats};

use crate::logfilter::FilterStats;
use crate::runtime::Runtime;

/// Feature requests served, by feature and outcome.
#[derive(Debug, Default)]
pub struct FeatureCounters(Mutex<BTreeMap<String, Outcomes>>);

/// Outcome counts of one feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Requests answered with a response.
    pub ok: u64,
    /// Requests that failed (plugin error, limit, unknown feature).
    pub failed: u64,
}

impl FeatureCounters {
    /// Counters starting at zero for each of `features`, so that every
    /// loaded feature appears in the metrics before its first request.
    pub fn new<'a>(features: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Mutex::new(
            features
                .into_iter()
                .map(|name| (name.to_owned(), Outcomes::default()))
                .collect(),
        ))
    }

    /// Counts one request of `feature`.
    pub fn record(&self, feature: &str, ok: bool) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let outcomes = counts.entry(feature.to_owned()).or_default();
        if ok {
            outcomes.ok += 1;
        } else {
            outcomes.failed += 1;
        }
    }

    /// A snapshot, by feature name.
    pub fn snapshot(&self) -> BTreeMap<String, Outcomes> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The runtime as the session layer's [`FeatureService`], counting outcomes.
pub struct MeteredRuntime {
    runtime: Runtime,
    counters: std::sync::Arc<FeatureCounters>,
}

impl MeteredRuntime {
    /// Serves requests with `runtime`, counting them in `counters`.
    pub fn new(runtime: Runtime, counters: std::sync::Arc<FeatureCounters>) -> Self {
        Self { runtime, counters }
    }
}

impl FeatureService for MeteredRuntime {
    fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, RequestError> {
        let feature = request.feature();
        let outcome = self.runtime.handle(request).map_err(RequestError::from);
        self.counters.record(feature, outcome.is_ok());
        outcome
    }
}

/// Renders every counter in the Prometheus text exposition format.
pub fn render(
    sessions: &SessionStats,
    features: &BTreeMap<String, Outcomes>,
    logs: &FilterStats,
) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    let open = u64::try_from(sessions.open).unwrap_or(u64::MAX);
    metric(
        "cloister_host_sessions_open",
        "gauge",
        "RA-TLS sessions open now.",
        open,
    );
    metric(
        "cloister_host_sessions_opened_total",
        "counter",
        "RA-TLS sessions opened.",
        sessions.opened,
    );
    metric(
        "cloister_host_sessions_established_total",
        "counter",
        "RA-TLS sessions that received attestation evidence.",
        sessions.attested,
    );
    metric(
        "cloister_host_sessions_expired_total",
        "counter",
        "Sessions dropped for idleness.",
        sessions.expired,
    );
    metric(
        "cloister_host_sessions_failed_total",
        "counter",
        "Sessions dropped after an error.",
        sessions.failed,
    );
    metric(
        "cloister_host_requests_refused_total",
        "counter",
        "Feature requests refused on a session not yet attested.",
        sessions.refused,
    );
    metric(
        "cloister_host_log_events_kept_total",
        "counter",
        "Log events admitted by the allow-list.",
        logs.kept_events,
    );
    metric(
        "cloister_host_log_events_dropped_total",
        "counter",
        "Log events dropped by the allow-list.",
        logs.dropped_events,
    );
    metric(
        "cloister_host_log_fields_dropped_total",
        "counter",
        "Log fields dropped by the allow-list.",
        logs.dropped_fields,
    );
    let name = "cloister_host_feature_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} Feature requests served, by feature and outcome.\n# TYPE {name} counter"
    );
    for (feature, outcomes) in features {
        let _ = writeln!(
            out,
            "{name}{{feature=\"{feature}\",outcome=\"ok\"}} {}",
            outcomes.ok
        );
        let _ = writeln!(
            out,
            "{name}{{feature=\"{feature}\",outcome=\"failed\"}} {}",
            outcomes.failed
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_per_feature_and_outcome() {
        let counters = FeatureCounters::new(["summarise", "suggest"]);
        counters.record("summarise", true);
        counters.record("summarise", false);
        counters.record("summarise", true);
        let sessions = SessionStats {
            open: 2,
            opened: 5,
            expired: 1,
            attested: 4,
            ..SessionStats::default()
        };
        let text = render(&sessions, &counters.snapshot(), &FilterStats::default());
        for line in [
            "cloister_host_sessions_open 2",
            "cloister_host_sessions_opened_total 5",
            "cloister_host_sessions_established_total 4",
            "cloister_host_sessions_expired_total 1",
            "cloister_host_feature_requests_total{feature=\"summarise\",outcome=\"ok\"} 2",
            "cloister_host_feature_requests_total{feature=\"summarise\",outcome=\"failed\"} 1",
            "cloister_host_feature_requests_total{feature=\"suggest\",outcome=\"ok\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
    }
}
