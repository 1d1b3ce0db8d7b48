//! Logging a party's own keys before it uses them (feature `http`).
//!
//! Clients use an OHTTP key configuration or an issuer key only while the
//! ledger holds it with an open window ([`crate::current::KeyBook`]). Keys
//! rotate far more often than reviewers meet, so the gateway and the issuer
//! each log theirs with a publisher key that the ledger's policy allows to
//! log that one kind of key and nothing else
//! ([`crate::review::Publisher`]), ahead of using it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cloister_tls::Trust;
use ed25519_dalek::SigningKey;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::HexBytes;
use crate::client::{LogVerifier, VerifyError};
use crate::entry::{
    EntryBody, Provenance, PublicKeyBytes, ReviewerSignature, SignedEntry, Subject,
};
use crate::remote::{LedgerClient, RemoteError};

/// Where and as whom a party logs its keys: the `[keys.ledger]` table of
/// the gateway's and the issuer's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublisherSettings {
    /// The ledger's base URL.
    pub url: String,
    /// The publisher's Ed25519 key file (64 hex digits; `cloister-ledger
    /// keygen` makes one). The ledger's policy lists its public key as a
    /// publisher of this party's kind of key.
    pub publisher_key_file: PathBuf,
    /// Name recorded with each logged key.
    pub publisher_name: String,
    /// The log's public key; with it, each logged key is proven included.
    #[serde(default)]
    pub log_key: Option<PublicKeyBytes>,
    /// How long before it is used a new key is made and logged, in seconds:
    /// time for the ledger to be down without delaying a rotation.
    #[serde(default = "default_lead_secs")]
    pub lead_secs: u64,
}

fn default_lead_secs() -> u64 {
    6 * 3600
}

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
    /// The subject has no digest to look it up by.
    #[error("only keys are published")]
    NotAKey,
}

/// Logs a party's keys in one ledger under one publisher key.
#[derive(Debug)]
pub struct KeyPublisher {
    ledger: LedgerClient,
    signer: SigningKey,
    name: String,
    log_key: Option<PublicKeyBytes>,
}

impl KeyPublisher {
    /// A publisher as `settings` describe it.
    ///
    /// # Errors
    /// [`PublishError::KeyFile`], or [`PublishError::Ledger`] if no HTTP
    /// client can be built.
    pub fn new(settings: &PublisherSettings, timeout: Duration) -> Result<Self, PublishError> {
        Self::with_trust(settings, timeout, &Trust::default())
    }

    /// As [`KeyPublisher::new`], verifying an `https://` ledger's
    /// certificate against `trust` only.
    ///
    /// # Errors
    /// As [`KeyPublisher::new`].
    pub fn with_trust(
        settings: &PublisherSettings,
        timeout: Duration,
        trust: &Trust,
    ) -> Result<Self, PublishError> {
        Ok(Self {
            ledger: LedgerClient::with_trust(&settings.url, timeout, trust)?,
            signer: read_seed(&settings.publisher_key_file)?,
            name: settings.publisher_name.clone(),
            log_key: settings.log_key,
        })
    }

    /// The publisher's public key, as the ledger's policy lists it.
    #[must_use]
    pub fn public_key(&self) -> PublicKeyBytes {
        HexBytes(self.signer.verifying_key().to_bytes())
    }

    /// Makes sure the ledger holds `subject` (a key with its window): looks
    /// it up, logs it signed by this publisher if absent, and, with a pinned
    /// log key, proves it included. Returns whether it was logged just now.
    ///
    /// # Errors
    /// The ledger is unreachable, refuses the entry, or does not prove it.
    pub async fn ensure_logged(&self, subject: Subject) -> Result<bool, PublishError> {
        let digest = subject
            .digest_bytes()
            .ok_or(PublishError::NotAKey)?
            .to_vec();
        let body = EntryBody {
            subject,
            provenance: Provenance {
                source_commit: "key rotation".into(),
                builder: self.name.clone(),
            },
        };
        let logged = self.ledger.entries_for_digest(&digest).await?;
        let (entry, appended) = match logged.into_iter().find(|logged| logged.entry.body == body) {
            Some(logged) => (logged.entry, false),
            None => {
                let entry = SignedEntry {
                    signatures: vec![ReviewerSignature::sign(&self.signer, &body)],
                    body,
                };
                let placed = self.ledger.submit(&entry).await?;
                (entry, placed.appended)
            }
        };
        if let Some(log_key) = &self.log_key {
            let mut verifier = LogVerifier::new(log_key.as_bytes(), None)?;
            self.ledger.update_tree_head(&mut verifier).await?;
            self.ledger.verify_entry(&verifier, &entry).await?;
        }
        Ok(appended)
    }
}

fn read_seed(path: &Path) -> Result<SigningKey, PublishError> {
    let bad = |reason: String| PublishError::KeyFile {
        path: path.to_owned(),
        reason,
    };
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?);
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut_slice())
        .map_err(|_| bad("not 64 hex digits".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}
