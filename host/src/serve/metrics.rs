//! The host's metrics, and the feature service that counts requests.
//!
//! Only aggregates leave the CVM (DESIGN.md, "Logging"): requests and
//! latency per route, feature failures by [`FeatureFailure`] kind, outcomes
//! per feature, session counts and log filter counts (see
//! `cloister-metrics`). A feature label is the name of a plugin loaded at
//! boot, never text from a request; nothing here is per session or per user.

use std::sync::Arc;

use cloister_api::{FeatureRequest, FeatureResponse, RequestError};
use cloister_metrics::{CounterFamily, ErrorCounter, ErrorKind, ServerMetrics};
use cloister_ratls::{Cancellation, FeatureService, SessionTable};

use crate::error::RunError;
use crate::logfilter::LogFilter;
use crate::runtime::Runtime;

/// Why a feature request failed: the `kind` label of
/// `cloister_host_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeatureFailure {
    /// No plugin of that name.
    UnknownPlugin,
    /// The input does not fit the feature's declared types.
    InvalidInput,
    /// The output cannot be written as JSON.
    InvalidOutput,
    /// Every instance slot in use.
    AtCapacity,
    /// Wall-time limit reached.
    TimeLimit,
    /// Memory limit reached.
    MemoryLimit,
    /// Table limit reached.
    TableLimit,
    /// Stack overflow.
    StackOverflow,
    /// Any other trap.
    Trap,
    /// Response over the manifest's size limit.
    OutputTooLarge,
    /// The plugin's own typed error.
    Feature,
    /// The caller gave up and the request was stopped.
    Cancelled,
}

impl FeatureFailure {
    /// The kind of `error`.
    pub fn of(error: &RunError) -> Self {
        match error {
            RunError::UnknownPlugin(_) => Self::UnknownPlugin,
            RunError::InvalidInput { .. } => Self::InvalidInput,
            RunError::InvalidOutput { .. } => Self::InvalidOutput,
            RunError::AtCapacity => Self::AtCapacity,
            RunError::TimeLimit { .. } => Self::TimeLimit,
            RunError::MemoryLimit { .. } => Self::MemoryLimit,
            RunError::TableLimit { .. } => Self::TableLimit,
            RunError::StackOverflow { .. } => Self::StackOverflow,
            RunError::Trap { .. } => Self::Trap,
            RunError::OutputTooLarge { .. } => Self::OutputTooLarge,
            RunError::Feature { .. } => Self::Feature,
            RunError::Cancelled { .. } => Self::Cancelled,
        }
    }
}

impl ErrorKind for FeatureFailure {
    const ALL: &'static [Self] = &[
        Self::UnknownPlugin,
        Self::InvalidInput,
        Self::InvalidOutput,
        Self::AtCapacity,
        Self::TimeLimit,
        Self::MemoryLimit,
        Self::TableLimit,
        Self::StackOverflow,
        Self::Trap,
        Self::OutputTooLarge,
        Self::Feature,
        Self::Cancelled,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::UnknownPlugin => "unknown_plugin",
            Self::InvalidInput => "invalid_input",
            Self::InvalidOutput => "invalid_output",
            Self::AtCapacity => "at_capacity",
            Self::TimeLimit => "time_limit",
            Self::MemoryLimit => "memory_limit",
            Self::TableLimit => "table_limit",
            Self::StackOverflow => "stack_overflow",
            Self::Trap => "trap",
            Self::OutputTooLarge => "output_too_large",
            Self::Feature => "feature",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The host's metrics.
pub type HostMetrics = ServerMetrics<FeatureFailure>;

/// A fresh set of host metrics.
pub fn host_metrics() -> HostMetrics {
    ServerMetrics::new("cloister_host")
}

/// Counts feature requests by feature and outcome, and failures by kind.
#[derive(Debug, Clone)]
pub struct FeatureMeter {
    outcomes: CounterFamily,
    failures: ErrorCounter<FeatureFailure>,
}

impl FeatureMeter {
    /// Counters in `metrics`, starting at zero for each of `features` so
    /// that every loaded feature appears before its first request.
    pub fn new<'a>(metrics: &mut HostMetrics, features: impl IntoIterator<Item = &'a str>) -> Self {
        let outcomes = metrics.counter_family(
            "feature_requests",
            "Feature requests served, by feature and outcome.",
        );
        for feature in features {
            for outcome in ["ok", "failed"] {
                outcomes.declare(&[("feature", feature), ("outcome", outcome)]);
            }
        }
        Self {
            outcomes,
            failures: metrics.error_counter(),
        }
    }

    /// Counts one request of `feature` that ended with `outcome`.
    pub fn record(&self, feature: &str, outcome: Result<(), &RunError>) {
        let label = match outcome {
            Ok(()) => "ok",
            Err(error) => {
                self.failures.inc(FeatureFailure::of(error));
                "failed"
            }
        };
        self.outcomes
            .inc(&[("feature", feature), ("outcome", label)]);
    }
}

/// Exports the session table's and the log filter's counts at each scrape.
pub fn collect_sessions(metrics: &mut HostMetrics, table: Arc<SessionTable>, logs: Arc<LogFilter>) {
    metrics.collect(move |figures| {
        let sessions = table.stats();
        let logs = logs.stats();
        let open = i64::try_from(sessions.open).unwrap_or(i64::MAX);
        figures.gauge("sessions_open", "RA-TLS sessions open now.", open);
        figures.counter(
            "sessions_opened",
            "RA-TLS sessions opened.",
            sessions.opened,
        );
        figures.counter(
            "sessions_established",
            "RA-TLS sessions that received attestation evidence.",
            sessions.attested,
        );
        figures.counter(
            "sessions_expired",
            "Sessions dropped for idleness.",
            sessions.expired,
        );
        figures.counter(
            "sessions_failed",
            "Sessions dropped after an error.",
            sessions.failed,
        );
        figures.counter(
            "requests_refused",
            "Feature requests refused on a session not yet attested.",
            sessions.refused,
        );
        figures.counter(
            "log_events_kept",
            "Log events admitted by the allow-list.",
            logs.kept_events,
        );
        figures.counter(
            "log_events_dropped",
            "Host log events dropped by the allow-list, plus requests whose plugin logged anything it refused (one each).",
            logs.dropped_events,
        );
        figures.counter(
            "log_fields_dropped",
            "Fields of host log events dropped by the allow-list.",
            logs.dropped_fields,
        );
    });
}

/// The runtime as the session layer's [`FeatureService`], counting outcomes.
pub struct MeteredRuntime {
    runtime: Runtime,
    meter: FeatureMeter,
}

impl MeteredRuntime {
    /// Serves requests with `runtime`, counting them with `meter`.
    pub fn new(runtime: Runtime, meter: FeatureMeter) -> Self {
        Self { runtime, meter }
    }
}

impl FeatureService for MeteredRuntime {
    fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, RequestError> {
        self.handle_cancellable(request, &Cancellation::new())
    }

    /// Stops the plugin when the caller gives up (see
    /// [`Runtime::run_cancellable`]).
    fn handle_cancellable(
        &self,
        request: FeatureRequest,
        cancel: &Cancellation,
    ) -> Result<FeatureResponse, RequestError> {
        // The label names a loaded feature or none: a name the client made
        // up must not leave the host through the metrics.
        let feature = if self.runtime.serves(request.feature()) {
            request.feature().to_owned()
        } else {
            "unknown".to_owned()
        };
        let outcome = self.runtime.handle_cancellable(&request, cancel);
        self.meter.record(&feature, outcome.as_ref().map(|_| ()));
        outcome.map_err(RequestError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_per_feature_outcome_and_failure_kind() {
        let mut metrics = host_metrics();
        let meter = FeatureMeter::new(&mut metrics, ["summarise", "suggest"]);
        meter.record("summarise", Ok(()));
        meter.record("summarise", Err(&RunError::AtCapacity));
        meter.record("summarise", Ok(()));
        let text = metrics.render();
        for line in [
            "cloister_host_feature_requests_total{feature=\"summarise\",outcome=\"ok\"} 2",
            "cloister_host_feature_requests_total{feature=\"summarise\",outcome=\"failed\"} 1",
            "cloister_host_feature_requests_total{feature=\"suggest\",outcome=\"ok\"} 0",
            "cloister_host_errors_total{kind=\"at_capacity\"} 1",
            "cloister_host_errors_total{kind=\"trap\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
    }
}
