//! What `cloister-release demo-reviewers --json` makes, and what the parties
//! and the client of that throwaway ledger are configured with: shared by
//! `cargo xtask demo` and the end-to-end tests that start the same chain
//! (`tests/e2e/tests/it/chain.rs` includes this file), so both configure it
//! one way.

use std::path::{Path, PathBuf};

use cloister_ledger_verify::note::VerifierKey;

/// What `cloister-release demo-reviewers --json` made.
#[derive(serde::Deserialize)]
pub(crate) struct DemoLedger {
    pub(crate) reviewer_keys: Vec<PathBuf>,
    pub(crate) policy_path: PathBuf,
    pub(crate) config_path: PathBuf,
    pub(crate) log_public_key: String,
    pub(crate) gateway_publisher_key: PathBuf,
    pub(crate) issuer_publisher_key: PathBuf,
}

impl DemoLedger {
    /// The `[keys.ledger]` table with which a party logs its keys in the
    /// demo ledger at `ledger_url` before using them.
    pub(crate) fn key_publishing(
        &self,
        ledger_url: &str,
        publisher_key: &Path,
        name: &str,
    ) -> String {
        format!(
            "\n[keys.ledger]\nurl = {ledger_url:?}\npublisher_key_file = {:?}\n\
             publisher_name = {name:?}\nlog_key = \"{}\"\nlead_secs = 3600\n",
            publisher_key.display().to_string(),
            self.log_public_key
        )
    }

    /// The verifier key (vkey) of the log under `origin`, which witnesses
    /// pin; `None` when the log's public key is not an Ed25519 key.
    pub(crate) fn log_vkey(&self, origin: &str) -> Option<VerifierKey> {
        let key = hex::decode(&self.log_public_key)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .and_then(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok())?;
        VerifierKey::ed25519(origin, key).ok()
    }
}
