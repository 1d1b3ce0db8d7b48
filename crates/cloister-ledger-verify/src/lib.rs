//! Verification for the Cloister transparency ledger, cheap enough for every client.
//!
//! A Cloister client talks to a confidential VM only when the VM's measurement,
//! its policy set and the OHTTP key it was handed are *publicly logged*: appended
//! to an append-only Merkle log that anyone can audit, each entry admitted only
//! with the signatures of k of n reviewers. This crate is everything a client
//! (and the log, and the release tool) needs to check those claims, and nothing
//! more: no database, and no HTTP stack unless the `http` feature asks for one.
//!
//! # Main types
//!
//! * [`merkle`]: the RFC 6962 / RFC 9162 tree hashes (`0x00` leaf and `0x01`
//!   node prefixes, SHA-256) and the verification of inclusion and
//!   consistency proofs (RFC 9162 §2.1.3.2, §2.1.4.2); [`tree`] the roots
//!   and proofs computed over any source of perfect-subtree hashes (the
//!   log's store, a client's tiles).
//! * [`entry`]: the typed entries the log accepts ([`entry::Subject`]:
//!   release, revocation, plugin component, OHTTP key configuration, issuer
//!   key, policy file) and their canonical, hashed encoding.
//! * [`current`]: which releases and keys are current at a given time (not
//!   superseded past their overlap, not revoked, inside their windows).
//! * [`review`]: the k-of-n [`review::ReviewerPolicy`]; an entry is admitted
//!   only with signatures from k distinct listed reviewers.
//! * [`tree_head`]: Ed25519 signed tree heads.
//! * [`note`] and [`checkpoint`]: the same tree heads in the formats of the
//!   transparency-log ecosystem, C2SP `tlog-checkpoint` bodies in C2SP
//!   `signed-note` envelopes (Ed25519), which witnesses and monitors read.
//! * [`cosignature`]: C2SP `tlog-cosignature` (`cosignature/v1`): witnesses'
//!   timestamped cosignatures of checkpoints, and the client's k-of-n
//!   [`cosignature::WitnessPolicy`] with its freshness limit.
//! * [`tiles`]: C2SP `tlog-tiles`: tile paths, which tiles a client needs,
//!   and the check that fetched tiles hash to a checkpoint's root.
//! * [`witness`]: the C2SP `tlog-witness` `add-checkpoint` request, which a
//!   log sends its witnesses and they parse.
//! * [`client`]: [`client::LogVerifier`], which pins the log key, remembers the
//!   last tree head it accepted and refuses any new head that is not an
//!   append-only extension of it: this is what detects a log showing one
//!   client two different histories.
//! * [`api`]: the JSON bodies of the ledger's HTTP API, shared with the server.
//! * `remote` (feature `http`): `LedgerClient`, the one HTTP client of that
//!   API (async, reqwest), with the network halves of the checks above:
//!   moving a [`client::LogVerifier`] to the latest head and proving an
//!   entry included under it.
//! * `publish` (feature `http`): `KeyPublisher`, with which the gateway and
//!   the issuer log their own keys before using them.
//! * `view` (feature `http`): `LedgerTrust`, a verified view of the ledger
//!   synced from its tiles (witness cosignatures, consistency, inclusion)
//!   and persisted, which finds a launch's release
//!   (`cloister_attestation::MeasurementAuthority`) and a key's window; the
//!   client judges hosts and keys with it, and both ends of the remote
//!   inference hop judge each other with it (`view::PeerReleases`, read
//!   from a party's `[ledger]` section, `view::LedgerSettings`).
//! * [`private_file`]: files only this user may read, replaced whole or not
//!   at all (the view's state, the client's wallet).
//!
//! # Cargo features
//!
//! * `http` (off): the `remote`, `publish` and `view` modules, adding
//!   `reqwest`, `serde_json`, `zeroize`, `tokio`, `toml`, `tracing`,
//!   `cloister-tls` and `cloister-attestation`.
//!   Without it the crate depends only on `sha2`, `ed25519-dalek`, `serde`,
//!   `hex`, `base64` and `thiserror`.
//!
//! The Merkle algorithms are written out here rather than taken from a crate:
//! they are a few dozen lines of RFC pseudo-code, the log needs them over its
//! own durable storage, and this crate must stay small. They are tested
//! against the RFC 6962 reference roots and against the RFC's recursive
//! definition on random trees.
//!
//! # Example
//!
//! An entry signed by one of two required reviewers is refused; with a second
//! signature it is admitted, and its leaf is proven to be in a two-leaf tree.
//!
//! ```rust
//! use cloister_ledger_verify::entry::{
//!     EntryBody, KeyWindow, Provenance, ReviewerSignature, SignedEntry, Subject,
//! };
//! use cloister_ledger_verify::merkle::{leaf_hash, node_hash, verify_inclusion};
//! use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
//! use cloister_ledger_verify::HexBytes;
//! use ed25519_dalek::SigningKey;
//!
//! let keys = [1u8, 2, 3].map(|seed| SigningKey::from_bytes(&[seed; 32]));
//! let policy = ReviewerPolicy {
//!     threshold: 2,
//!     reviewers: keys
//!         .iter()
//!         .enumerate()
//!         .map(|(i, key)| Reviewer {
//!             name: format!("reviewer-{i}"),
//!             public_key: key.verifying_key().to_bytes().into(),
//!         })
//!         .collect(),
//!     publishers: Vec::new(),
//! };
//!
//! let body = EntryBody {
//!     subject: Subject::OhttpKeyConfig {
//!         key_id: 1,
//!         digest: HexBytes([0xab; 32]),
//!         window: KeyWindow { not_before: 1_700_000_000, not_after: 1_700_600_000 },
//!     },
//!     provenance: Provenance { source_commit: "0123abc".into(), builder: "ci".into() },
//! };
//! let mut entry = SignedEntry {
//!     signatures: vec![ReviewerSignature::sign(&keys[0], &body)],
//!     body,
//! };
//! assert!(policy.admit(&entry).is_err(), "one signature of the two required");
//! entry.signatures.push(ReviewerSignature::sign(&keys[2], &entry.body));
//! policy.admit(&entry)?;
//!
//! // The entry is leaf 0 of a two-leaf tree; its audit path is its sibling.
//! let sibling = leaf_hash(b"another entry");
//! let root = node_hash(&entry.leaf_hash(), &sibling);
//! verify_inclusion(0, 2, &entry.leaf_hash(), &[sibling], &root)?;
//! assert!(verify_inclusion(1, 2, &entry.leaf_hash(), &[sibling], &root).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod api;
pub mod checkpoint;
pub mod client;
pub mod cosignature;
pub mod current;
mod encoding;
pub mod entry;
pub mod fuzz_support;
pub mod merkle;
pub mod note;
pub mod private_file;
#[cfg(feature = "http")]
pub mod publish;
#[cfg(feature = "http")]
pub mod remote;
pub mod review;
pub mod tiles;
pub mod tree;
pub mod tree_head;
#[cfg(feature = "http")]
pub mod view;
pub mod witness;

pub use cloister_wire::HexBytes;
pub use merkle::Hash;
