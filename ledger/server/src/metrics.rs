//! Aggregate counters, exposed in the Prometheus text format at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of what the server did; only totals, never per-request detail.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Entries newly appended to the log.
    pub entries_appended: AtomicU64,
    /// Submissions of entries that were already logged.
    pub entries_duplicate: AtomicU64,
    /// Submissions refused for lacking valid reviewer signatures.
    pub rejected_not_admitted: AtomicU64,
    /// Submissions refused as malformed.
    pub rejected_malformed: AtomicU64,
    /// Requests that failed inside the server.
    pub internal_errors: AtomicU64,
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the current tree size as a gauge.
    pub fn render(&self, tree_size: u64) -> String {
        let mut out = String::new();
        let counters = [
            (
                "cloister_ledger_entries_appended_total",
                "",
                &self.entries_appended,
            ),
            (
                "cloister_ledger_entries_duplicate_total",
                "",
                &self.entries_duplicate,
            ),
            (
                "cloister_ledger_submissions_rejected_total",
                "{reason=\"not_admitted\"}",
                &self.rejected_not_admitted,
            ),
            (
                "cloister_ledger_submissions_rejected_total",
                "{reason=\"malformed\"}",
                &self.rejected_malformed,
            ),
            (
                "cloister_ledger_internal_errors_total",
                "",
                &self.internal_errors,
            ),
        ];
        let mut last_name = "";
        for (name, labels, value) in counters {
            if name != last_name {
                let _ = writeln!(out, "# TYPE {name} counter");
                last_name = name;
            }
            let _ = writeln!(out, "{name}{labels} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# TYPE cloister_ledger_tree_size gauge\ncloister_ledger_tree_size {tree_size}"
        );
        out
    }
}
