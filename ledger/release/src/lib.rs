//! Logging a Cloister release in the transparency ledger.
//!
//! A release is the set of digests a client may trust: every plugin
//! component, every policy file the host loads and their combined digest (the
//! host's HOST_DATA), the CVM launch measurement, and the OHTTP key
//! configurations the gateway publishes. [`entries::release_entries`] turns
//! them into one [`EntryBody`](cloister_ledger_verify::entry::EntryBody)
//! each, with the build's provenance; [`submit::submit`] signs each with
//! every reviewer key given and logs it, and the ledger admits it only with
//! signatures from k of its n reviewers.
//!
//! The measurement, HOST_DATA and the list of policy files come from the host
//! itself: the [`LaunchDigests`](cloister_host::LaunchDigests) that
//! `cloister-host measure` prints ([`sources::measure_host`]), so what is
//! logged is what the host attests to. Plugin digests are recomputed from the
//! built components and must agree with both the manifests and the host.
//!
//! [`review::review`] writes the reviewer's page of every plugin (its WIT,
//! budgets, log events, WASI, digest and whether the ledger holds it).
//!
//! The `cloister-release` binary is the command line over this library;
//! [`demo::demo_reviewers`] makes the throwaway reviewer set `cargo xtask demo`
//! runs its ledger with.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! Only the host's own launch mode decides whether a release is called
//! simulated: a `sev-guest` launch never is.
//!
//! ```rust
//! use cloister_host::LaunchDigests;
//! use cloister_host::config::ProviderKind;
//! use cloister_release::entries::is_simulated;
//!
//! let launch = LaunchDigests {
//!     mode: ProviderKind::SevGuest,
//!     measurement: None, // real hardware: the image recipe computes it
//!     host_data: [0x48; 32],
//!     policy_set: [0x50; 32],
//!     model: Some([0x4d; 32]),
//!     host_config: [0x43; 32],
//!     host_settings: r#"{"runtime":{}}"#.into(),
//!     engine_settings: r#"{"backend":"candle"}"#.into(),
//!     snp_policy: None, // with the measurement, from the image recipe
//!     platform_info: None,
//!     host_binary: [0xb1; 32],
//!     plugins: Vec::new(),
//!     policy_files: Vec::new(),
//! };
//! assert!(!is_simulated(&launch));
//! assert!(is_simulated(&LaunchDigests { mode: ProviderKind::Simulated, ..launch }));
//! ```

pub mod demo;
pub mod entries;
mod error;
pub mod review;
pub mod sources;
pub mod submit;

pub use error::ReleaseError;
