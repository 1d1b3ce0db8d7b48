//! JSON bodies of the ledger's HTTP API (`/v1/...`), shared by server and clients.

use serde::{Deserialize, Serialize};

use crate::entry::SignedEntry;
use crate::merkle::Hash;
use crate::tree_head::SignedTreeHead;

/// `GET /v1/entries/{index}`: one stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryResponse {
    /// Position in the log.
    pub index: u64,
    /// The entry as admitted.
    pub entry: SignedEntry,
}

/// `GET /v1/proof/inclusion?leaf_hash=..&tree_size=..`: where a leaf is and how to prove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Index of the leaf.
    pub leaf_index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Sibling hashes, leaf level first.
    pub audit_path: Vec<Hash>,
}

/// `GET /v1/proof/consistency?first=..&second=..`: proof that one tree extends another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub first: u64,
    /// Size of the newer tree.
    pub second: u64,
    /// The RFC 9162 consistency path.
    pub proof: Vec<Hash>,
}

/// `POST /v1/entries`: the admitted entry's place and a tree head that includes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResponse {
    /// Index the entry was stored at (the earlier index if it was already logged).
    pub index: u64,
    /// The entry's leaf hash.
    pub leaf_hash: Hash,
    /// False when the entry was already in the log and nothing was written.
    pub appended: bool,
    /// A signed tree head whose tree contains the entry.
    pub tree_head: SignedTreeHead,
}

/// Any error response: a stable machine-readable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// For example `not_admitted`, `not_found`, `bad_request`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
}
