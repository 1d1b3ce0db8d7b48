//! Abuse monitoring from metadata only: the alert rules of
//! `deploy/monitoring/cloister-alerts.yml`, evaluated by Prometheus's own
//! `promtool` on what the relay, gateway and issuer export at `/metrics`
//! while a test drives traffic through them.
//!
//! A live run cannot wait the minutes that the rules' windows span, so each
//! scrape stands for one minute of the series promtool evaluates: the
//! traffic of one test step is one minute's traffic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cloister_client::TokenSource as _;
use cloister_client::tokens::TokenWallet;
use cloister_wire::OHTTP_KEYS_PATH;
use serde_json::{Value, json};

use crate::common;
use crate::ohttp::{echo, start_redeeming};

fn rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring/cloister-alerts.yml")
}

/// `promtool` with `args`; its output when it fails.
fn promtool(args: &[&str]) -> Result<(), String> {
    let output = Command::new("promtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool could not run ({e}): install Debian's `prometheus` package \
             (`cargo xtask test` does)"
            )
        });
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Every sample of every `/metrics` target, one column per scrape.
struct Scrapes {
    targets: Vec<String>,
    series: BTreeMap<String, Vec<Option<f64>>>,
    taken: usize,
}

impl Scrapes {
    fn new(targets: Vec<String>) -> Self {
        Self {
            targets,
            series: BTreeMap::new(),
            taken: 0,
        }
    }

    /// Scrapes every target once: the next minute of every series.
    async fn take(&mut self) {
        for target in &self.targets {
            let text = common::get_text(target).await;
            for line in text.lines().filter(|line| !line.starts_with('#')) {
                let Some((series, value)) = line.rsplit_once(' ') else {
                    continue;
                };
                let value: f64 = value
                    .parse()
                    .unwrap_or_else(|e| panic!("{target}: `{line}`: {e}"));
                let column = self
                    .series
                    .entry(series.to_owned())
                    .or_insert_with(|| vec![None; self.taken]);
                column.resize(self.taken, None);
                column.push(Some(value));
            }
        }
        self.taken += 1;
    }

    /// promtool's `input_series`: a series absent from a scrape is `_`.
    fn input_series(&self) -> Vec<Value> {
        self.series
            .iter()
            .map(|(series, column)| {
                let values: Vec<String> = (0..self.taken)
                    .map(|minute| match column.get(minute).copied().flatten() {
                        Some(value) => value.to_string(),
                        None => "_".to_owned(),
                    })
                    .collect();
                json!({ "series": series, "values": values.join(" ") })
            })
            .collect()
    }

    /// Evaluates the rules on the scraped series with promtool, expecting
    /// exactly `firing[m]` alerts to fire at minute `m` of each entry.
    fn assert_firing(&self, firing: &[(usize, &[&str])]) {
        let expectations: Vec<Value> = firing
            .iter()
            .map(|(minute, alerts)| {
                let samples: Vec<Value> = alerts
                    .iter()
                    .map(|alert| json!({ "labels": format!("{{alertname=\"{alert}\"}}"), "value": 1 }))
                    .collect();
                json!({
                    "expr": "count by (alertname) (ALERTS{alertstate=\"firing\"})",
                    "eval_time": format!("{minute}m"),
                    "exp_samples": samples,
                })
            })
            .collect();
        let test = json!({
            "rule_files": [rules_file()],
            "evaluation_interval": "1m",
            "tests": [{
                "interval": "1m",
                "input_series": self.input_series(),
                "promql_expr_test": expectations,
            }],
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("live.json");
        std::fs::write(&path, test.to_string()).expect("write promtool test");
        let path = path.to_str().expect("UTF-8 path");
        if let Err(output) = promtool(&["test", "rules", path]) {
            panic!("the alerts promtool saw differ from the expected ones:\n{output}");
        }
    }
}

#[test]
fn the_alert_rules_are_valid_and_pass_their_unit_tests() {
    let rules = rules_file();
    let rules = rules.to_str().expect("UTF-8 path");
    promtool(&["check", "rules", rules]).unwrap_or_else(|e| panic!("{e}"));
    let unit_tests = rules.replace(".yml", ".test.yml");
    promtool(&["test", "rules", &unit_tests]).unwrap_or_else(|e| panic!("{e}"));
}

/// An account hammers the issuer past its limit and a spent token is
/// presented again and again: the two alerts for those patterns fire from
/// the counters alone, and quiet honest traffic before them (with the odd
/// request a client sends without a token) raised none.
#[tokio::test]
async fn an_abusive_pattern_is_flagged_from_metadata() {
    const HONEST_MINUTES: usize = 3;
    const ABUSIVE_MINUTES: usize = 6;
    let issuer = common::Issuer::start(2 * HONEST_MINUTES as u32).await;
    let stack = start_redeeming(&issuer).await;
    let relay_origin = stack.key_config_url.replace(OHTTP_KEYS_PATH, "");
    let mut scrapes = Scrapes::new(vec![
        format!("{relay_origin}/metrics"),
        format!("{}/metrics", stack.gateway_origin),
        format!("{}/metrics", issuer.url),
    ]);
    let state = tempfile::tempdir().expect("state dir");
    let tokens = issuer.client();
    let wallet = TokenWallet::open(state.path(), tokens.challenge()).expect("wallet");
    let client = stack.client();
    let status = |response: &bhttp::Message| response.control().status().map(|s| s.code());
    scrapes.take().await;

    // Honest minutes: two paid requests a minute, and one without a token.
    let mut spent = None;
    for _ in 0..HONEST_MINUTES {
        assert_eq!(
            tokens.fetch(&issuer.account, &wallet, 2).await.ok(),
            Some(2)
        );
        for _ in 0..2 {
            let token = wallet.next_token().expect("a token");
            let answer = client
                .send(&echo("hello").private_token(&token))
                .await
                .expect("round trip");
            assert_eq!(status(&answer), Some(200));
            spent = Some(token);
        }
        let unpaid = client.send(&echo("forgot")).await.expect("round trip");
        assert_eq!(status(&unpaid), Some(401));
        scrapes.take().await;
    }
    let honest_end = scrapes.taken - 1;

    // Abusive minutes: the account keeps asking for tokens past its limit,
    // and a spent token comes back four times a minute.
    let spent = spent.expect("a spent token");
    for _ in 0..ABUSIVE_MINUTES {
        for _ in 0..5 {
            assert!(
                tokens.fetch(&issuer.account, &wallet, 4).await.is_err(),
                "the issuer's rate limit holds"
            );
        }
        for _ in 0..4 {
            let again = client
                .send(&echo("again").private_token(&spent))
                .await
                .expect("round trip");
            assert_eq!(status(&again), Some(401));
        }
        scrapes.take().await;
    }
    let abusive_end = scrapes.taken - 1;

    scrapes.assert_firing(&[
        (honest_end, &[]),
        (
            abusive_end,
            &["CloisterTokenDoubleSpends", "CloisterTokenFarming"],
        ),
    ]);
}
