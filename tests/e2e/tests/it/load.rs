//! The load generator (`cloister-load`, `tests/load`) against the deployed
//! chain of [`crate::chain`] with the deterministic backend, small enough
//! for CI: every request answered and accounted for, every token the
//! workers sent distinct, the gateway's spent-token store holding exactly
//! the tokens sent, and spent tokens sent again refused.
//!
//! `cargo xtask load` runs the same generator at full size against the
//! demo's chain.

use std::process::Command;
use std::time::Duration;

use cloister_load::Report;

use crate::chain::{Chain, Engine, Options, output_within};
use crate::surface::{binary, repo_root};

/// Requests of the run, and how many are in flight at once.
const REQUESTS: u64 = 200;
const CONCURRENCY: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_load_is_answered_in_full_and_spends_each_token_once() {
    let mut options = Options::new(Engine::Deterministic);
    // The workers' wallets all draw on the one account.
    options.issuer = "\n[rate_limit]\ntokens_per_window = 100000\n".into();
    let mut chain = Chain::start(options).await;
    let dir = chain.dir.path().to_path_buf();
    let (report_file, pids) = (dir.join("load.json"), dir.join("pids"));
    let pid_lines: String = chain
        .parties
        .iter()
        .map(|(name, party)| format!("{name} {}\n", party.child.id()))
        .collect();
    std::fs::write(&pids, pid_lines).unwrap_or_else(|e| panic!("{e}"));

    let mut load = Command::new(binary("cloister-load"));
    load.arg("run")
        .arg("--config")
        .arg(&chain.client_config)
        .arg("--insecure-plain-http")
        .arg("--request")
        .arg(repo_root().join("plugins/summarise/testdata/team-lunch.json"))
        .args(["--requests", &REQUESTS.to_string()])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(["--session-requests", "50"])
        .arg("--pids")
        .arg(&pids)
        .args([
            "--gateway-metrics",
            &format!("http://{}/metrics", chain.gateway_addr),
        ])
        .arg("--json")
        .arg(&report_file);
    let ran =
        tokio::task::spawn_blocking(move || output_within(&mut load, Duration::from_secs(180)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", String::from_utf8_lossy(&ran.stdout));
    assert!(
        ran.status.success(),
        "cloister-load run: {}",
        String::from_utf8_lossy(&ran.stderr)
    );

    // The spent-token store can be read once the gateway has let go of it.
    chain.kill("gateway");
    let audited = output_within(
        Command::new(binary("cloister-load"))
            .arg("audit")
            .arg("--report")
            .arg(&report_file)
            .arg("--gateway-state")
            .arg(dir.join("gateway/state.redb")),
        Duration::from_secs(30),
    );
    println!("{}", String::from_utf8_lossy(&audited.stdout));
    let report: Report =
        serde_json::from_slice(&std::fs::read(&report_file).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        (report.answered, report.failed, report.not_started),
        (REQUESTS, 0, 0),
        "{:?}",
        report.errors
    );
    assert!(report.sessions_opened >= REQUESTS / 50, "{report:?}");
    assert_eq!(
        report.tokens.distinct, report.tokens.taken,
        "a token was handed out twice"
    );
    assert_eq!(
        report.spent_in_store,
        Some(report.tokens.taken),
        "every token sent was spent once, and only those"
    );
    let gateway = report
        .gateway
        .unwrap_or_else(|| panic!("no gateway figures"));
    assert_eq!(gateway.double_spent, 0);
    let replay = report.replay.unwrap_or_else(|| panic!("no replay probe"));
    assert_eq!((replay.refused, replay.counted_as_spent), (2, Some(2)));
    assert!(
        report
            .memory
            .iter()
            .any(|m| m.party == "gateway" && m.peak_kib > 0),
        "{:?}",
        report.memory
    );
    assert_eq!(report.verdict(true).problems, Vec::<String>::new());
    assert!(
        audited.status.success(),
        "cloister-load audit: {}",
        String::from_utf8_lossy(&audited.stderr)
    );
}
