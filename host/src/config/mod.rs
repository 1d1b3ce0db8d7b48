//! The host's configuration as plain data: folders, engine limits, the
//! network face and the attestation provider.
//!
//! It names no inference engine: the binary chooses and builds the engine
//! (its own `[inference]` table) and hands it to the assembly
//! (`Host::boot` in the `serve` module). Nothing here starts anything; the
//! helpers below only open the configured folders.

mod serve;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::Deserialize;

pub use self::serve::{
    AttestationConfig, ProviderKind, ServeConfig, SevGuestConfig, SimulatedConfig,
};
use crate::error::LoadError;
use crate::logfilter::{LogFilter, LogSink};
use crate::policy::PolicySet;
use crate::runtime::RuntimeConfig;

/// Host configuration: the host part of `cloister-host.toml`. Every key has
/// a default that works from a checkout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HostConfig {
    /// Folder of built components (read-only to the host).
    pub plugin_dir: PathBuf,
    /// Folder of reviewed policies (read-only to the host).
    pub policy_dir: PathBuf,
    /// Engine settings.
    pub runtime: RuntimeConfig,
    /// The network face of `cloister-host serve`.
    pub serve: ServeConfig,
    /// Where attestation evidence comes from.
    pub attestation: AttestationConfig,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            plugin_dir: PathBuf::from("target/plugins"),
            policy_dir: PathBuf::from("policies"),
            runtime: RuntimeConfig::default(),
            serve: ServeConfig::default(),
            attestation: AttestationConfig::default(),
        }
    }
}

impl HostConfig {
    /// Opens a configured folder as a read-only capability.
    pub fn open_dir(path: &Path) -> Result<Dir, LoadError> {
        Dir::open_ambient_dir(path, ambient_authority()).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Loads the policy set from the policy folder.
    pub fn policies(&self) -> Result<PolicySet, LoadError> {
        PolicySet::load(&Self::open_dir(&self.policy_dir)?)
    }

    /// Opens the plugin folder as a read-only capability.
    pub fn plugin_dir(&self) -> Result<Dir, LoadError> {
        Self::open_dir(&self.plugin_dir)
    }

    /// A log filter for `policies`, writing to `sink`.
    pub fn log_filter(policies: &PolicySet, sink: Arc<dyn LogSink>) -> Arc<LogFilter> {
        Arc::new(LogFilter::new(policies.allow_list().clone(), sink))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestation_settings_parse_and_malformed_digests_are_refused() {
        let text =
            "[attestation]\nprovider = \"sev-guest\"\n[attestation.simulated]\nhost-data = \""
                .to_owned()
                + &"ab".repeat(32)
                + "\"\n";
        let config: HostConfig = toml::from_str(&text).expect("parses");
        assert_eq!(config.attestation.provider, ProviderKind::SevGuest);
        assert_eq!(config.attestation.simulated.host_data, Some([0xab; 32]));
        for bad in [
            "host-data = \"abcd\"",
            "platform-seed = \"zz\"",
            "host-data = 7",
        ] {
            let text = format!("[attestation.simulated]\n{bad}\n");
            assert!(
                toml::from_str::<HostConfig>(&text).is_err(),
                "{bad} accepted"
            );
        }
        assert!(toml::from_str::<HostConfig>("[attestation]\nprovider = \"tpm\"\n").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = toml::from_str::<HostConfig>("plugin-dirr = \"x\"").expect_err("typo refused");
        assert!(error.to_string().contains("plugin-dirr"), "{error}");
    }
}
