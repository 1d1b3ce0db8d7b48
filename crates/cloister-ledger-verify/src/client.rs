//! What a client keeps about a log: its pinned key and the last tree head it accepted.
//!
//! [`LogVerifier`] is the client half of the transparency argument. A log that
//! wanted to hide an entry from some users would have to show them a tree
//! without it, and that tree cannot be an append-only extension of the tree it
//! shows everyone else. So the verifier accepts a new tree head only with a
//! consistency proof from the last one it saw, and otherwise reports a
//! [`VerifyError::SplitView`]: keep that pair of signed heads, they prove the
//! log misbehaved. The caller persists [`LogVerifier::latest`] between runs.

use ed25519_dalek::VerifyingKey;

use crate::Hash;
use crate::api::InclusionProof;
use crate::entry::SignedEntry;
use crate::merkle::{self, ProofError};
use crate::tree_head::{BadTreeHeadSignature, SignedTreeHead, TreeHead};

/// Why the verifier refused a tree head or an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The pinned log key is not a valid Ed25519 key.
    #[error("the pinned log key is not a valid Ed25519 key")]
    BadLogKey,
    /// A tree head is not signed by the pinned log key.
    #[error(transparent)]
    BadSignature(#[from] BadTreeHeadSignature),
    /// Two validly signed tree heads that are not consistent: the log forked.
    #[error(
        "split view: tree head of size {new_size} is not consistent with the one of size {known_size} seen before ({reason})"
    )]
    SplitView {
        /// Size of the head remembered.
        known_size: u64,
        /// Size of the head just offered.
        new_size: u64,
        /// Why the consistency check failed.
        reason: ProofError,
    },
    /// No tree head has been accepted yet, so nothing can be proven included.
    #[error("no tree head accepted yet")]
    NoTreeHead,
    /// The inclusion proof is for a different tree size than the accepted head.
    #[error(
        "inclusion proof is for tree size {proof_size}, the accepted head has size {head_size}"
    )]
    ProofForOtherTree {
        /// Tree size in the proof.
        proof_size: u64,
        /// Tree size of the accepted head.
        head_size: u64,
    },
    /// The inclusion proof does not prove this entry under the accepted head.
    #[error("entry is not proven included: {0}")]
    NotIncluded(ProofError),
}

/// A client's view of one log: pinned key plus the last tree head accepted.
#[derive(Debug, Clone)]
pub struct LogVerifier {
    log_key: VerifyingKey,
    latest: Option<SignedTreeHead>,
}

impl LogVerifier {
    /// Pins `log_key` and resumes from `remembered`, the head persisted from
    /// an earlier run (`None` on first use: trust on first use of a head, never of a key).
    pub fn new(
        log_key: &[u8; 32],
        remembered: Option<SignedTreeHead>,
    ) -> Result<Self, VerifyError> {
        let log_key = VerifyingKey::from_bytes(log_key).map_err(|_| VerifyError::BadLogKey)?;
        if let Some(head) = &remembered {
            head.verify(&log_key)?;
        }
        Ok(Self {
            log_key,
            latest: remembered,
        })
    }

    /// The newest tree head accepted so far; persist it to carry split-view detection across runs.
    pub fn latest(&self) -> Option<&SignedTreeHead> {
        self.latest.as_ref()
    }

    /// The consistency proof needed before `offered` can be accepted, as
    /// `(first, second)` tree sizes for `GET /v1/proof/consistency`; `None`
    /// when no proof is needed (nothing remembered yet, or the same size).
    pub fn consistency_range(&self, offered: &TreeHead) -> Option<(u64, u64)> {
        let known = self.latest.as_ref()?.head.tree_size;
        (known != offered.tree_size)
            .then(|| (known.min(offered.tree_size), known.max(offered.tree_size)))
    }

    /// Accepts `offered` if it is signed by the log and consistent with the
    /// remembered head. `consistency_proof` goes from the smaller of the two
    /// trees to the larger (empty when there is no remembered head or the sizes match).
    /// An older head than the remembered one is checked but not adopted.
    pub fn accept_tree_head(
        &mut self,
        offered: SignedTreeHead,
        consistency_proof: &[Hash],
    ) -> Result<(), VerifyError> {
        let new = *offered.verify(&self.log_key)?;
        let Some(known) = self.latest.map(|head| head.head) else {
            self.latest = Some(offered);
            return Ok(());
        };
        let (older, newer) = if new.tree_size >= known.tree_size {
            (known, new)
        } else {
            (new, known)
        };
        merkle::verify_consistency(
            older.tree_size,
            newer.tree_size,
            consistency_proof,
            &older.root_hash,
            &newer.root_hash,
        )
        .map_err(|reason| VerifyError::SplitView {
            known_size: known.tree_size,
            new_size: new.tree_size,
            reason,
        })?;
        if new.tree_size > known.tree_size {
            self.latest = Some(offered);
        }
        Ok(())
    }

    /// Checks that `entry` is in the tree of the accepted head, via `proof`.
    pub fn verify_inclusion(
        &self,
        entry: &SignedEntry,
        proof: &InclusionProof,
    ) -> Result<(), VerifyError> {
        let head = self.latest.as_ref().ok_or(VerifyError::NoTreeHead)?.head;
        if proof.tree_size != head.tree_size {
            return Err(VerifyError::ProofForOtherTree {
                proof_size: proof.tree_size,
                head_size: head.tree_size,
            });
        }
        merkle::verify_inclusion(
            proof.leaf_index,
            proof.tree_size,
            &entry.leaf_hash(),
            &proof.audit_path,
            &head.root_hash,
        )
        .map_err(VerifyError::NotIncluded)
    }
}
