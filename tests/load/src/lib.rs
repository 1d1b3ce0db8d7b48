//! Cloister's load generator: many feature requests through the whole
//! chain on loopback, each one as a client sends it (the client library's
//! OHTTP transport through the relay to the gateway, which redeems a
//! Privacy Pass token from the issuer for every OHTTP request and forwards
//! the RA-TLS records to the attested host; the gateway's keys and the
//! host's release checked against the synced ledger).
//!
//! The `cloister-load` binary drives the load; `cargo xtask load` starts
//! the chain for it (and injects faults during it with `--faults`), and the
//! end-to-end test `load` runs it small in CI. This library holds what a
//! report says and the checks that decide it, so that the binary, the
//! xtask and the test read one format:
//!
//! * [`Bounds`]: a run is capped in requests, concurrency and duration, and
//!   refuses every endpoint that is not on loopback ([`check_loopback`]): a
//!   load generator must not be pointed at someone else's service;
//! * [`Report`]: requests answered and failed, failures by [`error_kind`]
//!   (a short, stable label of a typed error), latency percentiles,
//!   throughput, each party's resident memory after 1,000 and 10,000
//!   requests and its peak ([`memory`]), the token account (every token
//!   handed out once, the gateway's redemptions and its spent-token store
//!   against the requests that succeeded), and the ledger audit;
//! * [`Report::verdict`]: what is wrong with a run, empty when nothing is.
//!
//! # Cargo features
//!
//! None.

pub mod memory;
mod report;

pub use report::{
    GatewayFigures, Latency, LedgerAudit, MEMORY_GROWTH_ALLOWED, MEMORY_MILESTONES, PartyMemory,
    ReplayProbe, Report, TOKENS_TO_OPEN_A_SESSION, TokenAccount, Verdict,
};

use std::net::IpAddr;
use std::time::Duration;

/// What a run may ask for at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Requests in one run.
    pub requests: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Wall time of one run; past it no new request starts.
    pub duration: Duration,
}

/// The caps of every run: a load generator that anyone can start must not
/// run unbounded.
pub const BOUNDS: Bounds = Bounds {
    requests: 100_000,
    concurrency: 256,
    duration: Duration::from_secs(3600),
};

/// Why a run was refused before it started.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BoundsError {
    /// A setting is zero or above its cap.
    #[error("{what} must be between 1 and {cap}, not {value}")]
    OutOfRange {
        /// The setting.
        what: &'static str,
        /// What was asked.
        value: u64,
        /// Its cap.
        cap: u64,
    },
    /// An endpoint is not on loopback.
    #[error("{what} {url} is not on loopback: the load generator only drives a local chain")]
    NotLoopback {
        /// Which endpoint.
        what: String,
        /// Its URL.
        url: String,
    },
}

impl Bounds {
    /// `Ok` if `requests`, `concurrency` and `duration` are each at least
    /// one and within these caps.
    ///
    /// # Errors
    /// [`BoundsError::OutOfRange`] naming the first setting out of range.
    pub fn check(
        &self,
        requests: u64,
        concurrency: usize,
        duration: Duration,
    ) -> Result<(), BoundsError> {
        let within = |what, value: u64, cap: u64| {
            if (1..=cap).contains(&value) {
                Ok(())
            } else {
                Err(BoundsError::OutOfRange { what, value, cap })
            }
        };
        within("the request count", requests, self.requests)?;
        within(
            "the concurrency",
            u64::try_from(concurrency).unwrap_or(u64::MAX),
            u64::try_from(self.concurrency).unwrap_or(u64::MAX),
        )?;
        within(
            "the duration in seconds",
            duration.as_secs(),
            self.duration.as_secs(),
        )
    }
}

/// `Ok` if `url`'s host is a loopback address or `localhost` (or a name
/// under `.localhost`, which resolves to loopback by RFC 6761).
///
/// # Errors
/// [`BoundsError::NotLoopback`] otherwise, or if `url` does not parse.
pub fn check_loopback(what: &str, url: &str) -> Result<(), BoundsError> {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|parsed| parsed.host_str().map(str::to_ascii_lowercase));
    let loopback = host.is_some_and(|host| {
        host == "localhost"
            || host.ends_with(".localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if loopback {
        Ok(())
    } else {
        Err(BoundsError::NotLoopback {
            what: what.to_owned(),
            url: url.to_owned(),
        })
    }
}

/// A short, stable label for a failed request: where it failed
/// (`session`: opening the attested session, `request`: the feature
/// request in it) and what the typed error says (the HTTP status and
/// problem type a hop answered, the feature's error code, the transport's
/// cause), without anything request-specific, so that failures can be
/// counted by kind.
#[must_use]
pub fn error_kind(phase: &str, error: &cloister_ratls::ClientError) -> String {
    use cloister_ratls::{ClientError, TransportError};
    let what = match error {
        ClientError::Transport(TransportError::Status { status, message }) => {
            #[derive(serde::Deserialize)]
            struct Problem {
                #[serde(rename = "type")]
                kind: String,
            }
            match serde_json::from_str::<Problem>(message) {
                Ok(problem) => {
                    let kind = problem
                        .kind
                        .rsplit(['/', ':', '#'])
                        .next()
                        .unwrap_or_default();
                    format!("HTTP {status} {kind}")
                }
                Err(_) => format!("HTTP {status}"),
            }
        }
        ClientError::Transport(TransportError::Failed(cause)) => {
            let lower = cause.to_ascii_lowercase();
            // The OHTTP transport's words for an outer HTTP status.
            let status = lower.split_once(" answered ").and_then(|(_, rest)| {
                let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
                (code.len() == 3).then_some(code)
            });
            let why = if let Some(code) = status {
                format!("relay or gateway answered {code}")
            } else if lower.contains("connection refused") {
                "connection refused".to_owned()
            } else if lower.contains("timed out") || lower.contains("timeout") {
                "timed out".to_owned()
            } else if lower.contains("connection reset") || lower.contains("connection closed") {
                "connection closed".to_owned()
            } else {
                "other".to_owned()
            };
            format!("transport failed ({why})")
        }
        ClientError::Feature(refusal) => serde_json::to_value(refusal)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .map_or_else(
                || "feature failed".to_owned(),
                |code| format!("feature {code}"),
            ),
        ClientError::Setup(_) => "tls setup".to_owned(),
        ClientError::Tls(_) => "tls".to_owned(),
        ClientError::Frame(_) => "bad frame".to_owned(),
        ClientError::Attestation(_) => "attestation refused".to_owned(),
        ClientError::Refused(_) => "host refused".to_owned(),
        ClientError::Protocol(_) => "protocol violation".to_owned(),
        other => {
            let text = other.to_string();
            text.split(':').next().unwrap_or_default().to_owned()
        }
    };
    format!("{phase}: {what}")
}

/// The label of a request that did not end within its deadline.
pub const DEADLINE_KIND: &str = "deadline exceeded";

/// The gateway's token redemptions and double-spend refusals so far, from
/// the text of its `/metrics`.
#[must_use]
pub fn gateway_counts(metrics: &str) -> GatewayFigures {
    let sum = |prefix: &str| {
        metrics
            .lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    GatewayFigures {
        redeemed: sum("cloister_gateway_tokens_redeemed_total{"),
        double_spent: sum("cloister_gateway_errors_total{kind=\"token_double_spent\"}"),
        restarted: false,
    }
}

/// Tokens generated, summed over the host's `request-completed` log
/// events (`generated_tokens` in text or JSON form). The host's log filter
/// records each count as the lower end of its bucket (`[0, 10, 100,
/// 1000]`), so this is a lower bound.
#[must_use]
pub fn generated_tokens(host_log: &str) -> u64 {
    host_log
        .lines()
        .filter(|line| line.contains("request-completed"))
        .filter_map(|line| {
            let (_, after) = line.split_once("generated_tokens")?;
            let digits: String = after
                .trim_start_matches(['"', '=', ':', ' '])
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().ok()
        })
        .sum()
}

/// Words in the text of a feature's output: every string in it, split at
/// whitespace (what a reader gets, independent of the model's tokenizer).
#[must_use]
pub fn output_words(output: &serde_json::Value) -> u64 {
    match output {
        serde_json::Value::String(text) => text.split_whitespace().count() as u64,
        serde_json::Value::Array(items) => items.iter().map(output_words).sum(),
        serde_json::Value::Object(fields) => fields.values().map(output_words).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloister_ratls::{ClientError, TransportError};

    #[test]
    fn the_gateways_counts_are_read_from_its_metrics() {
        let text = "# HELP x\ncloister_gateway_tokens_redeemed_total{issuer_key=\"ab\"} 7\n\
                    cloister_gateway_tokens_redeemed_total{issuer_key=\"cd\"} 3\n\
                    cloister_gateway_errors_total{kind=\"token_double_spent\"} 2\n\
                    cloister_gateway_errors_total{kind=\"replayed\"} 5\n";
        assert_eq!(
            gateway_counts(text),
            GatewayFigures {
                redeemed: 10,
                double_spent: 2,
                restarted: false
            }
        );
    }

    #[test]
    fn generated_tokens_are_summed_from_the_hosts_log() {
        let log = "INFO event=\"request-completed\" plugin=summarise generated_tokens=12\n\
                   {\"event\":\"request-completed\",\"generated_tokens\":30}\n\
                   INFO event=\"session-opened\" generated_tokens=99\n";
        assert_eq!(generated_tokens(log), 42);
    }

    #[test]
    fn output_words_count_every_string() {
        let output = serde_json::json!({"summary": "Lunch at noon, Friday.", "points": ["a b", "c"], "n": 3});
        assert_eq!(output_words(&output), 7);
    }

    #[test]
    fn only_loopback_endpoints_are_driven() {
        for url in [
            "http://127.0.0.1:7100/relay",
            "https://127.0.0.1:7400",
            "http://[::1]:80/",
            "https://localhost:7300/token-request",
            "https://gateway.cloister.localhost/x",
        ] {
            assert_eq!(check_loopback("relay", url), Ok(()), "{url}");
        }
        for url in [
            "https://relay.example.com/relay",
            "http://10.0.0.1:7100/relay",
            "http://localhost.example.com/",
            "not a url",
        ] {
            assert!(
                matches!(
                    check_loopback("relay", url),
                    Err(BoundsError::NotLoopback { .. })
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn runs_are_capped() {
        let minute = Duration::from_secs(60);
        assert_eq!(BOUNDS.check(10_000, 64, minute), Ok(()));
        assert!(BOUNDS.check(0, 64, minute).is_err());
        assert!(BOUNDS.check(100_001, 64, minute).is_err());
        assert!(BOUNDS.check(10, 0, minute).is_err());
        assert!(BOUNDS.check(10, 257, minute).is_err());
        assert!(BOUNDS.check(10, 8, Duration::ZERO).is_err());
        assert!(BOUNDS.check(10, 8, Duration::from_secs(3601)).is_err());
    }

    #[test]
    fn failures_are_counted_by_kind_without_their_details() {
        let status = |status, message: &str| {
            ClientError::Transport(TransportError::Status {
                status,
                message: message.into(),
            })
        };
        let gone = r#"{"type":"urn:cloister:problem:session-host-gone","title":"x"}"#;
        assert_eq!(
            error_kind("request", &status(503, gone)),
            "request: HTTP 503 session-host-gone"
        );
        assert_eq!(
            error_kind("request", &status(502, "bad gateway")),
            "request: HTTP 502"
        );
        let refused = ClientError::Transport(TransportError::Failed(
            "transport: error sending request for url (http://127.0.0.1:1/relay): Connection refused (os error 111)".into(),
        ));
        assert_eq!(
            error_kind("request", &refused),
            "request: transport failed (connection refused)"
        );
        let bad_gateway = ClientError::Transport(TransportError::Failed(
            "relay or gateway answered 502 (problem: None)".into(),
        ));
        assert_eq!(
            error_kind("request", &bad_gateway),
            "request: transport failed (relay or gateway answered 502)"
        );
        let busy = ClientError::Feature(cloister_api::RequestError::AtCapacity);
        assert_eq!(error_kind("request", &busy), "request: feature at-capacity");
    }
}
