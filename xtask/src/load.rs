//! `cargo xtask load`: the demo's chain ([`demo::Chain`], every party its
//! own process on loopback, HTTPS between them, tokens required) under the
//! bounded load of `cloister-load` (`tests/load`), with the deterministic
//! engine or the real model, and optionally faults injected during it.
//!
//! The generator reports latency, throughput, errors by kind, each party's
//! memory (the parties' pids are in `target/load/pids`, rewritten when one
//! is restarted), the token account and the ledger audit. Once it is done
//! the gateway is stopped and `cloister-load audit` counts its spent-token
//! store, adds the faults and the tokens the host's model generated, and
//! judges the run: the report is printed and written as JSON
//! (`target/load/report.json` unless `--json` says otherwise).
//!
//! With `--faults`, at 20, 40, 60 and 80 % of the requests: the gateway is
//! restarted; the relay is down for 2 s; the ledger is down for 5 s; the
//! host is frozen for 3 s (a slow host: SIGSTOP, then SIGCONT). Failed
//! requests are then allowed, as long as each ends within its deadline
//! with a typed error, no token is spent twice and the ledger verifies.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::demo::{self, Chain, ChainOptions, Engine, GATEWAY, HostSetup};
use crate::run;

/// What `cargo xtask load` is asked for.
#[derive(clap::Args)]
pub(crate) struct Options {
    /// Requests to send.
    #[arg(long, default_value_t = 10_000)]
    requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests per attested session before a new one is opened.
    #[arg(long, default_value_t = 100)]
    session_requests: u64,
    /// The host runs SmolLM2 on the batching engine instead of the deterministic backend.
    #[arg(long)]
    real_model: bool,
    /// Restart the gateway, take the relay and the ledger down and freeze the host during the load.
    #[arg(long)]
    faults: bool,
    /// Release builds of the parties and the generator.
    #[arg(long)]
    release: bool,
    /// Write the JSON report here (default: report.json in the run's directory).
    #[arg(long)]
    json: Option<PathBuf>,
    /// The run's directory: every party's state, keys and log (default
    /// target/load). On a tmpfs (`/dev/shm/...`) the parties' state stores
    /// commit without waiting for a disk.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The issuer's allowance for the load's one account: every worker's
/// wallet is filled from it.
const ISSUER_LIMIT: &str = "\n[rate_limit]\ntokens_per_window = 1000000\nwindow_secs = 3600\n";

/// A fault injected when this fraction of the requests has completed.
#[derive(Clone, Copy)]
enum Fault {
    RestartGateway,
    RelayDown(Duration),
    LedgerDown(Duration),
    FrozenHost(Duration),
}

const FAULTS: [(f64, Fault); 4] = [
    (0.2, Fault::RestartGateway),
    (0.4, Fault::RelayDown(Duration::from_secs(2))),
    (0.6, Fault::LedgerDown(Duration::from_secs(5))),
    (0.8, Fault::FrozenHost(Duration::from_secs(3))),
];

/// Runs the load; fails if the audit finds anything wrong.
pub(crate) fn run_load(root: &Path, options: &Options) -> Result<()> {
    println!(
        "== build ({}): model, plugins, the parties and cloister-load",
        if options.release { "release" } else { "debug" }
    );
    let bin = demo::build(root, options.release, &["cloister-load"])?;
    let mut chain = Chain::start(
        root,
        ChainOptions {
            dir: match &options.dir {
                Some(dir) => std::path::absolute(dir)?,
                None => root.join("target/load"),
            },
            bin: bin.clone(),
            host: HostSetup::Local(if options.real_model {
                Engine::Model
            } else {
                Engine::Deterministic
            }),
            issuer: ISSUER_LIMIT.to_owned(),
        },
    )?;
    let pids = chain.dir.join("pids");
    write_pids(&chain, &pids)?;
    let report = match &options.json {
        Some(path) => std::path::absolute(path)?,
        None => chain.dir.join("report.json"),
    };

    println!(
        "== load: {} requests, {} at a time{}",
        options.requests,
        options.concurrency,
        if options.faults { ", with faults" } else { "" }
    );
    let mut load = Command::new(bin.join("cloister-load"));
    load.current_dir(root)
        .arg("run")
        .arg("--config")
        .arg(&chain.client_config)
        .arg("--request")
        .arg(root.join("plugins/summarise/testdata/team-lunch.json"))
        .args(["--requests", &options.requests.to_string()])
        .args(["--concurrency", &options.concurrency.to_string()])
        .args(["--session-requests", &options.session_requests.to_string()])
        .arg("--pids")
        .arg(&pids)
        .args(["--gateway-metrics", &format!("https://{GATEWAY}/metrics")])
        .arg("--json")
        .arg(&report)
        .arg("--progress")
        .stdout(Stdio::piped());
    if options.faults {
        load.arg("--faults-expected");
    }
    let mut generator = load.spawn().context("starting cloister-load")?;
    let output = generator.stdout.take().context("cloister-load's output")?;
    let mut pending = if options.faults {
        FAULTS.to_vec()
    } else {
        Vec::new()
    };
    let mut injected = Vec::new();
    for line in BufReader::new(output).lines() {
        let line = line?;
        let Some(done) = line
            .strip_prefix("progress ")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            println!("{line}");
            continue;
        };
        while let Some(&(at, fault)) = pending.first() {
            if (done as f64) < at * options.requests as f64 {
                break;
            }
            pending.remove(0);
            let what = inject(&mut chain, fault)?;
            write_pids(&chain, &pids)?;
            println!("== fault at {done} requests: {what}");
            injected.push(format!("at {done} requests: {what}"));
        }
    }
    let generated = generator.wait()?;

    println!("== audit: the gateway stopped, its spent-token store counted");
    chain.kill("gateway")?;
    let mut audit = Command::new(bin.join("cloister-load"));
    audit
        .arg("audit")
        .arg("--report")
        .arg(&report)
        .arg("--gateway-state")
        .arg(chain.dir.join("gateway-state.redb"))
        .arg("--host-log")
        .arg(chain.log("host"));
    for fault in &injected {
        audit.arg("--fault").arg(fault);
    }
    run(&mut audit)?;
    if !generated.success() {
        bail!("cloister-load run failed with {generated}");
    }
    println!("== report: {}", report.display());
    Ok(())
}

/// `name pid` of every running party, for the generator's memory samples.
fn write_pids(chain: &Chain, path: &Path) -> Result<()> {
    let text: String = chain
        .pids()
        .iter()
        .map(|(name, pid)| format!("{name} {pid}\n"))
        .collect();
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Injects `fault` and recovers from it; says what happened.
fn inject(chain: &mut Chain, fault: Fault) -> Result<String> {
    Ok(match fault {
        Fault::RestartGateway => {
            chain.kill("gateway")?;
            chain.restart("gateway")?;
            "gateway restarted".to_owned()
        }
        Fault::RelayDown(down) => {
            chain.kill("relay")?;
            std::thread::sleep(down);
            chain.restart("relay")?;
            format!("relay down for {} s", down.as_secs())
        }
        Fault::LedgerDown(down) => {
            chain.kill("ledger")?;
            std::thread::sleep(down);
            chain.restart("ledger")?;
            format!("ledger unreachable for {} s", down.as_secs())
        }
        Fault::FrozenHost(frozen) => {
            chain.signal("host", "STOP")?;
            std::thread::sleep(frozen);
            chain.signal("host", "CONT")?;
            format!("host frozen (SIGSTOP) for {} s", frozen.as_secs())
        }
    })
}
