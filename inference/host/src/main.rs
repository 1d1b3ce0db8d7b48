//! `cloister-inference-host`: the inference CVM. It serves the candle
//! engine (CUDA where built with it) to feature hosts over mutual RA-TLS
//! (`cloister-inference-remote`): it proves what it runs with its own
//! evidence, and serves a caller only once the caller's evidence verified
//! under its `[callers]` policy and the caller's release is found in the
//! `[ledger]` (and in the policy's allow-list, when it lists launches; with
//! neither, every caller is refused). Prompts are read only on such a session.

mod config;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Json;
use axum::routing::get;
use clap::{Parser, Subcommand};
use cloister_attestation::{SIMULATION_WARNING, Verifier};
use cloister_inference_remote::{InferenceService, routes};
use cloister_ledger_verify::view::PeerReleases;
use cloister_ratls::{SessionTable, SystemClock};
use serde_json::json;
use tracing_subscriber::EnvFilter;

use crate::config::Config;

#[derive(Parser)]
#[command(
    version,
    about = "Cloister inference host: serves the model to attested feature hosts over mutual RA-TLS"
)]
struct Cli {
    /// Configuration file; built-in defaults when absent.
    #[arg(long, short, global = true, env = "CLOISTER_INFERENCE_HOST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print, as JSON, the HOST_DATA this launch attests to and the parts it
    /// hashes (`policy_set`, `model`, `host_config`), for its release.
    Measure,
    /// Serve POST /session (mutual RA-TLS) and /healthz on `listen`.
    Serve,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    match cli.command {
        Command::Measure => {
            let callers = config.callers()?;
            let engine = config.engine()?;
            let parts = config.launch_parts(&callers, engine.as_ref());
            let mut printed = serde_json::to_value(parts)?;
            printed["host_data"] = parts.host_data().to_string().into();
            println!("{printed}");
            Ok(())
        }
        Command::Serve => serve(&config),
    }
}

fn serve(config: &Config) -> Result<()> {
    let callers = config.callers()?;
    let engine = config.engine()?;
    let host_data = config.launch_parts(&callers, engine.as_ref()).host_data();
    let (provider, simulated) = config.provider(host_data)?;
    if simulated {
        tracing::warn!("{SIMULATION_WARNING}");
    }
    if engine.is_simulated() {
        tracing::warn!("inference backend is SIMULATED: the deterministic stand-in, no model");
    }
    let health = json!({
        "status": "ok",
        "attestation": if simulated { SIMULATION_WARNING } else { "sev-snp" },
        "engine": engine.name(),
        "engine_simulated": engine.is_simulated(),
        "host_data": host_data.to_string(),
    });
    let listen = config.listen;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let ledger = match (&config.ledger, callers.ledger) {
            (Some(settings), Some(trust)) => Some(
                settings
                    .open_synced(trust)
                    .await
                    .context("no verified view of the ledger: no caller could be judged")?,
            ),
            _ => None,
        };
        let releases = PeerReleases::new(ledger, callers.policy.accepted.clone());
        if !releases.is_configured() {
            tracing::warn!(
                "no [ledger] and no allow-list in the callers' policy: every caller is refused"
            );
        }
        let verifier = Verifier::new(callers.anchors, callers.policy, releases);
        let service = InferenceService::new(engine, config.max_tokens);
        let table = SessionTable::for_payloads(
            &config.sessions(),
            provider,
            Arc::new(service),
            Arc::new(SystemClock),
        )?
        .require_caller_attestation(Arc::new(verifier));
        let table = Arc::new(table);
        let counted = Arc::clone(&table);
        let app = routes(Arc::clone(&table)).route(
            "/healthz",
            get(move || {
                let mut health = health.clone();
                let stats = counted.stats();
                health["callers_attested"] = stats.callers_attested.into();
                health["callers_refused"] = stats.callers_refused.into();
                health["requests"] = stats.requests.into();
                async move { Json(health) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        tracing::info!(address = %listen, "inference host listening");
        let sweeper = Arc::clone(&table);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                sweeper.expire_idle();
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })
}
