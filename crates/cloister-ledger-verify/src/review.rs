//! The k-of-n reviewer policy: who may admit entries, and how many must agree.
//!
//! The policy is a reviewed TOML file under `policies/` (format in
//! `ledger/examples/reviewers.toml`):
//!
//! ```toml
//! threshold = 2            # k: distinct reviewers that must sign
//!
//! [[reviewer]]             # one table per reviewer (n of them)
//! name = "alice"
//! public_key = "<64 hex digits: Ed25519 public key>"
//! ```
//!
//! Admission fails closed: a signature by a key not on the list, a bad
//! signature, or the same reviewer twice rejects the whole entry, even if
//! enough other valid signatures are present, so a malformed release is
//! noticed rather than quietly trimmed.

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::entry::{PublicKeyBytes, SignedEntry};

/// One reviewer allowed to co-sign releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reviewer {
    /// Human-readable name, used in logs and errors.
    pub name: String,
    /// The reviewer's Ed25519 public key.
    pub public_key: PublicKeyBytes,
}

/// The reviewer list and the number of distinct signatures an entry needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewerPolicy {
    /// `k`: how many distinct listed reviewers must sign an entry.
    pub threshold: usize,
    /// The `n` reviewers.
    #[serde(rename = "reviewer")]
    pub reviewers: Vec<Reviewer>,
}

/// A policy file that could never admit anything sensibly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// `threshold` is zero or larger than the number of reviewers.
    #[error("threshold {threshold} must be between 1 and the number of reviewers ({reviewers})")]
    BadThreshold {
        /// The configured `k`.
        threshold: usize,
        /// The configured `n`.
        reviewers: usize,
    },
    /// A reviewer key is not a valid Ed25519 point.
    #[error("reviewer {name}: public key is not a valid Ed25519 key")]
    BadKey {
        /// Which reviewer.
        name: String,
    },
    /// Two entries share a key, which would let one person count twice.
    #[error("public key {0} is listed more than once")]
    DuplicateKey(PublicKeyBytes),
}

/// Why an entry was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// A signature by a key that is not on the reviewer list.
    #[error("signature by unknown key {0}")]
    UnknownReviewer(PublicKeyBytes),
    /// A listed reviewer's signature does not verify over this entry.
    #[error("signature by reviewer {0} does not verify")]
    BadSignature(String),
    /// The same reviewer signed more than once.
    #[error("reviewer {0} signed more than once")]
    DuplicateReviewer(String),
    /// Fewer than `threshold` distinct reviewers signed.
    #[error("{signed} reviewer signature(s), {threshold} required")]
    BelowThreshold {
        /// Distinct valid signatures present.
        signed: usize,
        /// Signatures required.
        threshold: usize,
    },
}

impl ReviewerPolicy {
    /// Checks the policy itself: a sane threshold, valid and distinct keys.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.threshold == 0 || self.threshold > self.reviewers.len() {
            return Err(PolicyError::BadThreshold {
                threshold: self.threshold,
                reviewers: self.reviewers.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for reviewer in &self.reviewers {
            VerifyingKey::from_bytes(reviewer.public_key.as_bytes()).map_err(|_| {
                PolicyError::BadKey {
                    name: reviewer.name.clone(),
                }
            })?;
            if !seen.insert(reviewer.public_key) {
                return Err(PolicyError::DuplicateKey(reviewer.public_key));
            }
        }
        Ok(())
    }

    /// Admits `entry` only if every signature is by a distinct listed reviewer,
    /// verifies over the entry body, and at least `threshold` are present.
    pub fn admit(&self, entry: &SignedEntry) -> Result<(), AdmissionError> {
        let message = entry.body.review_message();
        let mut signed_by = BTreeSet::new();
        for signature in &entry.signatures {
            let reviewer = self
                .reviewers
                .iter()
                .find(|reviewer| reviewer.public_key == signature.public_key)
                .ok_or(AdmissionError::UnknownReviewer(signature.public_key))?;
            let bad_signature = || AdmissionError::BadSignature(reviewer.name.clone());
            let key = VerifyingKey::from_bytes(reviewer.public_key.as_bytes())
                .map_err(|_| bad_signature())?;
            key.verify_strict(
                &message,
                &Signature::from_bytes(signature.signature.as_bytes()),
            )
            .map_err(|_| bad_signature())?;
            if !signed_by.insert(reviewer.public_key) {
                return Err(AdmissionError::DuplicateReviewer(reviewer.name.clone()));
            }
        }
        if signed_by.len() < self.threshold {
            return Err(AdmissionError::BelowThreshold {
                signed: signed_by.len(),
                threshold: self.threshold,
            });
        }
        Ok(())
    }
}

impl crate::entry::ReviewerSignature {
    /// Signs `body` as a reviewer (used by release tooling and tests).
    pub fn sign(reviewer_key: &ed25519_dalek::SigningKey, body: &crate::entry::EntryBody) -> Self {
        use ed25519_dalek::Signer;
        Self {
            public_key: reviewer_key.verifying_key().to_bytes().into(),
            signature: reviewer_key.sign(&body.review_message()).to_bytes().into(),
        }
    }
}
