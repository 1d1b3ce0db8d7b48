//! The witness's TOML configuration (see `witness/examples/cloister-witness.toml`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cloister_ledger_verify::note::VerifierKey;
use cloister_tls::TlsSettings;
use serde::Deserialize;

/// Where the witness listens, keeps its state and key, and which logs it
/// cosigns. Every field has a default that works from the repository root.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve `POST /add-checkpoint` on (loopback port 7500 by default).
    pub listen: SocketAddr,
    /// The redb database file; created on first start.
    pub database: PathBuf,
    /// The witness's Ed25519 key file; created (mode 0600) on first start.
    pub key: PathBuf,
    /// The witness's name: the key name of its cosignatures.
    pub name: String,
    /// The logs this witness cosigns.
    #[serde(rename = "log")]
    pub logs: Vec<LogConfig>,
    /// HTTPS: the certificate logs see when they push checkpoints. Without
    /// `cert` and `key` the witness serves plain HTTP on loopback only.
    pub tls: TlsSettings,
}

/// One log the witness knows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The log's origin, the first line of its checkpoints.
    pub origin: String,
    /// The vkey that signs its checkpoints; its name must be the origin.
    pub vkey: String,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("parsing {path}: {source}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: Box<toml::de::Error>,
    },
    /// A log's vkey is invalid or not named after its origin.
    #[error("log {origin:?}: {reason}")]
    BadLog {
        /// The configured origin.
        origin: String,
        /// What is wrong.
        reason: String,
    },
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7600)),
            database: PathBuf::from("cloister-witness.redb"),
            key: PathBuf::from("cloister-witness.key"),
            name: "witness.cloister.localhost".to_owned(),
            logs: Vec::new(),
            tls: TlsSettings::default(),
        }
    }
}

impl Config {
    /// Reads `path`, or returns the defaults when no file is given.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// The logs' verifier keys, each checked to be named after its origin.
    ///
    /// # Errors
    /// [`ConfigError::BadLog`] for an unparsable vkey or one of another name.
    pub fn log_keys(&self) -> Result<Vec<VerifierKey>, ConfigError> {
        self.logs
            .iter()
            .map(|log| {
                VerifierKey::parse_named(&log.vkey, &log.origin).map_err(|error| {
                    ConfigError::BadLog {
                        origin: log.origin.clone(),
                        reason: error.to_string(),
                    }
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_parses_and_rejects_typos() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cloister-witness.toml");
        let config = Config::load(Some(&example)).expect("example config parses");
        assert_eq!(config.log_keys().expect("valid vkeys").len(), 1);
        let defaults = Config {
            logs: Vec::new(),
            ..config
        };
        assert_eq!(defaults, Config::default());
        assert!(toml::from_str::<Config>("lisen = \"127.0.0.1:1\"").is_err());
        let misnamed = Config {
            logs: vec![LogConfig {
                origin: "other.example/log".into(),
                vkey: Config::load(Some(&example)).expect("parses").logs[0]
                    .vkey
                    .clone(),
            }],
            ..Config::default()
        };
        assert!(misnamed.log_keys().is_err());
    }
}
