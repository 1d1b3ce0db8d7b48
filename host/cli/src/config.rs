//! The operators' configuration file (`cloister-host.toml`, example in
//! `host/cloister-host.example.toml`): the library's plain-data
//! [`HostConfig`] plus the `[inference]` table, which only the binary reads
//! because the binary chooses the engine.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use cloister_host::HostConfig;
use cloister_inference::{DeterministicBackend, EngineIdentity, InferenceBackend};
use cloister_inference_candle::{CandleBackend, CandleConfig, LoadError};
use cloister_tls::TlsSettings;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Every table but `[inference]`.
    pub host: HostConfig,
    /// The `[inference]` table.
    pub inference: InferenceConfig,
    /// The `[tls]` table: the certificate the gateway sees on the outer
    /// HTTPS hop. Not part of the attested settings (HOST_DATA): the outer
    /// hop only keeps network attackers out; the client trusts the host
    /// through the RA-TLS session inside it.
    pub tls: TlsSettings,
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config `{}`", path.display()))?;
        Self::parse(&text).with_context(|| format!("config `{}`", path.display()))
    }

    /// Parses a configuration; unknown keys are refused in every table.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        let mut table: toml::Table = text.parse()?;
        let inference = table
            .remove("inference")
            .map(toml::Value::try_into)
            .transpose()?
            .unwrap_or_default();
        let tls = table
            .remove("tls")
            .map(toml::Value::try_into)
            .transpose()?
            .unwrap_or_default();
        let host = toml::Value::Table(table).try_into()?;
        Ok(Self {
            host,
            inference,
            tls,
        })
    }
}

/// The `[inference]` table: which engine serves the plugins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Which engine serves the models.
    pub backend: BackendKind,
    /// The real engine's settings (model directory and file, threads, batching).
    pub candle: CandleConfig,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Candle,
            candle: CandleConfig::default(),
        }
    }
}

/// The engines this host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// The real engine: a GGUF model on candle, CPU or CUDA.
    #[default]
    Candle,
    /// The simulated development backend of `cloister-inference`: no weights,
    /// replays the prompt. Must be chosen explicitly and is announced loudly.
    Deterministic,
}

impl InferenceConfig {
    /// Builds the configured engine (loading the model, for candle).
    pub fn engine(&self) -> Result<Arc<dyn InferenceBackend>, LoadError> {
        Ok(match self.backend {
            BackendKind::Candle => Arc::new(CandleBackend::load(&self.candle)?),
            BackendKind::Deterministic => Arc::new(self.deterministic()),
        })
    }

    /// The identity the configured engine will have, without loading it
    /// (hashes the model file, for `measure`).
    pub fn identity(&self) -> Result<EngineIdentity, LoadError> {
        match self.backend {
            BackendKind::Candle => CandleBackend::identity_of(&self.candle),
            BackendKind::Deterministic => Ok(self.deterministic().identity()),
        }
    }

    fn deterministic(&self) -> DeterministicBackend {
        DeterministicBackend::serving(self.candle.model_name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cloister-host.example.toml");
        let example = Config::load(&path).expect("example parses");
        assert_eq!(example, Config::default());
    }

    #[test]
    fn the_inference_table_is_split_off_and_checked() {
        let config =
            Config::parse("plugin-dir = \"p\"\n[inference]\nbackend = \"deterministic\"\n")
                .expect("parses");
        assert_eq!(config.inference.backend, BackendKind::Deterministic);
        assert_eq!(config.host.plugin_dir, Path::new("p"));
        for bad in [
            "[inference]\nbackend = \"gpt\"\n",
            "[inference]\nbakend = \"candle\"\n",
            "plugin-dirr = \"x\"\n",
        ] {
            assert!(Config::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
