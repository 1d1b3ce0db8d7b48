//! The Cloister transparency ledger: an append-only log of accepted digests.
//!
//! Clients talk only to confidential VMs whose measurement, plugins, OHTTP
//! keys and policies are in this log, so that what Cloister runs is public
//! and the same for everyone. This crate is the log's side:
//!
//! * [`Ledger`] admits an entry only with signatures from k of n reviewers
//!   ([`cloister_ledger_verify::review::ReviewerPolicy`]) and appends it;
//!   a rejected entry leaves no trace.
//! * [`LogStore`] keeps the RFC 9162 Merkle tree in a redb database, one
//!   atomic transaction per append, and signs a new Ed25519 tree head each time.
//! * [`tree`] generates inclusion and consistency proofs from stored subtree hashes.
//! * [`keys`] reads and writes key files and the reviewer policy file.
//!
//! Verification lives in the small `cloister-ledger-verify` crate, which
//! clients depend on without pulling in the database.

mod error;
pub mod keys;
mod ledger;
mod store;
pub mod tree;

pub use error::LedgerError;
pub use ledger::Ledger;
pub use store::LogStore;
