//! The `cloister` configuration file. Every field has a default that works
//! against the parties on their agreed loopback ports (see
//! `cloister.example.toml`, which a test keeps equal to these defaults).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use cloister_attestation::DEVELOPMENT_SEED;
use cloister_client::ClientConfig;
use cloister_client::tokens::IssuerSettings;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the wallet and the account key live (created mode 0700).
    pub state_dir: PathBuf,
    /// The account key file (written by `cloister account new`).
    pub account_file: PathBuf,
    /// Time allowed for each HTTP exchange, in seconds. A feature request is
    /// one exchange that lasts as long as the plugin's inference, so the
    /// default is the client library's, which outwaits the relay (which
    /// outwaits the gateway, which outwaits the largest plugin budget); the
    /// quick issuer and ledger exchanges share it.
    pub timeout_secs: u64,
    /// Relay, gateway key endpoint and service name.
    pub network: NetworkSettings,
    /// The Privacy Pass issuer and the wallet.
    pub tokens: TokenSettings,
    /// The attestation policy.
    pub attestation: AttestationSettings,
    /// Who decides which measurements, HOST_DATA and key configurations are released.
    pub trust: TrustSettings,
}

/// Where OHTTP requests go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// The relay's OHTTP endpoint.
    pub relay_url: String,
    /// The gateway's key configuration endpoint (RFC 9540).
    pub key_config_url: String,
    /// The service name inside the inner requests.
    pub authority: String,
}

/// The issuer, the challenge the gateway expects, and wallet refills.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// The issuer's base URL.
    pub issuer_url: String,
    /// `issuer_name` of the gateway's challenge (its `[tokens.issuer]`).
    pub issuer_name: String,
    /// `origin` of the gateway's challenge.
    pub origin: String,
    /// The issuer's key lifetime (its `keys.lifetime_secs`).
    pub key_lifetime_secs: u64,
    /// Tokens fetched when the wallet runs low.
    pub batch: usize,
    /// Before a request, refill when fewer than this many tokens are left.
    pub low_water: usize,
}

/// The attestation policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationSettings {
    /// A policy file in the format of `policies/attestation.toml`.
    pub policy_file: PathBuf,
    /// Seed of the simulated platform whose root is pinned when the policy
    /// accepts simulated evidence (hex, 32 bytes): by default the public
    /// development seed the development host also uses.
    pub simulated_platform_seed: String,
}

/// Which authority releases measurements, HOST_DATA and key configurations.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustSettings {
    /// `"ledger"` (the transparency ledger) or `"pinned"` (`pinned_file`).
    pub authority: Authority,
    /// The ledger's base URL.
    pub ledger_url: String,
    /// The ledger's log key (Ed25519 public key, hex), pinned out of band.
    pub ledger_log_key: String,
    /// A reviewer policy to pin: logged entries are then trusted only with
    /// reviewer signatures satisfying it.
    pub reviewer_policy_file: Option<PathBuf>,
    /// The pinned allow-list (see `crate::trust`).
    pub pinned_file: PathBuf,
}

/// Who decides what is released software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Authority {
    /// The transparency ledger's entries, verified by the client.
    Ledger,
    /// An explicit allow-list file.
    Pinned,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: "cloister-state".into(),
            account_file: "cloister-state/account.toml".into(),
            timeout_secs: ClientConfig::default().timeout.as_secs(),
            network: NetworkSettings::default(),
            tokens: TokenSettings::default(),
            attestation: AttestationSettings::default(),
            trust: TrustSettings::default(),
        }
    }
}

impl Default for NetworkSettings {
    fn default() -> Self {
        let client = ClientConfig::default();
        Self {
            relay_url: client.relay_url,
            key_config_url: client.key_config_url,
            authority: "cloister.invalid".into(),
        }
    }
}

impl Default for TokenSettings {
    fn default() -> Self {
        let issuer = IssuerSettings::default();
        Self {
            issuer_url: issuer.issuer_url,
            issuer_name: issuer.issuer_name,
            origin: issuer.origin,
            key_lifetime_secs: issuer.key_lifetime_secs,
            batch: 20,
            low_water: 6,
        }
    }
}

impl Default for AttestationSettings {
    fn default() -> Self {
        Self {
            policy_file: "policies/attestation.toml".into(),
            simulated_platform_seed: hex::encode(DEVELOPMENT_SEED),
        }
    }
}

impl Default for TrustSettings {
    fn default() -> Self {
        Self {
            authority: Authority::Ledger,
            ledger_url: "http://127.0.0.1:7400".into(),
            ledger_log_key: String::new(),
            reviewer_policy_file: None,
            pinned_file: "cloister-state/pinned.toml".into(),
        }
    }
}

impl Config {
    /// Reads `path`, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            tracing::debug!("no --config given: built-in defaults");
            return Ok(Self::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Time allowed for each HTTP exchange.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// The OHTTP client's settings.
    pub fn client(&self) -> ClientConfig {
        ClientConfig {
            relay_url: self.network.relay_url.clone(),
            key_config_url: self.network.key_config_url.clone(),
            timeout: self.timeout(),
        }
    }

    /// The issuer client's settings.
    pub fn issuer(&self) -> IssuerSettings {
        IssuerSettings {
            issuer_url: self.tokens.issuer_url.clone(),
            issuer_name: self.tokens.issuer_name.clone(),
            origin: self.tokens.origin.clone(),
            key_lifetime_secs: self.tokens.key_lifetime_secs,
            timeout: self.timeout(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_the_defaults() {
        let example: Config = toml::from_str(include_str!("../cloister.example.toml"))
            .unwrap_or_else(|e| panic!("example config: {e}"));
        assert_eq!(example, Config::default());
    }

    #[test]
    fn unknown_keys_and_authorities_are_refused() {
        assert!(toml::from_str::<Config>("relay = \"x\"").is_err());
        assert!(toml::from_str::<Config>("[trust]\nauthority = \"anything\"").is_err());
    }
}
