//! The Cloister transparency ledger's server side, as a library.
//!
//! The `cloister-ledger` binary is a thin shell over this, so that tests and
//! tools can run a real ledger in-process: [`router`] is the whole HTTP API
//! over an opened [`cloister_ledger::Ledger`] (tree head and C2SP
//! checkpoint, entries, lookups by digest, inclusion and consistency proofs,
//! submissions, `/healthz`, `/metrics`). Everything that calls the API (the binary's `submit` and
//! `verify` commands, the release tool, users' clients) uses the one client,
//! `cloister_ledger_verify::remote::LedgerClient`.
//!
//! # Main items
//!
//! * [`router`]: the axum routes over a [`cloister_ledger::Ledger`];
//!   [`witnessed_router`] the same with [`Witnesses`] that cosign its
//!   checkpoints (C2SP `tlog-witness`), configured as [`WitnessConfig`]s.
//! * [`spawn_on_loopback`]: a ledger served on a free loopback port, for
//!   tests and tools.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A ledger served on loopback and read through the shared client.
//!
//! ```rust
//! use std::time::Duration;
//!
//! use cloister_ledger::Ledger;
//! use cloister_ledger_verify::remote::LedgerClient;
//! use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
//! use ed25519_dalek::SigningKey;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let reviewer = SigningKey::from_bytes(&[1; 32]).verifying_key();
//! let policy = ReviewerPolicy {
//!     threshold: 1,
//!     reviewers: vec![Reviewer { name: "alice".into(), public_key: reviewer.to_bytes().into() }],
//!     publishers: Vec::new(),
//! };
//! let log_key = SigningKey::from_bytes(&[9; 32]);
//! let dir = tempfile::tempdir()?;
//! let ledger = Ledger::open(&dir.path().join("ledger.redb"), log_key.clone(), policy)?;
//!
//! let base = cloister_ledger_server::spawn_on_loopback(ledger).await?;
//! let head = LedgerClient::new(&base, Duration::from_secs(5))?.tree_head().await?;
//! assert_eq!(head.verify(&log_key.verifying_key())?.tree_size, 0);
//! # Ok(())
//! # }
//! ```

mod http;
mod metrics;
mod witnesses;

pub use http::{router, witnessed_router};
pub use witnesses::{WitnessConfig, WitnessConfigError, Witnesses};

/// Serves `ledger` on a free loopback port, as a task of the current tokio
/// runtime, and returns its base URL: a real ledger in-process, for tests
/// and tools.
///
/// # Errors
/// No loopback port can be bound.
pub async fn spawn_on_loopback(ledger: cloister_ledger::Ledger) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router(ledger)).await });
    Ok(url)
}

/// Like [`spawn_on_loopback`], with `witnesses` cosigning the ledger's
/// checkpoints (their first round done before this returns).
///
/// # Errors
/// No loopback port can be bound.
pub async fn spawn_witnessed_on_loopback(
    ledger: cloister_ledger::Ledger,
    witnesses: Witnesses,
    refresh: std::time::Duration,
) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = witnessed_router(ledger, witnesses, refresh).await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
