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
use cloister_inference_candle::{CandleBackend, CandleConfig};
use cloister_inference_remote::{RemoteBackend, RemoteConfig};
use cloister_ledger_verify::view::{
    LedgerSettings, LedgerTrustConfig, PeerReleases, peer_policy_digest,
};
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
    /// through the RA-TLS session inside it. Its `ca` is also whom the
    /// `[ledger]`'s certificate must chain to.
    pub tls: TlsSettings,
    /// The `[ledger]` table: the ledger in which a remote inference host's
    /// release must be found (`backend = "remote"`).
    pub ledger: Option<LedgerSettings>,
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
        let ledger = table
            .remove("ledger")
            .map(toml::Value::try_into)
            .transpose()?;
        let host = toml::Value::Table(table).try_into()?;
        Ok(Self {
            host,
            inference,
            tls,
            ledger,
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
    /// The attestation policy the inference host's evidence must satisfy
    /// (`backend = "remote"`; required there): its platform rules, and, if
    /// it lists launches under `[accepted]`, an allow-list. The inference
    /// host's release must be found in the `[ledger]` and in that
    /// allow-list, whichever are configured (both must accept); with
    /// neither, every inference host is refused.
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
    /// RA-TLS: it must prove a release the `[ledger]` (and `remote-policy`'s
    /// allow-list, if any) names, and this host proves its own launch to
    /// it, before any prompt leaves.
    Remote,
}

/// The configured engine, and the runtime that keeps the `[ledger]` view
/// of a remote backend synced, which lives as long as the engine is used.
pub struct Engine {
    /// The engine.
    pub backend: Arc<dyn InferenceBackend>,
    _ledger_sync: Option<tokio::runtime::Runtime>,
}

/// How a remote inference host is judged, before the ledger view is opened.
struct RemoteJudge {
    /// `remote-policy` as read.
    policy_file: Vec<u8>,
    policy: Policy,
    /// The `[ledger]` view's configuration.
    ledger: Option<LedgerTrustConfig>,
}

impl Config {
    /// Builds the configured engine (loading the model, for candle). A
    /// remote backend proves this host's launch (of `host` and `policies`)
    /// with the evidence provider the host itself attests with, and judges
    /// the inference host with a `[ledger]` view synced before it returns.
    pub fn engine(&self, policies: &PolicySet) -> anyhow::Result<Engine> {
        let inference = &self.inference;
        let backend: Arc<dyn InferenceBackend> = match inference.backend {
            BackendKind::Candle => Arc::new(CandleBackend::load(&inference.candle)?),
            BackendKind::Deterministic => Arc::new(inference.deterministic()),
            BackendKind::Remote => return self.remote_engine(policies),
        };
        Ok(Engine {
            backend,
            _ledger_sync: None,
        })
    }

    fn remote_engine(&self, policies: &PolicySet) -> anyhow::Result<Engine> {
        let judge = self.remote_judge()?;
        let remote = self.remote_config(&judge);
        let launch = LaunchDigests::compute(
            &self.host,
            policies,
            host_binary_digest()?,
            &remote.identity(),
        )?;
        let attester = cloister_host::serve::provider(&self.host.attestation, &launch)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ledger-view")
            .enable_all()
            .build()
            .context("starting the ledger view's runtime")?;
        let ledger = match (&self.ledger, judge.ledger) {
            (Some(settings), Some(trust)) => Some(
                runtime
                    .block_on(settings.open_synced(trust))
                    .context("no verified view of the ledger: no inference host could be judged")?,
            ),
            _ => None,
        };
        let releases = PeerReleases::new(ledger, judge.policy.accepted.clone());
        if !releases.is_configured() {
            tracing::warn!(
                event = "remote-inference-unjudged",
                "no [ledger] and no allow-list in remote-policy: every inference host is refused"
            );
        }
        // The development root, from the simulated platform's cache: two
        // RSA-4096 key generations (seconds) paid once per machine.
        let (root, _) =
            SimulatedRoot::cached(DEVELOPMENT_SEED, &self.host.attestation.simulated.cache_dir)?;
        let anchors = root.pin_in(TrustAnchors::amd())?;
        let verifier = Verifier::new(anchors, judge.policy, releases);
        let backend = RemoteBackend::new(remote, verifier, attester)?;
        if let Err(error) = backend.connect() {
            // The inference host may start later; every call retries.
            tracing::warn!(%error, "no session with the inference host yet");
        }
        Ok(Engine {
            backend: Arc::new(backend),
            _ledger_sync: Some(runtime),
        })
    }

    /// What the inference host must prove: `remote-policy`'s platform rules
    /// (with the simulated development root pinned too, accepted only if
    /// the policy sets `allow_simulated`) and a release the `[ledger]` and
    /// the policy's allow-list name.
    fn remote_judge(&self) -> anyhow::Result<RemoteJudge> {
        let path = self
            .inference
            .remote_policy
            .as_ref()
            .context("`backend = \"remote\"` needs `remote-policy`")?;
        let policy_file =
            std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
        let policy = Policy::from_toml(&String::from_utf8_lossy(&policy_file))
            .with_context(|| format!("policy `{}`", path.display()))?;
        let ledger =
            LedgerSettings::resolve(self.ledger.as_ref(), &self.tls).context("[ledger]")?;
        Ok(RemoteJudge {
            policy_file,
            policy,
            ledger,
        })
    }

    /// `[inference.remote]` with the digest of how the inference host is
    /// judged, which its identity, so this host's HOST_DATA, then binds: a
    /// client sees which inference hosts this host would send prompts to.
    fn remote_config(&self, judge: &RemoteJudge) -> RemoteConfig {
        RemoteConfig {
            peer_policy: Some(peer_policy_digest(
                &judge.policy_file,
                judge.ledger.as_ref(),
            )),
            ..self.inference.remote.clone()
        }
    }

    /// The identity the configured engine will have, without loading it
    /// (hashes the model file, for `measure`).
    pub fn identity(&self) -> anyhow::Result<EngineIdentity> {
        let inference = &self.inference;
        Ok(match inference.backend {
            BackendKind::Candle => CandleBackend::identity_of(&inference.candle)?,
            BackendKind::Deterministic => inference.deterministic().identity(),
            BackendKind::Remote => self.remote_config(&self.remote_judge()?).identity(),
        })
    }
}

impl InferenceConfig {
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
