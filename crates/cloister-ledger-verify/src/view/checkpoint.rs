//! Which tree heads a client accepts when it pins witnesses: only the one
//! of a checkpoint signed by the log and cosigned, recently, by k of the n
//! pinned witnesses (C2SP `tlog-cosignature`).
//!
//! Consistency with the client's own remembered head catches a log that
//! changes its story to this client; it cannot catch a log that tells this
//! client, from its first sync, a different story than everyone else. Witnesses
//! close that gap: each cosigns a checkpoint only if it extends every
//! checkpoint of that log it cosigned before, so k honest-enough witnesses
//! agreeing means this client sees the history everyone sees. The cosignature
//! timestamps also bound how old the view is, so a log cannot keep a client
//! on a view from before an entry it wants to hide (a revocation, a new key).

use std::time::Duration;

use crate::checkpoint::CheckpointError;
use crate::cosignature::{CosignerKey, WitnessPolicy, WitnessPolicyError};
use crate::entry::PublicKeyBytes;
use crate::note::VerifierKey;
use crate::remote::LedgerClient;
use crate::tree_head::SignedTreeHead;
use ed25519_dalek::VerifyingKey;

use super::LedgerTrustError;

/// The default limit on a checkpoint's age: a day, measured by its cosignatures.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// How often the checkpoint and the tree head are fetched again while they
/// disagree (the log is gathering cosignatures for a new head).
const ATTEMPTS: u32 = 5;

/// The witnesses a client pins for the log's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessedCheckpoints {
    /// The log's origin: its checkpoints' first line and its key's name.
    pub origin: String,
    /// The pinned witnesses, how many must cosign, and how fresh.
    pub policy: WitnessPolicy,
}

impl WitnessedCheckpoints {
    /// `threshold` of `witnesses` must cosign each checkpoint of the log
    /// `origin`, within [`DEFAULT_MAX_AGE`].
    pub fn new(origin: &str, witnesses: Vec<CosignerKey>, threshold: usize) -> Self {
        Self {
            origin: origin.to_owned(),
            policy: WitnessPolicy {
                witnesses,
                threshold,
                max_age: DEFAULT_MAX_AGE,
            },
        }
    }

    /// The log's checkpoint key: the pinned log key under the origin.
    pub(super) fn log_key(
        &self,
        log_key: &PublicKeyBytes,
    ) -> Result<VerifierKey, LedgerTrustError> {
        let refused = |error: CheckpointError| LedgerTrustError::Checkpoint(error.into());
        let key = VerifyingKey::from_bytes(log_key.as_bytes()).map_err(|_| {
            refused(CheckpointError::Malformed(
                "the pinned log key is not Ed25519",
            ))
        })?;
        VerifierKey::ed25519(&self.origin, key).map_err(|error| refused(error.into()))
    }

    /// Refuses an unusable policy (threshold 0 or above n, a witness twice)
    /// or an origin that cannot name a key.
    pub(super) fn validate(&self, log_key: &PublicKeyBytes) -> Result<(), LedgerTrustError> {
        self.policy.validate()?;
        self.log_key(log_key).map(drop)
    }

    /// The ledger's tree head, fetched only once its checkpoint satisfied the
    /// policy, and only if it is that checkpoint's tree (same size, same
    /// root), with the time by which the threshold of witnesses had cosigned it.
    pub(super) async fn witnessed_head(
        &self,
        ledger: &LedgerClient,
        log_key: &PublicKeyBytes,
    ) -> Result<(SignedTreeHead, u64), LedgerTrustError> {
        let checkpoint_key = self.log_key(log_key)?;
        let mut attempt = 0;
        loop {
            let served = ledger.checkpoint().await?;
            let witnessed =
                self.policy
                    .verify(&served, &checkpoint_key, cloister_wire::unix_now())?;
            let (size, root) = (
                witnessed.checkpoint.tree_size,
                witnessed.checkpoint.root_hash,
            );
            let head = ledger.tree_head().await?;
            if head.head.tree_size == size && head.head.root_hash == root {
                tracing::debug!(
                    tree_size = size,
                    cosigned_at = witnessed.cosigned_at,
                    witnesses = ?witnessed.witnesses,
                    "checkpoint witnessed"
                );
                return Ok((head, witnessed.confirmed_at));
            }
            attempt += 1;
            // A head of the witnessed size with another root is a second
            // history; a larger head may still be on its way to the witnesses.
            if head.head.tree_size == size || attempt == ATTEMPTS {
                return Err(LedgerTrustError::Unwitnessed {
                    head_size: head.head.tree_size,
                    checkpoint_size: size,
                });
            }
            tokio::time::sleep(Duration::from_millis(100) * attempt).await;
        }
    }
}

impl From<WitnessPolicyError> for LedgerTrustError {
    fn from(error: WitnessPolicyError) -> Self {
        Self::Checkpoint(error)
    }
}
