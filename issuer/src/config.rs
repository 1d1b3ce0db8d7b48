//! The issuer's TOML configuration. Every field has a default that works
//! on a developer machine (see `issuer/issuer.example.toml`).

use std::net::SocketAddr;
use std::path::PathBuf;

use cloister_state_store::StateConfig;
use cloister_tls::TlsSettings;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Loopback address and port to listen on.
    pub listen: SocketAddr,
    /// The issuer name clients put in token challenges' `issuer_name`.
    pub issuer_name: String,
    /// The token request URL published in the directory.
    pub request_uri: String,
    /// Directory holding the issuer's PKCS#8 PEM keys, one file per key.
    pub key_dir: PathBuf,
    /// TOML file listing registered accounts and their Ed25519 keys.
    pub accounts_file: PathBuf,
    /// Key lifetime and rotation.
    pub keys: KeyConfig,
    /// Per-account issuance limits.
    pub rate_limit: RateLimitConfig,
    /// Largest allowed difference between a request's timestamp and our clock.
    pub max_clock_skew_secs: u64,
    /// Where the rate-limit counters are kept: a redb file (default
    /// `issuer-state.redb`) for one issuer, or Redis shared by every replica.
    pub state: StateConfig,
    /// HTTPS: the certificate clients and gateways see, and the CA bundle
    /// the ledger's certificate must chain to. Without `cert` and `key` the
    /// issuer serves plain HTTP on loopback only.
    pub tls: TlsSettings,
}

/// Issuer key lifetime. A key is used for issuance from its not-before
/// until half its lifetime has passed, when a successor is generated; it
/// stays published (and its tokens spendable) until its lifetime ends, so
/// every token issued has at least half a lifetime to be spent.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyConfig {
    /// Seconds from a key's not-before until its tokens expire.
    pub lifetime_secs: u64,
    /// How often the rotation task checks whether a new key is due.
    pub check_interval_secs: u64,
    /// Log each key in the transparency ledger before publishing it
    /// (clients that trust a ledger request tokens under no other key);
    /// each successor is then made `lead_secs` ahead. Unset: keys are
    /// published as they are made, and a release must log them.
    pub ledger: Option<cloister_ledger_verify::publish::PublisherSettings>,
}

/// How many tokens an account may obtain per fixed time window.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Tokens per account per window.
    pub tokens_per_window: u32,
    /// Window length in seconds.
    pub window_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7300)),
            issuer_name: "issuer.cloister.localhost".to_owned(),
            request_uri: "http://127.0.0.1:7300/token-request".to_owned(),
            key_dir: PathBuf::from("issuer-keys"),
            accounts_file: PathBuf::from("issuer-accounts.toml"),
            keys: KeyConfig::default(),
            rate_limit: RateLimitConfig::default(),
            max_clock_skew_secs: 300,
            state: StateConfig::redb("issuer-state.redb"),
            tls: TlsSettings::default(),
        }
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            lifetime_secs: 7 * 24 * 3600,
            check_interval_secs: 60,
            ledger: None,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            tokens_per_window: 100,
            window_secs: 3600,
        }
    }
}

impl Config {
    /// Parses a configuration file's text.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_example_config_parses_to_the_defaults() {
        let example =
            Config::from_toml(include_str!("../issuer.example.toml")).expect("example parses");
        let defaults = Config::default();
        assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
        assert!(Config::from_toml("listen = 7").is_err());
        assert!(Config::from_toml("unknown_key = 1").is_err());
    }
}
