//! Verification for the Cloister transparency ledger, cheap enough for every client.
//!
//! A Cloister client talks to a confidential VM only when the VM's measurement,
//! its plugins and the OHTTP key it was handed are *publicly logged*: appended to
//! an append-only Merkle log that anyone can audit. This crate is everything a
//! client (or the attestation verifier) needs to check that claim, and nothing
//! more: no database, no HTTP stack, just `sha2`, `ed25519-dalek` and `serde`.
//!
//! * [`merkle`]: the RFC 9162 (Certificate Transparency v2) tree hashes and the
//!   verification of inclusion and consistency proofs (§2.1.3.2, §2.1.4.2).
//! * [`entry`]: the typed entries the log accepts (CVM measurement, plugin
//!   component, OHTTP key configuration, policy file) and their canonical,
//!   hashed encoding.
//! * [`review`]: the k-of-n reviewer policy; an entry is admitted only with
//!   signatures from k distinct listed reviewers.
//! * [`tree_head`]: Ed25519 signed tree heads.
//! * [`client`]: [`client::LogVerifier`], which pins the log key, remembers the
//!   last tree head it accepted and refuses any new head that is not an
//!   append-only extension of it: this is what detects a log showing different
//!   views to different clients (split view).
//! * [`api`]: the JSON bodies of the ledger's HTTP API, shared with the server.
//!
//! The Merkle algorithms are written out here rather than taken from a crate:
//! they are a few dozen lines of RFC pseudo-code, the log needs them over its
//! own durable storage, and this crate must stay small. They are tested
//! against the RFC 6962 reference roots and against the RFC's recursive
//! definition on random trees.

pub mod api;
pub mod client;
mod encoding;
pub mod entry;
pub mod merkle;
pub mod review;
pub mod tree_head;

pub use cloister_wire::HexBytes;
pub use merkle::Hash;
