//! The server's TOML configuration (see `ledger/examples/cloister-ledger.toml`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cloister_ledger_server::WitnessConfig;
use cloister_tls::TlsSettings;
use serde::Deserialize;

/// Where the ledger listens and keeps its state. Every field has a default
/// that works from the repository root.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve the HTTP API on (loopback port 7400 by default).
    pub listen: SocketAddr,
    /// The redb database file; created on first start.
    pub database: PathBuf,
    /// The log's Ed25519 signing key file; created (mode 0600) on first start.
    pub log_key: PathBuf,
    /// The reviewed k-of-n reviewer policy. Required: without it nothing can be admitted.
    pub reviewers: PathBuf,
    /// The log's name in its C2SP checkpoints, and the name of their key.
    pub origin: String,
    /// The witnesses asked to cosign each checkpoint (none by default).
    #[serde(rename = "witness")]
    pub witnesses: Vec<WitnessConfig>,
    /// How long one exchange with a witness may take, in seconds.
    pub witness_timeout_secs: u64,
    /// How often the latest checkpoint is sent to the witnesses again while
    /// nothing is appended, so its cosignatures stay fresh, in seconds.
    pub cosign_interval_secs: u64,
    /// HTTPS: the certificate clients, parties and reviewers see, and the
    /// CA bundle witnesses' certificates must chain to. Without `cert` and
    /// `key` the ledger serves plain HTTP on loopback only.
    pub tls: TlsSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            database: PathBuf::from("cloister-ledger.redb"),
            log_key: PathBuf::from("cloister-ledger.key"),
            reviewers: PathBuf::from("policies/ledger-reviewers.toml"),
            origin: cloister_ledger::DEFAULT_ORIGIN.to_owned(),
            witnesses: Vec::new(),
            witness_timeout_secs: 5,
            cosign_interval_secs: 300,
            tls: TlsSettings::default(),
        }
    }
}

impl Config {
    /// Reads `path`, or returns the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_parses_and_rejects_typos() {
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cloister-ledger.toml");
        let config = Config::load(Some(&example)).expect("example config parses");
        assert_eq!(config, Config::default());
        assert!(toml::from_str::<Config>("lisen = \"127.0.0.1:1\"").is_err());
    }
}
