//! The ledger server's metrics: requests, [`Failure`]s and latency per
//! route (see `cloister-metrics`), entries appended and resubmitted, and
//! the tree size. Only totals, never per-request detail.

use std::sync::Arc;

use cloister_ledger::LedgerError;
use cloister_metrics::{Counter, ErrorKind, ServerMetrics};

/// Why a request failed: the `kind` label of `cloister_ledger_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// A malformed entry or request (400).
    BadRequest,
    /// An entry without enough valid reviewer signatures (403).
    NotAdmitted,
    /// No such entry, digest or tree size (404).
    NotFound,
    /// A failure inside the server (500).
    Internal,
}

impl Failure {
    /// The kind of `error`.
    pub fn of(error: &LedgerError) -> Self {
        match error {
            LedgerError::BadEntry(_) | LedgerError::BadRequest(_) => Self::BadRequest,
            LedgerError::NotAdmitted(_) => Self::NotAdmitted,
            LedgerError::NotFound(_) => Self::NotFound,
            _ => Self::Internal,
        }
    }
}

impl ErrorKind for Failure {
    const ALL: &'static [Self] = &[
        Self::BadRequest,
        Self::NotAdmitted,
        Self::NotFound,
        Self::Internal,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::NotAdmitted => "not_admitted",
            Self::NotFound => "not_found",
            Self::Internal => "internal",
        }
    }
}

/// What the ledger server counts.
#[derive(Debug)]
pub struct LedgerMetrics {
    server: Arc<ServerMetrics<Failure>>,
    /// Entries newly appended to the log.
    pub appended: Counter,
    /// Submissions of entries that were already logged.
    pub duplicates: Counter,
}

impl LedgerMetrics {
    /// Metrics whose tree-size gauge reads `tree_size` at each scrape
    /// (`None`: left out of that scrape).
    pub fn new(tree_size: impl Fn() -> Option<u64> + Send + Sync + 'static) -> Self {
        let mut server = ServerMetrics::new("cloister_ledger");
        let appended = server.counter("entries_appended", "Entries newly appended to the log.");
        let duplicates = server.counter(
            "entries_duplicate",
            "Submissions of entries that were already logged.",
        );
        server.collect(move |figures| {
            if let Some(size) = tree_size() {
                figures.gauge(
                    "tree_size",
                    "Entries in the log.",
                    i64::try_from(size).unwrap_or(i64::MAX),
                );
            }
        });
        Self {
            server: Arc::new(server),
            appended,
            duplicates,
        }
    }

    /// Requests, failures and latency.
    pub fn server(&self) -> &Arc<ServerMetrics<Failure>> {
        &self.server
    }
}
