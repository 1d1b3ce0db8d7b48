//! The host's configuration file (`cloister-host.toml`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use serde::Deserialize;

use crate::capabilities::Capabilities;
use crate::capabilities::inference::InferenceConfig;
use crate::error::LoadError;
use crate::logfilter::{LogFilter, LogSink};
use crate::policy::PolicySet;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::serve::{AttestationConfig, ServeConfig};

/// Host configuration. Every key has a default that works from a checkout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct HostConfig {
    /// Folder of built components (read-only to the host).
    pub plugin_dir: PathBuf,
    /// Folder of reviewed policies (read-only to the host).
    pub policy_dir: PathBuf,
    /// Engine settings.
    pub runtime: RuntimeConfig,
    /// Inference engine settings.
    pub inference: InferenceConfig,
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
            inference: InferenceConfig::default(),
            serve: ServeConfig::default(),
            attestation: AttestationConfig::default(),
        }
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid host configuration.
    #[error("config `{path}`: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl HostConfig {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.into(),
            reason: e.to_string(),
        })
    }

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

    /// Starts a runtime with every plugin of `policies` loaded and its log
    /// events filtered into `filter`.
    pub fn start(
        &self,
        policies: &PolicySet,
        filter: Arc<LogFilter>,
    ) -> Result<Runtime, LoadError> {
        let engine = self
            .inference
            .backend()
            .map_err(|e| LoadError::Inference(e.to_string()))?;
        let capabilities = Capabilities::new(engine, filter);
        let mut runtime = Runtime::new(self.runtime.clone(), capabilities)?;
        runtime.load_policy_set(policies, &Self::open_dir(&self.plugin_dir)?)?;
        Ok(runtime)
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
    fn example_config_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cloister-host.example.toml");
        let example = HostConfig::load(&path).expect("example parses");
        assert_eq!(example, HostConfig::default());
    }

    #[test]
    fn attestation_settings_parse_and_malformed_digests_are_refused() {
        let text =
            "[attestation]\nprovider = \"sev-guest\"\n[attestation.simulated]\nhost-data = \""
                .to_owned()
                + &"ab".repeat(32)
                + "\"\n";
        let config: HostConfig = toml::from_str(&text).expect("parses");
        assert_eq!(
            config.attestation.provider,
            crate::serve::ProviderKind::SevGuest
        );
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
