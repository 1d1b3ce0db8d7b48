//! Fixtures shared by the integration tests: keys, entries, and a reference tree.

#![allow(dead_code)] // each test binary uses a different subset

use cloister_ledger::tree::SubtreeHashes;
use cloister_ledger_verify::entry::{
    EntryBody, Provenance, ReviewerSignature, SignedEntry, Subject,
};
use cloister_ledger_verify::merkle::{leaf_hash, node_hash, split_point};
use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
use cloister_ledger_verify::{Hash, HexBytes};
use ed25519_dalek::SigningKey;

/// A deterministic key, distinct per `seed`.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// Reviewers with seeds 1..=n, of whom `threshold` must sign.
pub fn policy(threshold: usize, n: u8) -> ReviewerPolicy {
    ReviewerPolicy {
        threshold,
        reviewers: (1..=n)
            .map(|seed| Reviewer {
                name: format!("reviewer-{seed}"),
                public_key: key(seed).verifying_key().to_bytes().into(),
            })
            .collect(),
        publishers: Vec::new(),
    }
}

/// A plugin entry whose digest encodes `n`, so entries differ.
pub fn body(n: u64) -> EntryBody {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.to_be_bytes());
    EntryBody {
        subject: Subject::PluginComponent {
            name: "summarise".into(),
            version: format!("1.0.{n}"),
            wit_world: "cloister:feature/feature".into(),
            digest: HexBytes(digest),
        },
        provenance: Provenance {
            source_commit: "0123abcd".into(),
            builder: "ci".into(),
        },
    }
}

/// `body(n)` signed by the reviewers with the given seeds.
pub fn signed(n: u64, reviewer_seeds: &[u8]) -> SignedEntry {
    let body = body(n);
    let signatures = reviewer_seeds
        .iter()
        .map(|&seed| ReviewerSignature::sign(&key(seed), &body))
        .collect();
    SignedEntry { body, signatures }
}

/// `MTH` exactly as RFC 9162 §2.1.1 defines it, recursively over all leaves:
/// the independent reference the stored tree is compared with.
pub fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => cloister_ledger_verify::merkle::empty_root(),
        1 => leaves[0],
        n => {
            let k = usize::try_from(split_point(n as u64)).expect("fits");
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

/// An in-memory tree over leaf hashes whose subtree hashes come from [`reference_root`].
#[derive(Debug)]
pub struct MemoryTree(pub Vec<Hash>);

impl MemoryTree {
    /// Leaves hashed from raw data.
    pub fn from_data<T: AsRef<[u8]>>(data: &[T]) -> Self {
        Self(data.iter().map(|item| leaf_hash(item.as_ref())).collect())
    }
}

impl SubtreeHashes for MemoryTree {
    type Error = std::convert::Infallible;

    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let width = 1usize << level;
        let start = usize::try_from(index).expect("fits") * width;
        Ok(reference_root(&self.0[start..start + width]))
    }
}
