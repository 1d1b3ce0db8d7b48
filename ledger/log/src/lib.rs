//! The Cloister transparency ledger: an append-only log of accepted digests.
//!
//! Clients talk only to confidential VMs whose measurement, plugins, OHTTP
//! keys and policies are in this log, so that what Cloister runs is public
//! and the same for everyone. A third party runs the log; what it admits is
//! decided by k of n reviewers, not by the log's operator. This crate is
//! the log's side; the `cloister-ledger` server (`ledger/server`) puts it
//! behind HTTP.
//!
//! # Main types
//!
//! * [`Ledger`] admits an entry only with signatures from k of n reviewers
//!   ([`cloister_ledger_verify::review::ReviewerPolicy`]) and appends it;
//!   a rejected entry leaves no trace.
//! * [`LogStore`] keeps the RFC 6962 / RFC 9162 Merkle tree in a redb
//!   database, one atomic transaction per append, and signs a new Ed25519
//!   tree head each time; [`LogStore::checkpoint`] gives the same head as a
//!   C2SP checkpoint under the log's origin ([`DEFAULT_ORIGIN`] unless set),
//!   the form witnesses and monitors read.
//! * [`tree`] generates inclusion and consistency proofs from stored subtree hashes.
//! * [`keys`] reads and writes key files and the reviewer policy file.
//! * [`LedgerError`]: why an entry or a request was refused.
//!
//! Verification lives in the small `cloister-ledger-verify` crate, which
//! clients depend on without pulling in the database.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A log whose single reviewer must sign: an unsigned entry is refused, a
//! signed one is appended, and its inclusion proof checks out under the
//! signed tree head, as a client would check it.
//!
//! ```rust
//! use cloister_ledger::Ledger;
//! use cloister_ledger_verify::HexBytes;
//! use cloister_ledger_verify::entry::{EntryBody, Provenance, ReviewerSignature, SignedEntry, Subject};
//! use cloister_ledger_verify::merkle::verify_inclusion;
//! use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
//! use ed25519_dalek::SigningKey;
//!
//! let reviewer = SigningKey::from_bytes(&[1; 32]);
//! let policy = ReviewerPolicy {
//!     threshold: 1,
//!     reviewers: vec![Reviewer {
//!         name: "alice".into(),
//!         public_key: reviewer.verifying_key().to_bytes().into(),
//!     }],
//!     publishers: Vec::new(),
//! };
//! let log_key = SigningKey::from_bytes(&[9; 32]);
//! let dir = tempfile::tempdir()?;
//! let ledger = Ledger::open(&dir.path().join("ledger.redb"), log_key.clone(), policy)?;
//!
//! let body = EntryBody {
//!     subject: Subject::PolicyFile { name: "log-allowlist.toml".into(), digest: HexBytes([0x11; 32]) },
//!     provenance: Provenance { source_commit: "0123abc".into(), builder: "ci".into() },
//! };
//! let unsigned = SignedEntry { body: body.clone(), signatures: vec![] };
//! assert!(ledger.submit(&unsigned).is_err());
//! assert_eq!(ledger.store().tree_head()?.head.tree_size, 0);
//!
//! let signed = SignedEntry { signatures: vec![ReviewerSignature::sign(&reviewer, &body)], body };
//! let placed = ledger.submit(&signed)?;
//! let head = placed.tree_head.verify(&log_key.verifying_key())?;
//! let proof = ledger.store().inclusion_proof(&placed.leaf_hash, None)?;
//! verify_inclusion(proof.leaf_index, proof.tree_size, &placed.leaf_hash, &proof.audit_path, &head.root_hash)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
pub mod keys;
mod ledger;
mod store;
/// Proof generation over stored subtree hashes (shared with clients that read tiles).
pub use cloister_ledger_verify::tree;

pub use error::LedgerError;
pub use ledger::Ledger;
pub use store::{DEFAULT_ORIGIN, LogStore};
