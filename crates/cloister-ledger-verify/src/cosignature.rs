//! C2SP witness cosignatures (<https://c2sp.org/tlog-cosignature>, `cosignature/v1`, Ed25519)
//! and the k-of-n witness policy a client applies to a checkpoint.
//!
//! A witness that verified a checkpoint's consistency with everything it saw
//! before of that log adds a note signature line to it. Its key id uses the
//! signature type `0x04`, and what it signs is
//!
//! ```text
//! cosignature/v1
//! time <POSIX seconds>
//! <checkpoint note text>
//! ```
//!
//! with the signature bytes being the 8-byte big-endian timestamp followed by
//! the Ed25519 signature. A log cannot show two clients two histories if each
//! client requires k cosignatures by witnesses it pins ([`WitnessPolicy`]):
//! the witnesses would have to be in on it. The timestamp lets a client also
//! refuse a checkpoint that is old, so a log cannot freeze it on a view that
//! lacks a later entry (a revocation, a new key).
//!
//! # Example
//!
//! A log signs its checkpoint, one witness cosigns it, and a client pinning
//! that witness with a threshold of 1 accepts it while it is fresh.
//!
//! ```rust
//! use std::time::Duration;
//!
//! use cloister_ledger_verify::checkpoint::{Checkpoint, SignedCheckpoint};
//! use cloister_ledger_verify::cosignature::{Cosigner, WitnessPolicy, WitnessPolicyError};
//! use cloister_ledger_verify::merkle::empty_root;
//! use cloister_ledger_verify::note::NoteSigner;
//! use ed25519_dalek::SigningKey;
//!
//! let log = NoteSigner::ed25519("example.com/log", SigningKey::from_bytes(&[7; 32]))?;
//! let witness = Cosigner::ed25519("example.com/witness", SigningKey::from_bytes(&[8; 32]))?;
//! let checkpoint = Checkpoint {
//!     origin: "example.com/log".into(),
//!     tree_size: 0,
//!     root_hash: empty_root(),
//!     extensions: vec![],
//! };
//! let mut signed = SignedCheckpoint::sign(checkpoint, &log)?;
//! signed.add_cosignature(witness.cosign(signed.note().text(), 1_700_000_000)?)?;
//!
//! let policy = WitnessPolicy {
//!     witnesses: vec![witness.verifier_key().to_string().parse()?],
//!     threshold: 1,
//!     max_age: Duration::from_secs(3600),
//! };
//! let accepted = policy.verify(&signed, log.verifier_key(), 1_700_000_060)?;
//! assert_eq!(accepted.cosigned_at, 1_700_000_000);
//! assert!(matches!(
//!     policy.verify(&signed, log.verifier_key(), 1_700_100_000),
//!     Err(WitnessPolicyError::Stale { .. })
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use ed25519_dalek::{Signature, Signer as _, SigningKey};

use crate::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use crate::note::{NamedKey, NoteError, NoteSignature, VerifierKey};

/// The signature type byte of Ed25519 `cosignature/v1` in key ids and vkeys.
pub const COSIGNATURE_V1: u8 = 0x04;

/// Cosignature timestamps are at most `2^63 - 1`.
const MAX_TIMESTAMP: u64 = (1 << 63) - 1;

/// How far in the future a cosignature's timestamp may be and still count:
/// clocks of witnesses and clients disagree a little.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Why a cosignature could not be made or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// A key name or vkey that is not valid.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A timestamp above `2^63 - 1`.
    #[error("cosignature timestamp {0} exceeds 2^63 - 1")]
    TimestampTooLarge(u64),
    /// Not an 8-byte timestamp and a 64-byte Ed25519 signature.
    #[error("cosignature by {name} is not a timestamp and an Ed25519 signature")]
    Malformed {
        /// The witness name.
        name: String,
    },
    /// A cosignature by a pinned witness that does not verify.
    #[error("invalid cosignature by pinned witness {name}+{key_id:08x}")]
    InvalidSignature {
        /// The witness name.
        name: String,
        /// Its key id.
        key_id: u32,
    },
}

/// The message a `cosignature/v1` signs over the note `text` at `timestamp`.
pub fn signed_message(timestamp: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// A witness's public key for `cosignature/v1` (signature type `0x04`): its
/// name, key id and Ed25519 key; its text form is the vkey
/// `<name>+<hex id>+<base64(0x04 || key)>` that witnesses publish and clients pin.
pub type CosignerKey = NamedKey<COSIGNATURE_V1>;

impl CosignerKey {
    /// The timestamp of `signature` if it is this key's valid cosignature of
    /// the note `text`; `Ok(None)` if the line is by another key.
    pub fn verify(
        &self,
        text: &str,
        signature: &NoteSignature,
    ) -> Result<Option<u64>, CosignatureError> {
        if !signature.claims(self.name(), self.key_id()) {
            return Ok(None);
        }
        let (timestamp, ed25519) = timestamped(signature)?;
        let message = signed_message(timestamp, text);
        if timestamp > MAX_TIMESTAMP
            || self
                .public_key()
                .verify_strict(message.as_bytes(), &Signature::from_bytes(&ed25519))
                .is_err()
        {
            return Err(CosignatureError::InvalidSignature {
                name: self.name().to_owned(),
                key_id: self.key_id(),
            });
        }
        Ok(Some(timestamp))
    }
}

/// Splits a cosignature's bytes into its timestamp and Ed25519 signature.
fn timestamped(signature: &NoteSignature) -> Result<(u64, [u8; 64]), CosignatureError> {
    let malformed = || CosignatureError::Malformed {
        name: signature.name.clone(),
    };
    let (timestamp, ed25519) = signature
        .signature
        .split_first_chunk::<8>()
        .ok_or_else(malformed)?;
    let ed25519 = <[u8; 64]>::try_from(ed25519).map_err(|_| malformed())?;
    Ok((u64::from_be_bytes(*timestamp), ed25519))
}

/// The timestamp of a `cosignature/v1` line, unverified: for display and for
/// choosing among lines, never for trusting.
pub fn timestamp(signature: &NoteSignature) -> Result<u64, CosignatureError> {
    timestamped(signature).map(|(timestamp, _)| timestamp)
}

/// A witness's signing key: what cosigns checkpoints.
pub struct Cosigner {
    verifier: CosignerKey,
    key: SigningKey,
}

impl Cosigner {
    /// Cosigns as `name` with `key`.
    pub fn ed25519(name: &str, key: SigningKey) -> Result<Self, CosignatureError> {
        Ok(Self {
            verifier: CosignerKey::ed25519(name, key.verifying_key())?,
            key,
        })
    }

    /// The key that verifies this witness's cosignatures.
    pub fn verifier_key(&self) -> &CosignerKey {
        &self.verifier
    }

    /// The cosignature line over the note `text` at `timestamp` (POSIX seconds).
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<NoteSignature, CosignatureError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampTooLarge(timestamp));
        }
        let signature = self.key.sign(signed_message(timestamp, text).as_bytes());
        let mut bytes = timestamp.to_be_bytes().to_vec();
        bytes.extend_from_slice(&signature.to_bytes());
        Ok(NoteSignature {
            name: self.verifier.name().to_owned(),
            key_id: self.verifier.key_id(),
            signature: bytes,
        })
    }
}

/// Why a checkpoint did not satisfy a [`WitnessPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessPolicyError {
    /// The policy itself is unusable.
    #[error("witness policy: {0}")]
    BadPolicy(&'static str),
    /// The log's own signature or the checkpoint is invalid.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A pinned witness's cosignature does not verify: the note is refused whole.
    #[error(transparent)]
    Cosignature(#[from] CosignatureError),
    /// Fewer than `threshold` pinned witnesses cosigned.
    #[error(
        "checkpoint of size {tree_size} has valid cosignatures from {cosigned} pinned witnesses, {threshold} required"
    )]
    NotEnoughCosignatures {
        /// The checkpoint's tree size.
        tree_size: u64,
        /// Distinct pinned witnesses with a valid, not future-dated cosignature.
        cosigned: usize,
        /// The policy's threshold.
        threshold: usize,
    },
    /// The required cosignatures are older than the policy allows.
    #[error(
        "checkpoint of size {tree_size} is stale: its {threshold} freshest witness cosignatures go back {age_secs} s, at most {max_age_secs} s allowed"
    )]
    Stale {
        /// The checkpoint's tree size.
        tree_size: u64,
        /// The policy's threshold.
        threshold: usize,
        /// The age of the oldest of the `threshold` freshest cosignatures.
        age_secs: u64,
        /// The policy's limit.
        max_age_secs: u64,
    },
}

/// The witnesses a client pins, how many must cosign, and how fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessPolicy {
    /// The pinned witnesses, distinct by name.
    pub witnesses: Vec<CosignerKey>,
    /// How many distinct pinned witnesses must have cosigned (1 ..= n).
    pub threshold: usize,
    /// How old the cosignatures may be.
    pub max_age: Duration,
}

/// A checkpoint that satisfied a [`WitnessPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed<'a> {
    /// The checkpoint, signed by the log.
    pub checkpoint: &'a Checkpoint,
    /// The timestamp of the newest valid cosignature (POSIX seconds).
    pub cosigned_at: u64,
    /// The oldest of the counted cosignatures: by then the threshold of
    /// witnesses had all seen this checkpoint (what its age is measured by).
    pub confirmed_at: u64,
    /// The pinned witnesses whose valid cosignatures were counted.
    pub witnesses: Vec<&'a str>,
}

impl WitnessPolicy {
    /// Refuses a threshold of 0 (it would make witnesses optional), one above
    /// the number of witnesses, and a witness pinned twice.
    pub fn validate(&self) -> Result<(), WitnessPolicyError> {
        if self.threshold == 0 {
            return Err(WitnessPolicyError::BadPolicy("a threshold of 0"));
        }
        if self.threshold > self.witnesses.len() {
            return Err(WitnessPolicyError::BadPolicy(
                "a threshold above the number of witnesses",
            ));
        }
        for (i, witness) in self.witnesses.iter().enumerate() {
            if self.witnesses[..i].iter().any(|other| {
                other.name() == witness.name() || other.public_key() == witness.public_key()
            }) {
                return Err(WitnessPolicyError::BadPolicy(
                    "a witness name or key pinned twice",
                ));
            }
        }
        Ok(())
    }

    /// Returns the checkpoint if `log_key` signed it and at least
    /// `threshold` pinned witnesses cosigned it within `max_age` of `now`
    /// (POSIX seconds).
    ///
    /// Freshness is judged on the `threshold` freshest cosignatures, each of
    /// which must be within `max_age`: one fresh witness cannot vouch for the
    /// others. A cosignature dated more than [`CLOCK_SKEW`] in the future is
    /// not counted; one by a pinned witness that does not verify refuses the
    /// checkpoint.
    pub fn verify<'a>(
        &'a self,
        signed: &'a SignedCheckpoint,
        log_key: &VerifierKey,
        now: u64,
    ) -> Result<Witnessed<'a>, WitnessPolicyError> {
        self.validate()?;
        let checkpoint = signed.verify(log_key)?;
        let text = signed.note().text();
        let latest_allowed = now.saturating_add(CLOCK_SKEW.as_secs());
        // The newest valid cosignature of each pinned witness.
        let mut cosigned: Vec<(u64, &str)> = Vec::new();
        for witness in &self.witnesses {
            let mut newest = None;
            for line in signed.note().signatures() {
                if let Some(timestamp) = witness.verify(text, line)?
                    && timestamp <= latest_allowed
                {
                    newest = newest.max(Some(timestamp));
                }
            }
            if let Some(timestamp) = newest {
                cosigned.push((timestamp, witness.name()));
            }
        }
        if cosigned.len() < self.threshold {
            return Err(WitnessPolicyError::NotEnoughCosignatures {
                tree_size: checkpoint.tree_size,
                cosigned: cosigned.len(),
                threshold: self.threshold,
            });
        }
        cosigned.sort_unstable_by(|a, b| b.cmp(a));
        let counted = &cosigned[..self.threshold];
        let oldest_counted = counted.last().map_or(0, |(timestamp, _)| *timestamp);
        let age_secs = now.saturating_sub(oldest_counted);
        if age_secs > self.max_age.as_secs() {
            return Err(WitnessPolicyError::Stale {
                tree_size: checkpoint.tree_size,
                threshold: self.threshold,
                age_secs,
                max_age_secs: self.max_age.as_secs(),
            });
        }
        Ok(Witnessed {
            checkpoint,
            cosigned_at: counted.first().map_or(0, |(timestamp, _)| *timestamp),
            confirmed_at: oldest_counted,
            witnesses: counted.iter().map(|(_, name)| *name).collect(),
        })
    }
}
