//! The `cloister` configuration file. Every field has a default that works
//! against the parties on their agreed loopback ports (see
//! `cloister.example.toml`, which a test keeps equal to these defaults).
//!
//! Relative paths in a configuration file are relative to that file's own
//! directory, never to the working directory: whoever can write to the
//! directory a user happens to run `cloister` in must not be able to plant
//! an attestation policy or an allow-list there. The trust files (the
//! attestation policy, the reviewer policy, the pinned allow-list) are
//! refused when relative, which only the built-in defaults leave them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use cloister_attestation::DEVELOPMENT_SEED;
use cloister_client::tokens::IssuerSettings;
use cloister_client::{ClientConfig, Outbound, PlainHttp, Trust};
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// DEMO ONLY: run without the protections a release needs (a pinned
    /// reviewer policy over the transparency ledger, real SEV-SNP
    /// evidence), for example with `authority = "pinned"` or the simulated
    /// attestation policy. Off by default: without it such a configuration
    /// is refused. Every run with it on says so loudly.
    pub demo: bool,
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
    /// HTTPS to the relay, the issuer and the ledger.
    pub tls: TlsSettings,
}

/// HTTPS on the client's hops (relay and key endpoint, issuer, ledger).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The CA bundle (PEM) the relay's, issuer's and ledger's certificates
    /// must chain to; no other authority is trusted. Unset: no HTTPS server
    /// is trusted.
    pub ca: Option<PathBuf>,
    /// DEMO ONLY: accept plain `http://` URLs for the relay, issuer and
    /// ledger (also `--insecure-plain-http`). Off by default: RFC 9458
    /// expects HTTPS to the relay, and without it a network attacker reads
    /// and answers every hop.
    pub insecure_plain_http: bool,
}

/// Where OHTTP requests go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// The relay's OHTTP endpoint.
    pub relay_url: String,
    /// The key configuration endpoint (RFC 9540): the relay's, which
    /// serves its own copy of the gateway's, so the gateway never sees this
    /// client fetch it. Kept in `state_dir` as long as its `max-age` allows.
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
    /// The reviewer policy to pin: logged entries are trusted only with
    /// reviewer signatures satisfying it. Required unless `demo` is set.
    pub reviewer_policy_file: Option<PathBuf>,
    /// The pinned allow-list (see `crate::trust`).
    pub pinned_file: PathBuf,
    /// The ledger's origin: the first line of its checkpoints and the name
    /// of its log key in them.
    pub ledger_origin: String,
    /// The witnesses whose cosignatures each ledger checkpoint needs
    /// (`[[trust.witness]]`). Required unless `demo` is set.
    #[serde(rename = "witness")]
    pub witnesses: Vec<WitnessPin>,
    /// How many of them must cosign (default: all).
    pub witness_threshold: Option<usize>,
    /// The oldest a checkpoint may be, judged by its cosignatures, in seconds.
    pub checkpoint_max_age_secs: u64,
}

/// One pinned witness.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessPin {
    /// Its name, as its vkey names it.
    pub name: String,
    /// Its `cosignature/v1` vkey (`cloister-witness vkey` prints it).
    pub vkey: String,
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
            demo: false,
            state_dir: "cloister-state".into(),
            account_file: "cloister-state/account.toml".into(),
            timeout_secs: ClientConfig::default().timeout.as_secs(),
            network: NetworkSettings::default(),
            tokens: TokenSettings::default(),
            attestation: AttestationSettings::default(),
            trust: TrustSettings::default(),
            tls: TlsSettings::default(),
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
            ledger_url: "https://127.0.0.1:7400".into(),
            ledger_log_key: String::new(),
            reviewer_policy_file: None,
            pinned_file: "cloister-state/pinned.toml".into(),
            ledger_origin: "cloister.localhost/ledger".into(),
            witnesses: Vec::new(),
            witness_threshold: None,
            checkpoint_max_age_secs: 24 * 3600,
        }
    }
}

impl Config {
    /// Reads `path`, or the defaults when there is none. Relative paths in
    /// the file are made relative to the file's directory.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            tracing::debug!("no --config given: built-in defaults");
            return Ok(Self::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let file =
            std::path::absolute(path).with_context(|| format!("locating {}", path.display()))?;
        config.resolve_paths(file.parent().unwrap_or(Path::new("/")));
        Ok(config)
    }

    /// Joins every relative path onto `base`.
    fn resolve_paths(&mut self, base: &Path) {
        let paths = [
            &mut self.state_dir,
            &mut self.account_file,
            &mut self.attestation.policy_file,
            &mut self.trust.pinned_file,
        ];
        for path in paths
            .into_iter()
            .chain(self.trust.reviewer_policy_file.as_mut())
            .chain(self.tls.ca.as_mut())
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Time allowed for each HTTP exchange.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// How the relay, issuer and ledger are reached: HTTPS trusting
    /// `[tls] ca`, and plain HTTP only with `insecure_plain_http` (said
    /// loudly on every run).
    pub fn outbound(&self) -> anyhow::Result<Outbound> {
        let trust = match &self.tls.ca {
            Some(ca) => Trust::from_ca_file(ca).context("[tls] ca")?,
            None => Trust::default(),
        };
        if !self.tls.insecure_plain_http {
            return Ok(Outbound::https(trust));
        }
        tracing::warn!(
            "DEMO: insecure_plain_http is set: relay, issuer and ledger may be reached over plain HTTP, readable and changeable by anyone on the path"
        );
        Ok(Outbound {
            trust,
            plain_http: PlainHttp::InsecureDemo,
        })
    }

    /// The OHTTP client's settings.
    pub fn client(&self) -> anyhow::Result<ClientConfig> {
        Ok(ClientConfig {
            relay_url: self.network.relay_url.clone(),
            key_config_url: self.network.key_config_url.clone(),
            key_cache_file: Some(self.state_dir.join("ohttp-keys.json")),
            timeout: self.timeout(),
            tls: self.outbound()?,
        })
    }

    /// The issuer client's settings.
    pub fn issuer(&self) -> anyhow::Result<IssuerSettings> {
        Ok(IssuerSettings {
            issuer_url: self.tokens.issuer_url.clone(),
            issuer_name: self.tokens.issuer_name.clone(),
            origin: self.tokens.origin.clone(),
            key_lifetime_secs: self.tokens.key_lifetime_secs,
            timeout: self.timeout(),
            tls: self.outbound()?,
        })
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
    fn relative_paths_resolve_from_the_files_directory() {
        let temporary = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = temporary.path();
        let file = dir.join("cloister.toml");
        std::fs::write(
            &file,
            "state_dir = \"state\"\naccount_file = \"/abs/account.toml\"\n\
             [attestation]\npolicy_file = \"policies/attestation.toml\"\n\
             [trust]\nreviewer_policy_file = \"../reviewers.toml\"\npinned_file = \"pinned.toml\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let config = Config::load(Some(&file)).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(config.state_dir, dir.join("state"));
        assert_eq!(config.account_file, Path::new("/abs/account.toml"));
        assert_eq!(
            config.attestation.policy_file,
            dir.join("policies/attestation.toml")
        );
        assert_eq!(
            config.trust.reviewer_policy_file,
            Some(dir.join("../reviewers.toml"))
        );
        assert_eq!(config.trust.pinned_file, dir.join("pinned.toml"));
    }

    #[test]
    fn unknown_keys_and_authorities_are_refused() {
        assert!(toml::from_str::<Config>("relay = \"x\"").is_err());
        assert!(toml::from_str::<Config>("[trust]\nauthority = \"anything\"").is_err());
    }
}
