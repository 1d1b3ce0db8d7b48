//! The Cloister transparency ledger's server side, as a library.
//!
//! The `cloister-ledger` binary is a thin shell over this, so that tests and
//! tools can run a real ledger in-process: [`router`] is the whole HTTP API
//! over an opened [`cloister_ledger::Ledger`] (tree head, entries, lookups by
//! digest, inclusion and consistency proofs, submissions, `/healthz`,
//! `/metrics`), and [`LedgerClient`] is the small blocking client that the
//! binary's `submit` and `verify` commands and the release tool use. Clients
//! on users' devices use the async ledger view in `cloister-client` instead.
//!
//! # Main types
//!
//! * [`router`]: the axum routes over a [`cloister_ledger::Ledger`].
//! * [`LedgerClient`]: submit entries, read the tree head and entries, and
//!   verify an entry's inclusion against a pinned log key; failures are
//!   [`RemoteError`]s.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A ledger served on loopback and read through the client.
//!
//! ```rust
//! use cloister_ledger::Ledger;
//! use cloister_ledger_server::{LedgerClient, router};
//! use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
//! use ed25519_dalek::SigningKey;
//!
//! let reviewer = SigningKey::from_bytes(&[1; 32]).verifying_key();
//! let policy = ReviewerPolicy {
//!     threshold: 1,
//!     reviewers: vec![Reviewer { name: "alice".into(), public_key: reviewer.to_bytes().into() }],
//! };
//! let log_key = SigningKey::from_bytes(&[9; 32]);
//! let dir = tempfile::tempdir()?;
//! let ledger = Ledger::open(&dir.path().join("ledger.redb"), log_key.clone(), policy)?;
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! listener.set_nonblocking(true)?;
//! let base = format!("http://{}", listener.local_addr()?);
//! let app = router(ledger);
//! std::thread::spawn(move || {
//!     let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!     runtime.block_on(async {
//!         axum::serve(tokio::net::TcpListener::from_std(listener)?, app).await
//!     })
//! });
//!
//! let head = LedgerClient::new(&base).tree_head()?;
//! assert_eq!(head.verify(&log_key.verifying_key())?.tree_size, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod http;
mod metrics;
mod remote;

pub use http::router;
pub use remote::{LedgerClient, RemoteError};
