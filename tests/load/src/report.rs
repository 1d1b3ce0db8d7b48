//! What a run reports, as JSON and as text, and what makes it a failure.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::DEADLINE_KIND;

/// Requests completed at which each party's resident memory is sampled:
/// memory is flat when the second sample is within
/// [`MEMORY_GROWTH_ALLOWED`] of the first.
pub const MEMORY_MILESTONES: [u64; 2] = [1_000, 10_000];

/// How much a party's resident memory may grow between the milestones.
pub const MEMORY_GROWTH_ALLOWED: f64 = 0.10;

/// Tokens a session spends before its first request: the TLS handshake
/// and the attestation exchange (`cloister_client::TOKENS_PER_SESSION`
/// counts the request as well).
pub const TOKENS_TO_OPEN_A_SESSION: u64 = 2;

/// One run of the load generator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Requests asked for.
    pub requested: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests sent on one attested session before a new one is opened.
    pub session_requests: u64,
    /// The feature asked.
    pub feature: String,
    /// Longest a request may take, session opening included.
    pub deadline_secs: u64,
    /// Requests answered by the feature.
    pub answered: u64,
    /// Requests that ended in an error (including past their deadline).
    pub failed: u64,
    /// Requests never started because the run's duration cap was reached.
    pub not_started: u64,
    /// Failed requests by kind (`crate::error_kind`).
    pub errors: BTreeMap<String, u64>,
    /// The whole message of the first failure of each kind.
    pub error_examples: BTreeMap<String, String>,
    /// Attested sessions opened.
    pub sessions_opened: u64,
    /// Latency of every request, answered or not.
    pub latency: Latency,
    /// Wall time of the run, from the first request to the last answer.
    pub wall_secs: f64,
    /// Answered requests per second of wall time.
    pub throughput: f64,
    /// OHTTP requests that succeeded (each one decapsulated, its token
    /// redeemed and answered by the gateway), per second of wall time.
    pub ohttp_per_sec: f64,
    /// Each party's resident memory.
    pub memory: Vec<PartyMemory>,
    /// Tokens: issued into the workers' wallets and spent.
    pub tokens: TokenAccount,
    /// The gateway's own counts over the run (from its `/metrics`).
    pub gateway: Option<GatewayFigures>,
    /// Spent tokens sent again, after the run.
    pub replay: Option<ReplayProbe>,
    /// The ledger, checked after the run.
    pub ledger: Option<LedgerAudit>,
    /// Tokens in the gateway's spent-token store after the run (read from
    /// its state file once it is stopped).
    pub spent_in_store: Option<u64>,
    /// Tokens the model generated during the run, at least (from the
    /// host's log, which keeps each count's bucket).
    pub generated_tokens: Option<u64>,
    /// Words in the answers' text (`crate::output_words`).
    pub output_words: u64,
    /// Faults injected during the run, in order, with when they happened.
    pub faults: Vec<String>,
    /// `uptime` at the start and at the end of the run.
    pub machine_load: Vec<String>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// The percentiles of `samples` (nearest rank); zeros when empty.
    #[must_use]
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let rank = |p: f64| {
            // Nearest rank: the smallest sample with at least p of them at or below it.
            let index = (p * samples.len() as f64).ceil() as usize;
            ms(samples[index.clamp(1, samples.len()) - 1])
        };
        let total: Duration = samples.iter().sum();
        Self {
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: ms(samples[samples.len() - 1]),
            mean_ms: ms(total) / samples.len() as f64,
        }
    }
}

/// One party's resident memory over the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyMemory {
    /// The party.
    pub party: String,
    /// Resident KiB (`VmRSS`) when this many requests had completed
    /// ([`MEMORY_MILESTONES`], and the end of the run).
    pub resident_kib: BTreeMap<u64, u64>,
    /// Peak resident KiB (`VmHWM`) at the end of the run.
    pub peak_kib: u64,
    /// The party was restarted during the run (a fault): its samples
    /// belong to different processes.
    pub restarted: bool,
}

impl PartyMemory {
    /// Growth between the two [`MEMORY_MILESTONES`] (0.05 = 5 %), if both
    /// were sampled in one process.
    #[must_use]
    pub fn growth(&self) -> Option<f64> {
        let [first, second] = MEMORY_MILESTONES;
        let (Some(&first), Some(&second)) = (
            self.resident_kib.get(&first),
            self.resident_kib.get(&second),
        ) else {
            return None;
        };
        (!self.restarted && first > 0).then(|| second as f64 / first as f64 - 1.0)
    }
}

/// Tokens issued into the workers' wallets and handed out by them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenAccount {
    /// Tokens fetched from the issuer.
    pub issued: u64,
    /// Seconds the issuance took (before the run and refills during it).
    pub issue_secs: f64,
    /// Tokens the wallets handed out (each went into one OHTTP request).
    pub taken: u64,
    /// Distinct tokens among those: equal to `taken` unless a wallet
    /// handed one out twice.
    pub distinct: u64,
}

/// The gateway's counts over the run, from its metrics before and after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayFigures {
    /// Tokens it redeemed.
    pub redeemed: u64,
    /// Requests it refused as carrying a token already spent.
    pub double_spent: u64,
    /// Its counters went down: it restarted during the run, and these
    /// figures cover only part of it.
    pub restarted: bool,
}

/// Spent tokens sent again in new requests after the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayProbe {
    /// Replays sent.
    pub sent: u64,
    /// Replays the gateway refused (401: it does not tell the client why).
    pub refused: u64,
    /// What the gateway counted as double spends meanwhile (its metrics).
    pub counted_as_spent: Option<u64>,
}

/// The ledger after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerAudit {
    /// The run's own ledger view brought up to date: the ledger's head now
    /// is an append-only extension of the one the run started from.
    pub extends_the_run_head: Result<(), String>,
    /// A new view synced from nothing: every entry downloaded and checked
    /// against the checkpoint the log signed and the pinned witnesses cosigned.
    pub verifies_from_scratch: Result<(), String>,
    /// The key configuration the gateway serves now is one that view trusts.
    pub served_key_logged: Result<(), String>,
}

impl Report {
    /// Tokens the gateway must at least have redeemed: one per OHTTP
    /// request that was answered.
    #[must_use]
    pub fn tokens_surely_spent(&self) -> u64 {
        self.answered + TOKENS_TO_OPEN_A_SESSION * self.sessions_opened
    }

    /// What is wrong with this run; empty when nothing is. With `strict`
    /// (no faults injected), every request must have been answered and the
    /// gateway's counts must match exactly.
    #[must_use]
    pub fn verdict(&self, strict: bool) -> Verdict {
        let mut problems = Vec::new();
        let accounted = self.answered + self.failed + self.not_started;
        if accounted != self.requested {
            problems.push(format!(
                "{} requests asked for, {accounted} accounted for (answered, failed or not started)",
                self.requested
            ));
        }
        if let Some(hung) = self.errors.get(DEADLINE_KIND) {
            problems.push(format!("{hung} requests did not end within their deadline"));
        }
        if strict && self.failed > 0 {
            problems.push(format!(
                "{} requests failed: {:?}",
                self.failed, self.errors
            ));
        }
        if strict && self.not_started > 0 {
            problems.push(format!(
                "{} requests never started (duration cap)",
                self.not_started
            ));
        }
        if self.tokens.distinct != self.tokens.taken {
            problems.push(format!(
                "the wallets handed out {} tokens, {} distinct",
                self.tokens.taken, self.tokens.distinct
            ));
        }
        let surely = self.tokens_surely_spent();
        if let Some(gateway) = self.gateway.filter(|g| !g.restarted) {
            if gateway.redeemed > self.tokens.taken {
                problems.push(format!(
                    "the gateway redeemed {} tokens of {} sent: one was accepted twice",
                    gateway.redeemed, self.tokens.taken
                ));
            }
            if gateway.redeemed < surely {
                problems.push(format!(
                    "the gateway redeemed {} tokens for {surely} answered OHTTP requests",
                    gateway.redeemed
                ));
            }
            if gateway.double_spent > 0 {
                problems.push(format!(
                    "the gateway refused {} tokens as already spent during the run, \
                     whose client never sent one twice",
                    gateway.double_spent
                ));
            }
        }
        if let Some(spent) = self.spent_in_store
            && !(surely..=self.tokens.taken).contains(&spent)
        {
            problems.push(format!(
                "the gateway's store holds {spent} spent tokens; between {surely} (answered \
                 OHTTP requests) and {} (tokens sent) expected",
                self.tokens.taken
            ));
        }
        if let Some(replay) = self.replay {
            if replay.refused != replay.sent {
                problems.push(format!(
                    "{} of {} replayed tokens were accepted",
                    replay.sent.saturating_sub(replay.refused),
                    replay.sent
                ));
            }
            if let Some(counted) = replay.counted_as_spent.filter(|c| *c != replay.sent) {
                problems.push(format!(
                    "the gateway counted {counted} double spends for {} replayed tokens",
                    replay.sent
                ));
            }
        }
        if let Some(ledger) = &self.ledger {
            for (what, outcome) in [
                ("extends the run's head", &ledger.extends_the_run_head),
                ("verifies from scratch", &ledger.verifies_from_scratch),
                ("logs the served key", &ledger.served_key_logged),
            ] {
                if let Err(why) = outcome {
                    problems.push(format!("the ledger no longer {what}: {why}"));
                }
            }
        }
        for party in &self.memory {
            if let Some(growth) = party.growth()
                && growth > MEMORY_GROWTH_ALLOWED
            {
                problems.push(format!(
                    "{} grew {:.1} % between {} and {} requests",
                    party.party,
                    growth * 100.0,
                    MEMORY_MILESTONES[0],
                    MEMORY_MILESTONES[1]
                ));
            }
        }
        Verdict { problems }
    }
}

/// What is wrong with a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Each problem, in words; none for a good run.
    pub problems: Vec<String>,
}

impl Verdict {
    /// True when nothing is wrong.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} requests of `{}`, {} at a time, a new session every {} requests",
            self.requested, self.feature, self.concurrency, self.session_requests
        )?;
        writeln!(
            f,
            "  answered {}  failed {}  not started {}  sessions {}",
            self.answered, self.failed, self.not_started, self.sessions_opened
        )?;
        for (kind, count) in &self.errors {
            writeln!(f, "    {count:>6}  {kind}")?;
            if let Some(example) = self.error_examples.get(kind) {
                writeln!(f, "            e.g. {example}")?;
            }
        }
        let l = &self.latency;
        writeln!(
            f,
            "  latency ms: p50 {:.1}  p99 {:.1}  max {:.1}  mean {:.1}",
            l.p50_ms, l.p99_ms, l.max_ms, l.mean_ms
        )?;
        writeln!(
            f,
            "  {:.1} s: {:.1} requests/s, {:.1} OHTTP requests/s",
            self.wall_secs, self.throughput, self.ohttp_per_sec
        )?;
        let per_sec = |n: u64| n as f64 / self.wall_secs.max(f64::EPSILON);
        writeln!(
            f,
            "  {} words answered: {:.1} words/s",
            self.output_words,
            per_sec(self.output_words)
        )?;
        if let Some(generated) = self.generated_tokens {
            writeln!(
                f,
                "  at least {generated} tokens generated (the host log's buckets): {:.1} tokens/s or more",
                per_sec(generated)
            )?;
        }
        let t = &self.tokens;
        writeln!(
            f,
            "  tokens: {} issued in {:.1} s, {} sent ({} distinct), at least {} spent",
            t.issued,
            t.issue_secs,
            t.taken,
            t.distinct,
            self.tokens_surely_spent()
        )?;
        if let Some(g) = self.gateway {
            writeln!(
                f,
                "  gateway: {} redeemed, {} refused as spent{}",
                g.redeemed,
                g.double_spent,
                if g.restarted {
                    " (restarted: partial)"
                } else {
                    ""
                }
            )?;
        }
        if let Some(spent) = self.spent_in_store {
            writeln!(f, "  gateway's spent-token store: {spent}")?;
        }
        if let Some(r) = self.replay {
            writeln!(
                f,
                "  replayed {} spent tokens: {} refused, {} counted as double spends by the gateway",
                r.sent,
                r.refused,
                r.counted_as_spent
                    .map_or_else(|| "?".to_owned(), |c| c.to_string())
            )?;
        }
        if let Some(ledger) = &self.ledger {
            let show = |r: &Result<(), String>| match r {
                Ok(()) => "yes".to_owned(),
                Err(e) => format!("NO ({e})"),
            };
            writeln!(
                f,
                "  ledger: extends the run's head {}; verifies from scratch {}; served key logged {}",
                show(&ledger.extends_the_run_head),
                show(&ledger.verifies_from_scratch),
                show(&ledger.served_key_logged)
            )?;
        }
        writeln!(f, "  memory (MiB resident at N requests; peak):")?;
        for party in &self.memory {
            let samples: Vec<String> = party
                .resident_kib
                .iter()
                .map(|(at, kib)| format!("{at}: {:.1}", *kib as f64 / 1024.0))
                .collect();
            let growth = party
                .growth()
                .map(|g| format!("  growth {:+.1} %", g * 100.0))
                .unwrap_or_default();
            writeln!(
                f,
                "    {:<10} {}; peak {:.1}{growth}{}",
                party.party,
                samples.join(", "),
                party.peak_kib as f64 / 1024.0,
                if party.restarted { " (restarted)" } else { "" }
            )?;
        }
        for fault in &self.faults {
            writeln!(f, "  fault: {fault}")?;
        }
        for load in &self.machine_load {
            writeln!(f, "  machine: {load}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Report {
        Report {
            requested: 10,
            answered: 10,
            sessions_opened: 2,
            tokens: TokenAccount {
                issued: 20,
                issue_secs: 0.1,
                taken: 14,
                distinct: 14,
            },
            gateway: Some(GatewayFigures {
                redeemed: 14,
                double_spent: 0,
                restarted: false,
            }),
            replay: Some(ReplayProbe {
                sent: 1,
                refused: 1,
                counted_as_spent: Some(1),
            }),
            spent_in_store: Some(14),
            ..Report::default()
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::of(&mut samples);
        assert_eq!(
            (latency.p50_ms, latency.p99_ms, latency.max_ms),
            (50.0, 99.0, 100.0)
        );
        assert_eq!(Latency::of(&mut []), Latency::default());
    }

    #[test]
    fn a_clean_run_passes_and_each_fault_of_it_is_named() {
        assert_eq!(good().verdict(true).problems, Vec::<String>::new());
        type BreakIt = fn(&mut Report);
        let checks: [(BreakIt, &str); 9] = [
            (|r| r.answered = 9, "10 requests asked for, 9 accounted for"),
            (
                |r| r.tokens.distinct = 13,
                "the wallets handed out 14 tokens, 13 distinct",
            ),
            (
                |r| r.spent_in_store = Some(15),
                "the gateway's store holds 15 spent tokens",
            ),
            (
                |r| r.gateway = r.gateway.map(|g| GatewayFigures { redeemed: 15, ..g }),
                "one was accepted twice",
            ),
            (
                |r| r.replay = r.replay.map(|p| ReplayProbe { refused: 0, ..p }),
                "1 of 1 replayed tokens were accepted",
            ),
            (
                |r| {
                    r.replay = r.replay.map(|p| ReplayProbe {
                        counted_as_spent: Some(0),
                        ..p
                    });
                },
                "the gateway counted 0 double spends for 1 replayed tokens",
            ),
            (
                |r| {
                    r.gateway = r.gateway.map(|g| GatewayFigures {
                        double_spent: 1,
                        ..g
                    })
                },
                "refused 1 tokens as already spent during the run",
            ),
            (
                |r| {
                    r.answered = 9;
                    r.failed = 1;
                    r.errors.insert(DEADLINE_KIND.into(), 1);
                },
                "1 requests did not end within their deadline",
            ),
            (
                |r| {
                    r.memory.push(PartyMemory {
                        party: "relay".into(),
                        resident_kib: BTreeMap::from([(1_000, 100), (10_000, 111)]),
                        peak_kib: 111,
                        restarted: false,
                    });
                },
                "relay grew 11.0 % between 1000 and 10000 requests",
            ),
        ];
        for (break_it, expected) in checks {
            let mut report = good();
            break_it(&mut report);
            let problems = report.verdict(false).problems;
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:?}"
            );
        }
    }

    #[test]
    fn failures_fail_only_a_strict_run() {
        let mut report = good();
        report.answered = 8;
        report.failed = 2;
        report.errors.insert("request: HTTP 502".into(), 2);
        report.sessions_opened = 3;
        assert!(report.verdict(false).passed());
        assert!(!report.verdict(true).passed());
    }
}
