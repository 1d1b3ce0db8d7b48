//! `cloister-witness`: a C2SP `tlog-witness` for Cloister's transparency ledger.
//!
//! `serve` answers `POST /add-checkpoint`; `vkey` prints the key clients pin.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cloister_ledger::keys;
use cloister_ledger_verify::cosignature::Cosigner;
use cloister_witness::config::Config;
use cloister_witness::{Witness, router};
use tracing_subscriber::EnvFilter;

/// A witness that cosigns a transparency log's checkpoints only when they
/// extend the last one it cosigned.
#[derive(Parser)]
#[command(name = "cloister-witness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `POST /add-checkpoint` (defaults: 127.0.0.1:7600, files in the current directory).
    Serve {
        /// TOML configuration file (see witness/examples/cloister-witness.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the witness's cosigner vkey (creating its key if missing), for clients to pin.
    Vkey {
        /// TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// The configured key under the configured name, created on first use.
fn cosigner(config: &Config) -> anyhow::Result<Cosigner> {
    let (key, created) = keys::read_or_generate_key_file(&config.key)?;
    let cosigner = Cosigner::ed25519(&config.name, key).context("the configured `name`")?;
    if created {
        tracing::warn!(path = %config.key.display(), vkey = %cosigner.verifier_key(), "created a new witness key; publish its vkey for clients to pin");
    }
    Ok(cosigner)
}

async fn serve(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let logs = config.log_keys()?;
    if logs.is_empty() {
        tracing::warn!("no `[[log]]` configured: every checkpoint will be answered 404");
    }
    let witness = Witness::open(&config.database, cosigner(&config)?, logs)
        .with_context(|| format!("opening {}", config.database.display()))?;
    tracing::info!(vkey = %witness.cosigner_key(), logs = config.logs.len(), "witness opened");
    let tls = config.tls.server().context("[tls]")?;
    let listener = cloister_tls::Listener::bind(config.listen, tls, "witness")
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(address = %config.listen, "listening");
    axum::serve(listener, router(Arc::new(witness)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { config } => serve(config.as_deref()).await,
        Command::Vkey { config } => {
            let config = Config::load(config.as_deref())?;
            println!("{}", cosigner(&config)?.verifier_key());
            Ok(())
        }
    }
}
