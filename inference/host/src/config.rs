//! The inference host's configuration file (example:
//! `inference/host/cloister-inference-host.example.toml`); every key has a
//! default and unknown keys are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use cloister_attestation::{
    AllowList, DEVELOPMENT_SEED, DEVELOPMENT_TCB, EvidenceProvider, Policy, SevGuestProvider,
    SimulatedLaunch, SimulatedPlatform, SimulatedProvider, SimulatedRoot, TrustAnchors,
};
use cloister_inference::{DeterministicBackend, InferenceBackend};
use cloister_inference_candle::{CandleBackend, CandleConfig};
use cloister_ledger_verify::view::{LedgerSettings, LedgerTrustConfig, peer_policy_digest};
use cloister_ratls::{SessionAttester, SessionConfig};
use cloister_tls::TlsSettings;
use cloister_wire::{HexBytes, HostData, Measurement};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// Address of `POST /session` and `/healthz`.
    pub listen: SocketAddr,
    /// Most tokens one generate call produces, whatever the caller asks.
    pub max_tokens: u32,
    /// A session unused this long is dropped with its keys.
    pub idle_timeout_secs: u64,
    /// At most this many sessions (feature-host connections) at once.
    pub max_sessions: usize,
    /// Which engine generates.
    pub engine: EngineConfig,
    /// Where this CVM's evidence comes from.
    pub attestation: AttestationConfig,
    /// Which feature hosts may call: the platform rules and any allow-list.
    pub callers: CallersConfig,
    /// The ledger in which a caller's release must be found (`[ledger]`).
    pub ledger: Option<LedgerSettings>,
    /// `[tls]`: `ca`, the CA bundle the ledger's certificate must chain to.
    /// The sessions themselves are served over plain HTTP: RA-TLS inside
    /// them is what protects and authenticates both ends.
    pub tls: TlsSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            max_tokens: 1024,
            idle_timeout_secs: 60,
            max_sessions: 64,
            engine: EngineConfig::default(),
            attestation: AttestationConfig::default(),
            callers: CallersConfig::default(),
            ledger: None,
            tls: TlsSettings::default(),
        }
    }
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct EngineConfig {
    /// `candle` (the real engine) or `deterministic` (no weights, announced).
    pub backend: Backend,
    /// The candle engine's settings.
    pub candle: CandleConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Candle,
            candle: CandleConfig::default(),
        }
    }
}

/// The engines this host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// A GGUF model on candle, CPU or CUDA.
    Candle,
    /// The simulated development backend: replays the prompt.
    Deterministic,
}

/// `[attestation]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AttestationConfig {
    /// `simulated` (development, announced loudly) or `sev-guest`.
    pub provider: Provider,
    /// Seed of the simulated signing chain (hex); public.
    #[serde(deserialize_with = "hex::deserialize")]
    pub platform_seed: [u8; 32],
    /// Where the simulated platform is cached.
    pub cache_dir: PathBuf,
    /// The measurement the simulated CVM reports (hex, 48 bytes).
    #[serde(deserialize_with = "hex::deserialize")]
    pub simulated_measurement: [u8; 48],
    /// VMPL reports are requested at (`sev-guest`).
    pub vmpl: u32,
    /// A VCEK (DER) to send when the hypervisor supplies none (`sev-guest`).
    pub vcek_file: Option<PathBuf>,
}

impl Default for AttestationConfig {
    fn default() -> Self {
        Self {
            provider: Provider::Simulated,
            platform_seed: DEVELOPMENT_SEED,
            cache_dir: std::env::temp_dir().join("cloister-simulated"),
            simulated_measurement: [0x1f; 48],
            vmpl: 0,
            vcek_file: None,
        }
    }
}

/// Evidence providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// A locally generated chain: no hardware protection at all.
    Simulated,
    /// The AMD secure processor through `/dev/sev-guest`.
    SevGuest,
}

/// `[callers]`: the attestation policy feature hosts must satisfy (platform
/// rules), and optionally an allow-list of their launches under
/// `[accepted]`. A caller's release is judged by the `[ledger]`, and by
/// the allow-list when it lists any launch: with both, both must accept;
/// with neither, every caller is refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct CallersConfig {
    /// The policy file (`cloister_attestation::Policy` TOML). Absent: the
    /// production platform rules (no simulated evidence) and no allow-list.
    pub policy: Option<PathBuf>,
    /// Trust the simulated root of this seed too (needs `allow_simulated`
    /// in the policy).
    #[serde(deserialize_with = "optional_hex")]
    pub simulated_seed: Option<[u8; 32]>,
}

impl Default for CallersConfig {
    fn default() -> Self {
        Self {
            policy: None,
            simulated_seed: Some(DEVELOPMENT_SEED),
        }
    }
}

fn optional_hex<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<[u8; 32]>, D::Error> {
    hex::deserialize(deserializer).map(Some)
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config `{}`", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config `{}`", path.display()))
    }

    /// The session table's limits.
    pub fn sessions(&self) -> SessionConfig {
        SessionConfig {
            idle_timeout_secs: self.idle_timeout_secs,
            max_sessions: self.max_sessions,
        }
    }

    /// The configured engine (loads the model, for candle).
    pub fn engine(&self) -> anyhow::Result<Arc<dyn InferenceBackend>> {
        let candle = &self.engine.candle;
        Ok(match self.engine.backend {
            Backend::Candle => Arc::new(CandleBackend::load(candle).context("loading the model")?),
            Backend::Deterministic => {
                Arc::new(DeterministicBackend::serving(candle.model_name.clone()))
            }
        })
    }

    /// How callers are judged: the policy file as read, its rules, and the
    /// `[ledger]` view's configuration (nothing is fetched yet).
    pub fn callers(&self) -> anyhow::Result<Callers> {
        let (policy_file, policy) = match &self.callers.policy {
            Some(path) => {
                let text = std::fs::read(path)
                    .with_context(|| format!("reading callers' policy `{}`", path.display()))?;
                let policy = Policy::from_toml(&String::from_utf8_lossy(&text))
                    .with_context(|| format!("callers' policy `{}`", path.display()))?;
                (text, policy)
            }
            None => (
                Vec::new(),
                Policy {
                    allow_simulated: false,
                    report_versions: 2..=5,
                    allowed_vmpls: [0].into(),
                    minimum_tcb: Default::default(),
                    accepted: AllowList::default(),
                },
            ),
        };
        if self.tls.cert.is_some() || self.tls.key.is_some() {
            anyhow::bail!(
                "[tls] names only `ca` here: sessions are served over plain HTTP, protected by the RA-TLS inside them"
            );
        }
        let ledger =
            LedgerSettings::resolve(self.ledger.as_ref(), &self.tls).context("[ledger]")?;
        let mut anchors = TrustAnchors::amd();
        if let Some(seed) = self.callers.simulated_seed {
            // Cached with the simulated platform: the key generations
            // (seconds) are paid once per machine.
            let (root, _) = SimulatedRoot::cached(seed, &self.attestation.cache_dir)?;
            anchors = root.pin_in(anchors)?;
        }
        Ok(Callers {
            policy_file,
            policy,
            anchors,
            ledger,
        })
    }

    /// What HOST_DATA binds, as a release names it: how callers are judged
    /// (`callers`' policy digest), the model the engine loaded (its
    /// SHA-256, if it has weights), and every setting that changes behaviour.
    pub fn launch_parts(&self, callers: &Callers, engine: &dyn InferenceBackend) -> LaunchParts {
        let identity = engine.identity();
        let mut settings = Sha256::new();
        settings.update(b"cloister-inference-host-config-v1");
        let text = format!(
            "max-tokens={} idle-timeout-secs={} max-sessions={} engine={}",
            self.max_tokens, self.idle_timeout_secs, self.max_sessions, identity.settings
        );
        settings.update(text.as_bytes());
        LaunchParts {
            policy_set: HexBytes(callers.policy_digest()),
            model: identity.weights.map(HexBytes),
            host_config: HexBytes(settings.finalize().into()),
        }
    }

    /// This CVM's evidence provider (the simulated one launched with
    /// `host_data`) and whether it is simulated, once a boot report showed
    /// that it attests to `host_data`: a report naming anything else than
    /// what this host loaded would match no release.
    pub fn provider(
        &self,
        host_data: HostData,
    ) -> anyhow::Result<(Arc<dyn SessionAttester>, bool)> {
        let settings = &self.attestation;
        match settings.provider {
            Provider::Simulated => {
                let (platform, _) = SimulatedPlatform::cached(
                    settings.platform_seed,
                    DEVELOPMENT_TCB,
                    &settings.cache_dir,
                )?;
                let launch =
                    SimulatedLaunch::new(Measurement(settings.simulated_measurement), host_data);
                checked(SimulatedProvider::new(platform, launch), host_data)
            }
            Provider::SevGuest => {
                let mut provider = SevGuestProvider::new(settings.vmpl);
                if let Some(path) = &settings.vcek_file {
                    let vcek = std::fs::read(path)
                        .with_context(|| format!("reading VCEK `{}`", path.display()))?;
                    provider = provider.with_fallback_vcek(vcek);
                }
                checked(provider, host_data)
            }
        }
    }
}

/// The parts of this launch's HOST_DATA, as `measure` prints them for a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LaunchParts {
    /// Digest of how callers are judged.
    pub policy_set: HexBytes<32>,
    /// SHA-256 of the model file; `None` for the deterministic engine.
    pub model: Option<HexBytes<32>>,
    /// Digest of every setting that changes behaviour.
    pub host_config: HexBytes<32>,
}

impl LaunchParts {
    /// The HOST_DATA these parts hash to.
    pub fn host_data(&self) -> HostData {
        HostData::of_launch(
            self.policy_set.as_bytes(),
            self.model.as_ref().map(HexBytes::as_bytes),
            self.host_config.as_bytes(),
        )
    }
}

/// How callers are judged, before the ledger view is opened.
pub struct Callers {
    /// The `[callers]` policy file as read (empty without one).
    pub policy_file: Vec<u8>,
    /// Its platform rules and allow-list.
    pub policy: Policy,
    /// The roots caller evidence must chain to.
    pub anchors: TrustAnchors,
    /// The `[ledger]` view's configuration.
    pub ledger: Option<LedgerTrustConfig>,
}

impl Callers {
    /// What HOST_DATA binds of this judgement: the policy file and the
    /// ledger's trust root.
    pub fn policy_digest(&self) -> [u8; 32] {
        peer_policy_digest(&self.policy_file, self.ledger.as_ref())
    }
}

/// `provider`, once its boot report names `host_data`.
fn checked<P: EvidenceProvider + Send + Sync + 'static>(
    provider: P,
    host_data: HostData,
) -> anyhow::Result<(Arc<dyn SessionAttester>, bool)> {
    let boot = provider
        .evidence(&[0; 64])
        .context("requesting the boot attestation report")?;
    let reported = boot.report.host_data();
    if reported != host_data {
        anyhow::bail!(
            "refusing to start: the CVM's HOST_DATA is {reported}, but the loaded policy, model \
             and settings hash to {host_data}"
        );
    }
    let simulated = provider.is_simulated();
    Ok((Arc::new(provider), simulated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_the_defaults() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("cloister-inference-host.example.toml");
        let example = Config::load(&path).expect("example parses");
        assert_eq!(example, Config::default());
        assert!(toml::from_str::<Config>("listn = \"127.0.0.1:1\"").is_err());
    }

    #[test]
    fn the_ledger_is_in_host_data() {
        let engine = DeterministicBackend::serving("m");
        let bare = Config::default();
        let with_ledger: Config = toml::from_str(
            "[ledger]\nurl = \"http://127.0.0.1:7400\"\nstate-dir = \"s\"\n\
             log-key = \"0101010101010101010101010101010101010101010101010101010101010101\"\n",
        )
        .expect("parses");
        let host_data = |config: &Config| {
            let callers = config.callers().expect("callers");
            config.launch_parts(&callers, &engine).host_data()
        };
        assert_ne!(host_data(&bare), host_data(&with_ledger));
    }
}
