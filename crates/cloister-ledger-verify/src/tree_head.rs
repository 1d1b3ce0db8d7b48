//! Signed tree heads: the log's Ed25519-signed statement "my tree of this size has this root".
//!
//! A tree head is worthless on its own (the log could sign anything); its value
//! is that the log cannot later deny it, so two heads that are not consistent
//! with each other are proof of misbehaviour (see [`crate::client`]).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::encoding::Canonical;
use crate::entry::SignatureBytes;
use crate::merkle::Hash;

/// The signed part of a tree head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// Number of entries in the tree.
    pub tree_size: u64,
    /// When the log signed this head, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The RFC 9162 Merkle tree hash of the first `tree_size` entries.
    pub root_hash: Hash,
}

/// A [`TreeHead`] with the log's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTreeHead {
    /// The signed statement.
    #[serde(flatten)]
    pub head: TreeHead,
    /// Ed25519 signature by the log key over [`TreeHead::signed_message`].
    pub signature: SignatureBytes,
}

/// The signature does not verify under the given log key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tree head signature does not verify under the pinned log key")]
pub struct BadTreeHeadSignature;

impl TreeHead {
    /// The bytes the log signs: label, size, timestamp, root.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut out = Canonical::new("cloister-ledger-sth-v1");
        out.u64(self.tree_size)
            .u64(self.timestamp_ms)
            .fixed(self.root_hash.as_bytes());
        out.finish()
    }

    /// Signs this head with the log's key.
    pub fn sign(self, log_key: &SigningKey) -> SignedTreeHead {
        let signature = log_key.sign(&self.signed_message());
        SignedTreeHead {
            head: self,
            signature: signature.to_bytes().into(),
        }
    }
}

impl SignedTreeHead {
    /// Returns the head if the signature verifies under `log_key` (strict Ed25519).
    pub fn verify(&self, log_key: &VerifyingKey) -> Result<&TreeHead, BadTreeHeadSignature> {
        let signature = Signature::from_bytes(self.signature.as_bytes());
        log_key
            .verify_strict(&self.head.signed_message(), &signature)
            .map_err(|_| BadTreeHeadSignature)?;
        Ok(&self.head)
    }
}
