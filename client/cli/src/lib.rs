//! The `cloister` command's implementation, behind its thin `main`: the
//! configuration file ([`config`]) and one feature request end to end
//! ([`session`]). It is a library so that the end-to-end tests
//! (`tests/e2e`) run the command's own code path against the real parties;
//! it reports errors the way the command prints them (`anyhow`, with
//! context saying what to do), and is not meant for other programs.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! The shipped example configuration is the command's defaults: a user
//! needs no file to reach a relay and gateway on loopback.
//!
//! ```rust
//! use std::path::Path;
//!
//! use cloister_cli::config::Config;
//!
//! let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("cloister.example.toml");
//! let config = Config::load(Some(&example))?;
//! assert_eq!(config.client()?.relay_url, Config::load(None)?.client()?.relay_url);
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod config;
pub mod session;
mod trust;

pub use trust::{AttestationSummary, Released, ReleasedKeys, Trust, issuer_key_check};
