//! The ledger as a server runs it: reviewer admission in front of the store.

use std::path::Path;

use cloister_ledger_verify::api::SubmitResponse;
use cloister_ledger_verify::entry::SignedEntry;
use cloister_ledger_verify::review::ReviewerPolicy;
use ed25519_dalek::SigningKey;

use crate::{LedgerError, LogStore};

/// An append-only log that admits only entries signed by k of n reviewers.
pub struct Ledger {
    store: LogStore,
    policy: ReviewerPolicy,
}

impl Ledger {
    /// Opens the database at `path` with the log's signing key and the reviewer policy.
    pub fn open(
        path: &Path,
        log_key: SigningKey,
        policy: ReviewerPolicy,
    ) -> Result<Self, LedgerError> {
        policy.validate()?;
        Ok(Self {
            store: LogStore::open(path, log_key)?,
            policy,
        })
    }

    /// Names the log `origin` in its checkpoints (see [`LogStore::with_origin`]).
    pub fn with_origin(mut self, origin: &str) -> Result<Self, LedgerError> {
        self.store = self.store.with_origin(origin)?;
        Ok(self)
    }

    /// Read access: tree heads, entries, proofs.
    pub fn store(&self) -> &LogStore {
        &self.store
    }

    /// The reviewer policy in force.
    pub fn policy(&self) -> &ReviewerPolicy {
        &self.policy
    }

    /// Admits and appends one entry. A rejected entry is not written anywhere.
    pub fn submit(&self, entry: &SignedEntry) -> Result<SubmitResponse, LedgerError> {
        self.submit_batch(std::slice::from_ref(entry))?
            .pop()
            .ok_or_else(|| LedgerError::Corrupt("append returned no placement".into()))
    }

    /// Admits every entry first, then appends them all in one transaction
    /// under one new tree head; one rejection rejects the whole batch.
    pub fn submit_batch(
        &self,
        entries: &[SignedEntry],
    ) -> Result<Vec<SubmitResponse>, LedgerError> {
        for entry in entries {
            entry.validate()?;
            self.policy.admit(entry)?;
        }
        self.store.append(entries)
    }
}
