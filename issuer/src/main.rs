//! The `cloister-issuer` binary: see the library docs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cloister_issuer::accounts::Accounts;
use cloister_issuer::config::Config;
use cloister_issuer::keyring::KeyRing;
use cloister_issuer::server::{IssuerState, publish_keys, rotate_keys, router, system_clock};
use cloister_ledger_verify::publish::KeyPublisher;
use cloister_state_store::StateStore;
use cloister_tls::{Listener, PlainHttp, check_url};
use ed25519_dalek::SigningKey;

/// Cloister's Privacy Pass issuer (RFC 9578 token type 0x0002).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; built-in defaults when absent.
    #[arg(long, env = "CLOISTER_ISSUER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the issuer (the default).
    Serve,
    /// Print a fresh Ed25519 account key: the secret seed for the client and
    /// the `[[account]]` entry for the issuer's accounts file.
    NewAccountKey {
        /// Account identifier.
        #[arg(long)]
        id: String,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::NewAccountKey { id } => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("system RNG: {e}"))?;
            let key = SigningKey::from_bytes(&seed);
            println!("# client secret seed (keep private): {}", hex::encode(seed));
            println!(
                "[[account]]\nid = {id:?}\npublic_key = \"{}\"",
                hex::encode(key.verifying_key().as_bytes())
            );
            Ok(())
        }
        Command::Serve => serve(cli.config),
    }
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        tracing::info!("no --config given: using built-in defaults");
        return Ok(Config::default());
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Config::from_toml(&text).with_context(|| format!("parsing {}", path.display()))
}

#[tokio::main]
async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let accounts = match std::fs::read_to_string(&config.accounts_file) {
        Ok(text) => Accounts::from_toml(&text)
            .with_context(|| format!("parsing {}", config.accounts_file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(file = %config.accounts_file.display(), "accounts file missing: no client can obtain tokens");
            Accounts::default()
        }
        Err(e) => {
            return Err(e).with_context(|| format!("reading {}", config.accounts_file.display()));
        }
    };
    let clock = system_clock();
    let ring = KeyRing::open(&config.key_dir, config.keys.lifetime_secs, clock())
        .context("opening the issuer key directory")?
        .with_lead(
            config
                .keys
                .ledger
                .as_ref()
                .map_or(0, |ledger| ledger.lead_secs),
        );
    let trust = config.tls.trust().context("[tls] ca")?;
    let server_tls = config.tls.server().context("[tls]")?;
    let publisher = config
        .keys
        .ledger
        .as_ref()
        .map(|ledger| {
            check_url("ledger URL", &ledger.url, PlainHttp::Loopback)?;
            anyhow::Ok(KeyPublisher::with_trust(
                ledger,
                Duration::from_secs(30),
                &trust,
            )?)
        })
        .transpose()
        .context("[keys.ledger]")?
        .map(Arc::new);
    let listen = config.listen;
    let check_every = Duration::from_secs(config.keys.check_interval_secs.max(1));
    tracing::info!(%listen, accounts = accounts.len(), issuer_name = %config.issuer_name, "starting issuer");
    let store = StateStore::open(&config.state)
        .await
        .with_context(|| format!("opening the state store, {}", config.state))?;
    tracing::info!(state = %config.state, "rate-limit counters kept in the state store");
    let mut state = IssuerState::new(config, accounts, ring, clock, &store);
    if let Some(publisher) = &publisher {
        tracing::info!(publisher = %publisher.public_key(), "publishing only issuer keys logged in the ledger");
        state = state.publishing_only_logged_keys();
    }
    let state = Arc::new(state);

    let rotation_state = Arc::clone(&state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(check_every);
        loop {
            tick.tick().await;
            let state = Arc::clone(&rotation_state);
            let rotating = Arc::clone(&state);
            match tokio::task::spawn_blocking(move || rotate_keys(&rotating)).await {
                Ok(Ok(true)) => tracing::info!("issuer keys rotated"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "key rotation failed"),
                Err(e) => tracing::error!(error = %e, "key rotation task panicked"),
            }
            if let Some(publisher) = &publisher {
                match publish_keys(&state, publisher).await {
                    Ok(0) => {}
                    Ok(logged) => tracing::info!(logged, "issuer keys logged in the ledger"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not log issuer keys; unlogged keys stay unpublished")
                    }
                }
            }
        }
    });

    let listener = Listener::bind(listen, server_tls, "issuer")
        .await
        .with_context(|| format!("binding {listen}"))?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")
}
