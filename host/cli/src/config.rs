//! The operators' configuration file (`cloister-host.toml`, example in
//! `host/cloister-host.example.toml`): the library's plain-data
//! [`HostConfig`] plus the `[inference]` table, which only the binary reads
//! because the binary chooses the engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use cloister_attestation::{DEVELOPMENT_SEED, Policy, SimulatedRoot, TrustAnchors, Verifier};
use cloister_host::{HostConfig, LaunchDigests, PolicySet, host_binary_digest};
use cloister_inference::{DeterministicBackend, EngineIdentity, InferenceBackend};
use cloister_inference_candle::{CandleBackend, CandleConfig, LoadError};
use cloister_inference_remote::{RemoteBackend, RemoteConfig};
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
    /// The inference host's address and limits (`backend = "remote"`).
    pub remote: RemoteConfig,
    /// The attestation policy the inference host must satisfy, listing the
    /// launches of its releases under `[accepted]` (`backend = "remote"`;
    /// required there).
    pub remote_policy: Option<PathBuf>,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::Candle,
            candle: CandleConfig::default(),
            remote: RemoteConfig::default(),
            remote_policy: None,
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
    /// A separate inference host (`cloister-inference-host`) over mutual
    /// RA-TLS: it must prove a release `remote-policy` accepts, and this host
    /// proves its own launch to it, before any prompt leaves.
    Remote,
}

impl InferenceConfig {
    /// Builds the configured engine (loading the model, for candle). A
    /// remote backend proves this host's launch (of `host` and `policies`)
    /// with the evidence provider the host itself attests with.
    pub fn engine(
        &self,
        host: &HostConfig,
        policies: &PolicySet,
    ) -> anyhow::Result<Arc<dyn InferenceBackend>> {
        Ok(match self.backend {
            BackendKind::Candle => Arc::new(CandleBackend::load(&self.candle)?),
            BackendKind::Deterministic => Arc::new(self.deterministic()),
            BackendKind::Remote => {
                let launch = LaunchDigests::compute(
                    host,
                    policies,
                    host_binary_digest()?,
                    &self.remote.identity(),
                )?;
                let attester = cloister_host::serve::provider(&host.attestation, &launch)?;
                let backend =
                    RemoteBackend::new(self.remote.clone(), self.remote_verifier()?, attester)?;
                if let Err(error) = backend.connect() {
                    // The inference host may start later; every call retries.
                    tracing::warn!(%error, "no session with the inference host yet");
                }
                Arc::new(backend)
            }
        })
    }

    /// What the inference host must prove: `remote-policy`, with the
    /// simulated development root pinned too (accepted only if the policy
    /// sets `allow_simulated`).
    fn remote_verifier(&self) -> anyhow::Result<Verifier<cloister_attestation::AllowList>> {
        let path = self
            .remote_policy
            .as_ref()
            .context("`backend = \"remote\"` needs `remote-policy`")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading `{}`", path.display()))?;
        let policy =
            Policy::from_toml(&text).with_context(|| format!("policy `{}`", path.display()))?;
        let anchors = SimulatedRoot::from_seed(DEVELOPMENT_SEED)?.pin_in(TrustAnchors::amd())?;
        let accepted = policy.accepted.clone();
        Ok(Verifier::new(anchors, policy, accepted))
    }

    /// The identity the configured engine will have, without loading it
    /// (hashes the model file, for `measure`).
    pub fn identity(&self) -> Result<EngineIdentity, LoadError> {
        match self.backend {
            BackendKind::Candle => CandleBackend::identity_of(&self.candle),
            BackendKind::Deterministic => Ok(self.deterministic().identity()),
            BackendKind::Remote => Ok(self.remote.identity()),
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
