//! `cloister-issuer`: the Privacy Pass issuer of Cloister (phase 1 of
//! `docs/DESIGN.md`).
//!
//! Genuine clients, identified by Ed25519 account keys listed in a TOML
//! file, sign their token requests; the issuer checks the signature,
//! applies a per-account rate limit and returns a blind RSA signature
//! (RFC 9578 token type 0x0002). It publishes its rotating keys in the
//! RFC 9578 §4 directory. Because the signature is blind, the issuer never
//! sees the tokens that are later spent, so it cannot tell the gateway which
//! account a request came from; it never logs token material.
//!
//! The protocol itself lives in the `cloister-privacypass` crate; this crate
//! is configuration, key storage and rotation, accounts, limits and HTTP.
//!
//! # Main types
//!
//! * [`config::Config`]: the TOML configuration (`issuer.example.toml`).
//! * [`accounts::Accounts`]: registered account ids and their keys.
//! * [`keyring::KeyRing`]: issuer keys on disk, one PEM file per key,
//!   rotated at half their lifetime.
//! * [`rate_limit::RateLimiter`]: tokens per account per window, counted in
//!   the configured state store (`[state]`: a redb file, or Redis shared by
//!   replicas); a store that cannot answer refuses the request.
//! * [`server::IssuerState`] and [`server::router`]: the HTTP API (directory,
//!   token requests, `/healthz`, `/metrics`).
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! An issuer with a fresh key publishes its directory; the rate limiter
//! refuses an account's third token in a window of two.
//!
//! ```rust
//! use std::sync::Arc;
//!
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use cloister_issuer::accounts::Accounts;
//! use cloister_issuer::config::Config;
//! use cloister_issuer::keyring::KeyRing;
//! use cloister_issuer::rate_limit::RateLimiter;
//! use cloister_issuer::server::{IssuerState, router};
//! use cloister_privacypass::IssuerDirectory;
//! use cloister_state_store::StateStore;
//! use tower::ServiceExt as _;
//!
//! let now = 1_700_000_000;
//! let key_dir = tempfile::tempdir()?;
//! let config = Config::default();
//! let keys = KeyRing::open(key_dir.path(), config.keys.lifetime_secs, now)?;
//! let store = StateStore::in_memory()?;
//! let state = IssuerState::new(config, Accounts::default(), keys, Arc::new(move || now), &store);
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let response = runtime.block_on(
//!     router(Arc::new(state))
//!         .oneshot(Request::get("/.well-known/private-token-issuer-directory").body(Body::empty())?),
//! )?;
//! assert_eq!(response.status(), StatusCode::OK);
//! let body = runtime.block_on(axum::body::to_bytes(response.into_body(), 64 * 1024))?;
//! assert_eq!(IssuerDirectory::from_json(&body)?.blind_rsa_keys()?.len(), 1);
//!
//! let limiter = RateLimiter::new(&store, 2, 3_600);
//! runtime.block_on(async {
//!     assert_eq!(limiter.take("alice", now).await?, Ok(()));
//!     assert_eq!(limiter.take("alice", now).await?, Ok(()));
//!     assert_eq!(limiter.take("alice", now).await?, Err(2_800)); // seconds to the next window
//!     Ok::<_, cloister_state_store::StateError>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod accounts;
pub mod config;
pub mod keyring;
pub mod rate_limit;
pub mod server;
