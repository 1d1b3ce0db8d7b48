//! `cloister-ledger`: the transparency ledger's server and its command-line tools.
//!
//! `serve` runs the HTTP API. The other commands are what release tooling
//! and operators call: `keygen` makes log and reviewer keys,
//! `sign-entry` adds a reviewer's signature to an entry file, `submit` sends
//! it to the ledger, and `verify` checks an entry's inclusion the way a
//! client does, remembering the last tree head in a state file.

mod config;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cloister_ledger::{Ledger, keys};
use cloister_ledger_verify::client::LogVerifier;
use cloister_ledger_verify::entry::{PublicKeyBytes, ReviewerSignature, SignedEntry};
use cloister_ledger_verify::remote::LedgerClient;
use cloister_ledger_verify::tree_head::SignedTreeHead;
use cloister_tls::{Listener, Trust};
use tracing_subscriber::EnvFilter;

use cloister_ledger_server::{Witnesses, witnessed_router};

use crate::config::Config;

/// The Cloister transparency ledger.
#[derive(Parser)]
#[command(name = "cloister-ledger", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the ledger's HTTP API (defaults: 127.0.0.1:7400, files in the current directory).
    Serve {
        /// TOML configuration file (see ledger/examples/cloister-ledger.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Create a new Ed25519 key file (mode 0600) and print its public key.
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    PublicKey {
        /// The key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Add a reviewer's signature to an entry file (JSON), in place unless --out is given.
    SignEntry {
        /// The reviewer's key file.
        #[arg(long)]
        key: PathBuf,
        /// The entry: `{"body": {...}, "signatures": [...]}`; signatures may be absent.
        #[arg(long)]
        entry: PathBuf,
        /// Write the signed entry here instead of back to --entry.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Submit an entry file to the ledger and print where it was placed.
    Submit {
        /// The ledger's base URL.
        #[arg(long, default_value = "http://127.0.0.1:7400")]
        url: String,
        /// The signed entry file.
        #[arg(long)]
        entry: PathBuf,
        /// Pinned log public key (hex); when given, the answer is verified as a client would.
        #[arg(long)]
        log_key: Option<PublicKeyBytes>,
        /// CA bundle (PEM) an `https://` ledger's certificate must chain to.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Check, as a client does, that an entry is in the ledger under a head
    /// consistent with the one remembered in the state file.
    Verify {
        /// The ledger's base URL.
        #[arg(long, default_value = "http://127.0.0.1:7400")]
        url: String,
        /// The entry file.
        #[arg(long)]
        entry: PathBuf,
        /// Pinned log public key (hex).
        #[arg(long)]
        log_key: PublicKeyBytes,
        /// Where the last accepted tree head is kept between runs (created if missing).
        #[arg(long)]
        state: PathBuf,
        /// CA bundle (PEM) an `https://` ledger's certificate must chain to.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
}

/// How long one exchange with the ledger may take.
const TIMEOUT: Duration = Duration::from_secs(30);

fn read_entry(path: &Path) -> anyhow::Result<SignedEntry> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let entry: SignedEntry =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    entry
        .validate()
        .with_context(|| format!("checking {}", path.display()))?;
    Ok(entry)
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Prints a public key as the hex that policy files and `--log-key` take.
fn print_public_key(public_key: [u8; 32]) {
    println!("{}", cloister_ledger_verify::HexBytes(public_key));
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn serve(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let policy = keys::read_reviewer_policy(&config.reviewers)
        .context("loading the reviewer policy (set `reviewers` in the config)")?;
    let (log_key, created) = keys::read_or_generate_key_file(&config.log_key)?;
    let public_key = cloister_ledger_verify::HexBytes(log_key.verifying_key().to_bytes());
    if created {
        tracing::warn!(path = %config.log_key.display(), %public_key, "created a new log signing key; publish its public key for clients to pin");
    }
    let ledger = Ledger::open(&config.database, log_key, policy)
        .with_context(|| format!("opening the ledger database {}", config.database.display()))?
        .with_origin(&config.origin)
        .context("the configured `origin`")?;
    let head = ledger.store().tree_head()?;
    tracing::info!(
        tree_size = head.head.tree_size,
        root = %head.head.root_hash,
        %public_key,
        vkey = %ledger.store().checkpoint_key(),
        threshold = ledger.policy().threshold,
        reviewers = ledger.policy().reviewers.len(),
        "ledger opened"
    );
    let witnesses = Witnesses::with_trust(
        &config.witnesses,
        Duration::from_secs(config.witness_timeout_secs),
        &config.tls.trust().context("[tls] ca")?,
    )
    .context("the configured `[[witness]]`")?;
    if witnesses.is_empty() {
        tracing::warn!("no `[[witness]]` configured: checkpoints carry the log's signature only");
    }
    let server_tls = config.tls.server().context("[tls]")?;
    let listener = Listener::bind(config.listen, server_tls, "ledger")
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let app = witnessed_router(
        ledger,
        witnesses,
        Duration::from_secs(config.cosign_interval_secs.max(1)),
    )
    .await;
    tracing::info!(address = %config.listen, witnesses = config.witnesses.len(), "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}

fn sign_entry(key_path: &Path, entry_path: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let key = keys::read_key_file(key_path)?;
    let mut entry = read_entry(entry_path)?;
    let signature = ReviewerSignature::sign(&key, &entry.body);
    entry
        .signatures
        .retain(|existing| existing.public_key != signature.public_key);
    entry.signatures.push(signature);
    write_json(out.unwrap_or(entry_path), &entry)
}

/// The ledger at `url`, trusting the CA bundle `ca` for HTTPS.
fn ledger_client(url: &str, ca: Option<&Path>) -> anyhow::Result<LedgerClient> {
    let trust = ca.map_or(Ok(Trust::default()), Trust::from_ca_file)?;
    Ok(LedgerClient::with_trust(url, TIMEOUT, &trust)?)
}

async fn submit(
    ledger: &LedgerClient,
    entry_path: &Path,
    log_key: Option<&PublicKeyBytes>,
) -> anyhow::Result<()> {
    let entry = read_entry(entry_path)?;
    let placed = ledger.submit(&entry).await?;
    if let Some(log_key) = log_key {
        let mut verifier = LogVerifier::new(log_key.as_bytes(), None)?;
        verifier.accept_tree_head(placed.tree_head, &[])?;
        ledger.update_tree_head(&mut verifier).await?;
        ledger.verify_entry(&verifier, &entry).await?;
    }
    print_json(&placed)
}

async fn verify(
    ledger: &LedgerClient,
    entry_path: &Path,
    log_key: &PublicKeyBytes,
    state_path: &Path,
) -> anyhow::Result<()> {
    let entry = read_entry(entry_path)?;
    let remembered: Option<SignedTreeHead> = match std::fs::read_to_string(state_path) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", state_path.display()))?,
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", state_path.display()));
        }
    };
    let mut verifier = LogVerifier::new(log_key.as_bytes(), remembered)?;
    let head = ledger.update_tree_head(&mut verifier).await?;
    let proof = ledger.verify_entry(&verifier, &entry).await?;
    write_json(state_path, &head)?;
    print_json(&proof)
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
        Command::Keygen { out } => {
            print_public_key(keys::generate_key_file(&out)?.verifying_key().to_bytes());
            Ok(())
        }
        Command::PublicKey { key } => {
            print_public_key(keys::read_key_file(&key)?.verifying_key().to_bytes());
            Ok(())
        }
        Command::SignEntry { key, entry, out } => sign_entry(&key, &entry, out.as_deref()),
        Command::Submit {
            url,
            entry,
            log_key,
            ca,
        } => {
            submit(
                &ledger_client(&url, ca.as_deref())?,
                &entry,
                log_key.as_ref(),
            )
            .await
        }
        Command::Verify {
            url,
            entry,
            log_key,
            state,
            ca,
        } => {
            verify(
                &ledger_client(&url, ca.as_deref())?,
                &entry,
                &log_key,
                &state,
            )
            .await
        }
    }
}
