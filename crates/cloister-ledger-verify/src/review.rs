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
//!
//! Keys rotate daily, far more often than reviewers meet, and must be
//! logged before they are used. So the policy may also name *publishers*:
//! the gateway's and the issuer's own signing keys, each allowed to log, on
//! its own signature, entries of exactly one key kind and nothing else:
//!
//! ```toml
//! [[publisher]]
//! name = "gateway"
//! public_key = "<64 hex digits>"
//! publishes = "ohttp_key_config"   # or "issuer_key"
//! ```
//!
//! A hostile publisher can log keys, never releases; what it logs is public,
//! and clients use only the two newest open keys of a kind
//! ([`crate::current::KeyBook`]).

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::entry::{PublicKeyBytes, SignedEntry, Subject};

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
    /// Parties that may log their own keys, one kind each, on their own signature.
    #[serde(rename = "publisher", default, skip_serializing_if = "Vec::is_empty")]
    pub publishers: Vec<Publisher>,
}

/// The kinds of key a [`Publisher`] may log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// [`Subject::OhttpKeyConfig`]: the gateway's.
    OhttpKeyConfig,
    /// [`Subject::IssuerKey`]: the Privacy Pass issuer's.
    IssuerKey,
}

impl KeyKind {
    /// The kind of key `subject` logs, if it logs one.
    pub fn of(subject: &Subject) -> Option<Self> {
        match subject {
            Subject::OhttpKeyConfig { .. } => Some(Self::OhttpKeyConfig),
            Subject::IssuerKey { .. } => Some(Self::IssuerKey),
            _ => None,
        }
    }
}

/// A party that may log keys of one kind on its own signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// Human-readable name, used in logs and errors.
    pub name: String,
    /// Its Ed25519 public key.
    pub public_key: PublicKeyBytes,
    /// The one kind of key it may log.
    pub publishes: KeyKind,
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
    /// A publisher signed an entry of a kind it may not log.
    #[error("publisher {0} may not log this kind of entry")]
    NotPublisherOf(String),
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
    /// Checks the policy itself: a sane threshold, valid and distinct keys
    /// (a key is either one reviewer's or one publisher's, never both).
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.threshold == 0 || self.threshold > self.reviewers.len() {
            return Err(PolicyError::BadThreshold {
                threshold: self.threshold,
                reviewers: self.reviewers.len(),
            });
        }
        let mut seen = BTreeSet::new();
        let listed = self
            .reviewers
            .iter()
            .map(|reviewer| (&reviewer.name, reviewer.public_key))
            .chain(
                self.publishers
                    .iter()
                    .map(|publisher| (&publisher.name, publisher.public_key)),
            );
        for (name, public_key) in listed {
            VerifyingKey::from_bytes(public_key.as_bytes())
                .map_err(|_| PolicyError::BadKey { name: name.clone() })?;
            if !seen.insert(public_key) {
                return Err(PolicyError::DuplicateKey(public_key));
            }
        }
        Ok(())
    }

    /// Admits a key entry signed by exactly one publisher of its kind.
    fn admit_published(&self, entry: &SignedEntry) -> Option<Result<(), AdmissionError>> {
        let kind = KeyKind::of(&entry.body.subject)?;
        let [signature] = entry.signatures.as_slice() else {
            return None;
        };
        let publisher = self
            .publishers
            .iter()
            .find(|publisher| publisher.public_key == signature.public_key)?;
        if publisher.publishes != kind {
            return Some(Err(AdmissionError::NotPublisherOf(publisher.name.clone())));
        }
        Some(
            verify(
                publisher.public_key,
                &entry.body.review_message(),
                signature,
            )
            .map_err(|()| AdmissionError::BadSignature(publisher.name.clone())),
        )
    }

    /// Admits `entry` only if every signature is by a distinct listed reviewer,
    /// verifies over the entry body, and at least `threshold` are present.
    /// A key entry may instead carry the one signature of a publisher of its kind.
    pub fn admit(&self, entry: &SignedEntry) -> Result<(), AdmissionError> {
        if let Some(published) = self.admit_published(entry) {
            return published;
        }
        let message = entry.body.review_message();
        let mut signed_by = BTreeSet::new();
        for signature in &entry.signatures {
            let reviewer = self
                .reviewers
                .iter()
                .find(|reviewer| reviewer.public_key == signature.public_key)
                .ok_or(AdmissionError::UnknownReviewer(signature.public_key))?;
            verify(reviewer.public_key, &message, signature)
                .map_err(|()| AdmissionError::BadSignature(reviewer.name.clone()))?;
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

/// Verifies `signature` by `public_key` over `message` (strict Ed25519).
fn verify(
    public_key: PublicKeyBytes,
    message: &[u8],
    signature: &crate::entry::ReviewerSignature,
) -> Result<(), ()> {
    let key = VerifyingKey::from_bytes(public_key.as_bytes()).map_err(drop)?;
    key.verify_strict(
        message,
        &Signature::from_bytes(signature.signature.as_bytes()),
    )
    .map_err(drop)
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

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::HexBytes;
    use crate::entry::{EntryBody, KeyWindow, Provenance, ReviewerSignature};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn public(seed: u8) -> PublicKeyBytes {
        HexBytes(key(seed).verifying_key().to_bytes())
    }

    /// Reviewers 1 and 2 (both needed); publisher 7 logs OHTTP keys, 8 issuer keys.
    fn policy() -> ReviewerPolicy {
        ReviewerPolicy {
            threshold: 2,
            reviewers: [1, 2]
                .map(|seed| Reviewer {
                    name: format!("r{seed}"),
                    public_key: public(seed),
                })
                .to_vec(),
            publishers: vec![
                Publisher {
                    name: "gateway".into(),
                    public_key: public(7),
                    publishes: KeyKind::OhttpKeyConfig,
                },
                Publisher {
                    name: "issuer".into(),
                    public_key: public(8),
                    publishes: KeyKind::IssuerKey,
                },
            ],
        }
    }

    fn signed(subject: Subject, seeds: &[u8]) -> SignedEntry {
        let body = EntryBody {
            subject,
            provenance: Provenance {
                source_commit: "c".into(),
                builder: "b".into(),
            },
        };
        SignedEntry {
            signatures: seeds
                .iter()
                .map(|&seed| ReviewerSignature::sign(&key(seed), &body))
                .collect(),
            body,
        }
    }

    const WINDOW: KeyWindow = KeyWindow {
        not_before: 10,
        not_after: 20,
    };

    fn ohttp_key() -> Subject {
        Subject::OhttpKeyConfig {
            key_id: 1,
            digest: HexBytes([1; 32]),
            window: WINDOW,
        }
    }

    #[test]
    fn a_publisher_logs_its_own_kind_of_key_alone() {
        let policy = policy();
        policy.validate().expect("valid");
        assert_eq!(policy.admit(&signed(ohttp_key(), &[7])), Ok(()));
        let issuer_key = Subject::IssuerKey {
            token_key_id: HexBytes([2; 32]),
            window: WINDOW,
        };
        assert_eq!(policy.admit(&signed(issuer_key, &[8])), Ok(()));
    }

    #[test]
    fn a_publisher_cannot_log_another_kind_or_anything_else() {
        let policy = policy();
        assert_eq!(
            policy.admit(&signed(ohttp_key(), &[8])),
            Err(AdmissionError::NotPublisherOf("issuer".into()))
        );
        let revocation = Subject::Revocation {
            series: "production".into(),
            sequence: 1,
            reason: "r".into(),
        };
        assert_eq!(
            policy.admit(&signed(revocation, &[7])),
            Err(AdmissionError::UnknownReviewer(public(7)))
        );
        // A forged publisher signature.
        let mut forged = signed(ohttp_key(), &[7]);
        forged.body.provenance.builder = "other".into();
        assert_eq!(
            policy.admit(&forged),
            Err(AdmissionError::BadSignature("gateway".into()))
        );
    }

    #[test]
    fn a_key_cannot_be_both_reviewer_and_publisher() {
        let mut policy = policy();
        policy.publishers[0].public_key = public(1);
        assert_eq!(policy.validate(), Err(PolicyError::DuplicateKey(public(1))));
    }
}
