//! Text generation on another confidential VM, over mutual RA-TLS.
//!
//! A feature host may leave generation to a separate inference host (a
//! GPU machine). The prompt then leaves the feature host's CVM, so it must
//! go only to an inference host that proved, with SEV-SNP evidence bound to
//! this very TLS session, that it runs a logged release; and the inference
//! host must serve only feature hosts that proved the same about
//! themselves. Both ends live in this crate because they must agree on
//! every byte between them.
//!
//! # Main types
//!
//! * [`InferenceService`] (inference host): any
//!   [`cloister_inference::InferenceBackend`] as a
//!   [`cloister_ratls::PayloadService`], for a `SessionTable` built with
//!   `SessionTable::for_payloads` and
//!   `SessionTable::require_caller_attestation`: the table verifies the
//!   calling feature host's evidence (its release found by the table's
//!   [`cloister_ratls::CallerVerifier`], a ledger view or an allow-list)
//!   before the first request frame is read. Each decoded piece of text is
//!   sent at once as a `Partial` frame; the inference host caps
//!   `max_tokens` on its own side too. [`routes`] mounts `POST /session`
//!   with an answer body that streams.
//! * [`RemoteBackend`] (feature host): an
//!   [`InferenceBackend`](cloister_inference::InferenceBackend) that opens
//!   mutual sessions with [`cloister_ratls::ClientSession::establish_mutual`]:
//!   it verifies the inference host's evidence and release with its
//!   `Verifier` before anything else is sent, then proves itself with its
//!   own evidence provider. It keeps a pool of attested sessions, one per
//!   generation in flight (a session serves one exchange at a time), so
//!   concurrent generations reach the far engine together and are batched
//!   there. Budgets stay with the feature host's inference capability,
//!   which clamps requests before they reach any backend. Every wait is
//!   bounded ([`RemoteConfig::timeout_secs`]) and every failure names the
//!   inference host.
//! * [`HttpTransport`]: the records over HTTP, the answer read as it
//!   streams.
//!
//! # Wire
//!
//! Inside the attested session: the request frame carries a JSON call, a
//! generate request (model, prompt, sampling parameters, milliseconds left
//! before the deadline) or an embed request (model, texts, milliseconds
//! left); the host answers with one `Partial` frame per piece of text
//! (UTF-8) or per vector (little-endian `f32`s), padded like every request
//! and response frame, then one response frame with the JSON `Result` of
//! the generation or the number of vectors sent.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! See `tests/e2e/tests/it/remote_inference.rs`: an inference host and a
//! feature host on simulated CVMs, each finding the other's release in a
//! ledger.

mod backend;
mod service;
mod wire;

pub use backend::{HttpTransport, RemoteBackend, RemoteConfig, RemoteSetupError};
pub use service::{InferenceService, routes};
