//! `cloister-relay`: the Oblivious HTTP relay binary.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use cloister_relay::{RelayConfig, serve};
use tracing_subscriber::EnvFilter;

/// Cloister's Oblivious HTTP relay: forwards encapsulated requests to one
/// gateway, stripped of everything that identifies the client.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; without it the defaults apply (see relay.example.toml).
    #[arg(long, short, env = "CLOISTER_RELAY_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let config: RelayConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => RelayConfig::default(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(addr = %config.listen, gateway = %config.gateway_url, "relay listening");
    tokio::select! {
        served = serve(listener, config) => served?,
        _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
    }
    Ok(())
}
