//! Logging the gateway's OHTTP keys in the transparency ledger before use.
//!
//! Clients use a key configuration only while the ledger holds it with an
//! open window (`cloister_ledger_verify::current::KeyBook`). So the gateway
//! prepares each next key ahead of its rotation time, logs it here, signed
//! by its publisher key (which the ledger's policy allows to log OHTTP keys
//! and nothing else), and makes it current only once the ledger holds it:
//! a rotation then costs clients nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::client::{LogVerifier, VerifyError};
use cloister_ledger_verify::entry::{
    EntryBody, KeyWindow, Provenance, PublicKeyBytes, ReviewerSignature, SignedEntry, Subject,
};
use cloister_ledger_verify::remote::{LedgerClient, RemoteError};
use cloister_ohttp_keys::RotationPolicy;
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

/// Why a key could not be logged.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The publisher key file is missing or not 64 hex digits.
    #[error("publisher key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The ledger could not be reached or refused the entry.
    #[error("ledger: {0}")]
    Ledger(#[from] RemoteError),
    /// The ledger's answer did not verify against its pinned key.
    #[error("ledger verification: {0}")]
    Verify(#[from] VerifyError),
    /// The key configuration is empty (no key id).
    #[error("empty key configuration")]
    EmptyConfig,
}

/// Logs key configurations in one ledger under one publisher key.
#[derive(Debug)]
pub struct KeyPublisher {
    ledger: LedgerClient,
    signer: SigningKey,
    name: String,
    log_key: Option<PublicKeyBytes>,
}

impl KeyPublisher {
    /// A publisher signing with the Ed25519 seed in `key_file` (64 hex
    /// digits, as `cloister-ledger keygen` writes), as `name`. With
    /// `log_key`, every logged entry is also proven included.
    ///
    /// # Errors
    /// [`PublishError::KeyFile`], or [`PublishError::Ledger`] if no HTTP
    /// client can be built.
    pub fn new(
        ledger_url: &str,
        key_file: &Path,
        name: &str,
        log_key: Option<PublicKeyBytes>,
        timeout: Duration,
    ) -> Result<Self, PublishError> {
        let bad = |reason: String| PublishError::KeyFile {
            path: key_file.to_owned(),
            reason,
        };
        let text =
            Zeroizing::new(std::fs::read_to_string(key_file).map_err(|e| bad(e.to_string()))?);
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut_slice())
            .map_err(|_| bad("not 64 hex digits".into()))?;
        Ok(Self {
            ledger: LedgerClient::new(ledger_url, timeout)?,
            signer: SigningKey::from_bytes(&seed),
            name: name.to_owned(),
            log_key,
        })
    }

    /// The publisher's public key, as the ledger's policy lists it.
    #[must_use]
    pub fn public_key(&self) -> PublicKeyBytes {
        HexBytes(self.signer.verifying_key().to_bytes())
    }

    /// Makes sure the ledger holds `config` with `window`: looks it up, logs
    /// it if absent, and (with a pinned log key) proves it included.
    ///
    /// # Errors
    /// The ledger is unreachable, refuses the entry, or does not prove it.
    pub async fn ensure_logged(
        &self,
        config: &[u8],
        window: KeyWindow,
    ) -> Result<(), PublishError> {
        let key_id =
            cloister_ohttp_keys::leading_key_id(config).ok_or(PublishError::EmptyConfig)?;
        let digest = cloister_ohttp_keys::key_config_digest(config);
        let body = EntryBody {
            subject: Subject::OhttpKeyConfig {
                key_id,
                digest: HexBytes(digest),
                window,
            },
            provenance: Provenance {
                source_commit: "gateway key rotation".into(),
                builder: self.name.clone(),
            },
        };
        let logged = self.ledger.entries_for_digest(&digest).await?;
        let entry = match logged.into_iter().find(|logged| logged.entry.body == body) {
            Some(logged) => logged.entry,
            None => {
                let entry = SignedEntry {
                    signatures: vec![ReviewerSignature::sign(&self.signer, &body)],
                    body,
                };
                let placed = self.ledger.submit(&entry).await?;
                tracing::info!(
                    key_id,
                    index = placed.index,
                    ?window,
                    "logged OHTTP key configuration"
                );
                entry
            }
        };
        if let Some(log_key) = &self.log_key {
            let mut verifier = LogVerifier::new(log_key.as_bytes(), None)?;
            self.ledger.update_tree_head(&mut verifier).await?;
            self.ledger.verify_entry(&verifier, &entry).await?;
        }
        Ok(())
    }
}

/// The window a key is logged with when it becomes current at
/// `activates_at`: its rotation period, its overlap, and one more period of
/// slack, so that a rotation delayed by an unreachable ledger does not stop
/// clients at once.
#[must_use]
pub fn key_window(activates_at: u64, policy: RotationPolicy) -> KeyWindow {
    let period = policy.rotate_every.as_secs();
    KeyWindow {
        not_before: activates_at,
        not_after: activates_at
            .saturating_add(period.saturating_mul(2))
            .saturating_add(policy.overlap.as_secs())
            .max(activates_at.saturating_add(1)),
    }
}
