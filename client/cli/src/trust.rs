//! What the client trusts: the attestation policy, the roots evidence must
//! chain to, and the authority that says which launches (measurement,
//! HOST_DATA, guest policy, platform info) and gateway key configurations
//! are released.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use cloister_attestation::{
    AllowList, AuthorityRejection, LaunchFacts, MeasurementAuthority, Policy, RootKind,
    SIMULATION_WARNING, SimulatedRoot, Tcb, TrustAnchors, VerifiedReport, Verifier,
};
use cloister_client::ledger::{LedgerTrust, LedgerTrustConfig, WitnessedCheckpoints};
use cloister_client::tokens::IssuerKeyCheck;
use cloister_client::{ClientError, KeyConsistency, PinnedDigests};
use cloister_ledger_verify::cosignature::CosignerKey;
use cloister_ledger_verify::entry::PublicKeyBytes;
use cloister_ledger_verify::review::ReviewerPolicy;
use cloister_wire::{HexBytes, HexError};
use serde::{Deserialize, Serialize};

use crate::config::{Authority, Config, TrustSettings};

/// The pinned allow-list file (`[trust] pinned_file`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinnedFile {
    #[serde(default)]
    launches: Vec<LaunchFacts>,
    #[serde(default)]
    key_configs: Vec<String>,
}

/// Released values as an explicit, reviewed list.
#[derive(Debug, Clone)]
pub struct Pinned {
    allow: AllowList,
    keys: PinnedDigests,
}

impl Pinned {
    /// Parses a pinned allow-list.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let file: PinnedFile = toml::from_str(text)?;
        Ok(Self {
            allow: AllowList {
                launches: file.launches.into_iter().collect(),
            },
            keys: PinnedDigests(
                digests::<HexBytes<32>>(&file.key_configs, "key_configs")?
                    .into_iter()
                    .map(|digest| digest.0)
                    .collect::<HashSet<_>>(),
            ),
        })
    }

    fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the pinned allow-list {} ([trust] pinned_file)",
                path.display()
            )
        })?;
        Self::from_toml(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

fn digests<T>(list: &[String], field: &str) -> anyhow::Result<std::collections::BTreeSet<T>>
where
    T: std::str::FromStr<Err = HexError> + Ord,
{
    list.iter()
        .map(|value| {
            value
                .parse()
                .with_context(|| format!("{field}: {value:?} is not a digest"))
        })
        .collect()
}

/// The configured authority, for launches.
#[derive(Debug, Clone)]
pub enum Released {
    /// The verified ledger view.
    Ledger(Arc<LedgerTrust>),
    /// [`Pinned`].
    Pinned(AllowList),
}

impl MeasurementAuthority for Released {
    fn check(&self, launch: &LaunchFacts) -> Result<(), AuthorityRejection> {
        match self {
            Self::Ledger(ledger) => MeasurementAuthority::check(ledger.as_ref(), launch),
            Self::Pinned(allow) => allow.check(launch),
        }
    }
}

impl Released {
    /// The release a verified `launch` belongs to, as the answer's label
    /// names it.
    #[must_use]
    pub fn release_of(&self, launch: &LaunchFacts) -> String {
        match self {
            Self::Ledger(ledger) => ledger
                .release_of(launch)
                .unwrap_or_else(|| "no current release (the ledger view changed)".to_owned()),
            Self::Pinned(_) => "pinned allow-list (demo: no ledger release)".to_owned(),
        }
    }
}

/// The configured authority, for gateway key configurations.
#[derive(Debug, Clone)]
pub enum ReleasedKeys {
    /// The verified ledger view.
    Ledger(Arc<LedgerTrust>),
    /// [`Pinned`].
    Pinned(PinnedDigests),
}

impl KeyConsistency for ReleasedKeys {
    async fn check(&self, encoded_config: &[u8]) -> Result<(), ClientError> {
        match self {
            Self::Ledger(ledger) => KeyConsistency::check(ledger.as_ref(), encoded_config).await,
            Self::Pinned(pinned) => pinned.check(encoded_config).await,
        }
    }
}

/// Everything a session checks the host and the gateway against.
#[derive(Debug)]
pub struct Trust {
    /// Verifies the host's evidence.
    pub verifier: Verifier<Released>,
    /// Checks the gateway's key configuration.
    pub keys: ReleasedKeys,
    /// Checks the issuer's key before tokens are requested under it (the
    /// ledger view; none with a pinned allow-list).
    pub issuer_keys: Option<Arc<dyn IssuerKeyCheck>>,
}

impl Trust {
    /// Loads the policy and the authority named in `config`. When the
    /// policy accepts simulated evidence, the development platform's root
    /// is pinned as well, and a warning says that nothing is protected.
    ///
    /// Unless `config.demo` is set, it refuses anything short of a release's
    /// protections: the ledger authority with a pinned reviewer policy, and
    /// an attestation policy that refuses simulated evidence.
    pub async fn load(config: &Config) -> anyhow::Result<Self> {
        let path = trust_file(&config.attestation.policy_file, "[attestation] policy_file")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the attestation policy {}", path.display()))?;
        let policy =
            Policy::from_toml(&text).with_context(|| format!("parsing {}", path.display()))?;
        demo_gate(config, policy.allow_simulated)?;
        let mut anchors = TrustAnchors::amd();
        if policy.allow_simulated {
            tracing::warn!(policy = %path.display(), "{SIMULATION_WARNING}");
            let seed = simulated_seed(&config.attestation.simulated_platform_seed)?;
            // Deriving the root takes seconds; it is done once per seed.
            let (root, source) = SimulatedRoot::cached(seed, &config.state_dir)
                .context("deriving the simulated development root")?;
            tracing::debug!(?source, "simulated development root");
            anchors = root.pin_in(anchors).context("pinning the simulated root")?;
        }
        let (released, keys, issuer_keys) = match config.trust.authority {
            Authority::Ledger => {
                let ledger = Arc::new(ledger_view(config).await?);
                (
                    Released::Ledger(Arc::clone(&ledger)),
                    ReleasedKeys::Ledger(Arc::clone(&ledger)),
                    Some(ledger as Arc<dyn IssuerKeyCheck>),
                )
            }
            Authority::Pinned => {
                let pinned = Pinned::load(trust_file(
                    &config.trust.pinned_file,
                    "[trust] pinned_file",
                )?)?;
                (
                    Released::Pinned(pinned.allow),
                    ReleasedKeys::Pinned(pinned.keys),
                    None,
                )
            }
        };
        Ok(Self {
            verifier: Verifier::new(anchors, policy, released),
            keys,
            issuer_keys,
        })
    }
}

/// What `demo = true` stands for, printed on every run that uses it.
const DEMO_WARNING: &str = "DEMO MODE: this client runs without the protections of a release \
     (a pinned reviewer policy over the transparency ledger, pinned ledger witnesses, \
     real SEV-SNP evidence); \
     nothing it sends is protected by reviewed software";

/// Refuses a configuration that lacks a release's protections unless it
/// says it is a demo, and warns when it does.
fn demo_gate(config: &Config, allows_simulated: bool) -> anyhow::Result<()> {
    let missing = if config.trust.authority == Authority::Pinned {
        Some("[trust] authority = \"pinned\" trusts an allow-list instead of the reviewed ledger")
    } else if config.trust.reviewer_policy_file.is_none() {
        Some("no reviewer policy is pinned ([trust] reviewer_policy_file)")
    } else if config.trust.witnesses.is_empty() {
        Some(
            "no ledger witnesses are pinned ([[trust.witness]]): the ledger's first head \
             would be trusted on first use",
        )
    } else if allows_simulated {
        Some("the attestation policy accepts SIMULATED evidence")
    } else {
        None
    };
    match (missing, config.demo) {
        (None, _) => Ok(()),
        (Some(_), true) => {
            tracing::warn!("{DEMO_WARNING}");
            Ok(())
        }
        (Some(missing), false) => bail!(
            "{missing}: refusing to run. Pin the reviewer policy of the releases you trust, \
             or for a demo set `demo = true` in the configuration (or pass --demo)"
        ),
    }
}

/// The issuer key check for `cloister tokens fetch`: the ledger view when
/// the client trusts a ledger (tokens only under a logged, current issuer
/// key), none with a pinned allow-list, which is a demo setting.
pub async fn issuer_key_check(config: &Config) -> anyhow::Result<Option<Arc<dyn IssuerKeyCheck>>> {
    Ok(match config.trust.authority {
        Authority::Ledger => Some(Arc::new(ledger_view(config).await?) as Arc<dyn IssuerKeyCheck>),
        Authority::Pinned => None,
    })
}

/// `path` if it is absolute: trust files come from the configuration
/// file's directory (see `crate::config`), never from the working directory.
fn trust_file<'a>(path: &'a Path, setting: &str) -> anyhow::Result<&'a Path> {
    if path.is_relative() {
        bail!(
            "{setting} {} is relative and no configuration file gives it a directory: \
             trust files are never read from the working directory; pass --config",
            path.display()
        );
    }
    Ok(path)
}

/// Opens the client's ledger view and brings it up to date. If the ledger
/// cannot be reached, the view verified at the last sync is used (with a
/// warning); with no verified view at all, nothing is trusted.
async fn ledger_view(config: &Config) -> anyhow::Result<LedgerTrust> {
    let trust = &config.trust;
    let log_key: PublicKeyBytes = trust.ledger_log_key.parse().ok().with_context(|| {
        format!(
            "[trust] ledger_log_key {:?} is not a 32-byte Ed25519 public key in hex",
            trust.ledger_log_key
        )
    })?;
    let reviewer_policy = match &trust.reviewer_policy_file {
        Some(path) => {
            let path = trust_file(path, "[trust] reviewer_policy_file")?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the reviewer policy {}", path.display()))?;
            Some(
                toml::from_str::<ReviewerPolicy>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?,
            )
        }
        None => None,
    };
    let ledger = LedgerTrust::open(LedgerTrustConfig {
        ledger_url: trust.ledger_url.clone(),
        log_key,
        reviewer_policy,
        state_path: config.state_dir.join("ledger.json"),
        timeout: config.timeout(),
        witnesses: witnesses(trust)?,
        tls: config.outbound()?,
    })?;
    if let Err(error) = ledger.sync().await {
        if ledger.tree_head().is_none() {
            return Err(anyhow::Error::new(error)
                .context("no verified view of the ledger: nothing can be trusted"));
        }
        tracing::warn!(%error, "ledger sync failed: using the view verified at the last sync");
    }
    Ok(ledger)
}

/// The pinned witnesses, or `None` when none are (demo only, see `demo_gate`).
fn witnesses(trust: &TrustSettings) -> anyhow::Result<Option<WitnessedCheckpoints>> {
    if trust.witnesses.is_empty() {
        tracing::warn!(
            "no ledger witnesses pinned: the ledger's first head is trusted on first use"
        );
        return Ok(None);
    }
    let keys = trust
        .witnesses
        .iter()
        .map(|pin| {
            CosignerKey::parse_named(&pin.vkey, &pin.name)
                .with_context(|| format!("[[trust.witness]] {:?}: vkey", pin.name))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let threshold = trust.witness_threshold.unwrap_or(keys.len());
    let mut witnessed = WitnessedCheckpoints::new(&trust.ledger_origin, keys, threshold);
    witnessed.policy.max_age = Duration::from_secs(trust.checkpoint_max_age_secs);
    Ok(Some(witnessed))
}

fn simulated_seed(hex_seed: &str) -> anyhow::Result<[u8; 32]> {
    let Some(seed) = hex::decode(hex_seed)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
    else {
        bail!("[attestation] simulated_platform_seed is not 32 bytes of hex");
    };
    Ok(seed)
}

/// What the host proved, as printed after a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttestationSummary {
    /// The launch measurement, hex.
    pub measurement: String,
    /// HOST_DATA (binding the host's policies, model and settings), hex.
    pub host_data: String,
    /// The root the evidence chained to (`"AMD Milan"`, … or `"SIMULATED"`).
    pub root: String,
    /// True when the evidence came from the simulated platform: no hardware
    /// protection at all.
    pub simulated: bool,
    /// The VMPL of the report.
    pub vmpl: u32,
    /// REPORTED_TCB.
    pub tcb: Tcb,
}

impl AttestationSummary {
    /// Summarises a verified report.
    pub fn new(report: &VerifiedReport) -> Self {
        let (root, simulated) = match report.root {
            RootKind::Amd(line) => (format!("AMD {line:?}"), false),
            RootKind::Simulated => ("SIMULATED".to_owned(), true),
        };
        Self {
            measurement: hex::encode(report.measurement),
            host_data: hex::encode(report.host_data),
            root,
            simulated,
            vmpl: report.vmpl,
            tcb: report.reported_tcb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TrustSettings, WitnessPin};

    use cloister_wire::{HostData, Measurement};

    fn launch(measurement: u8, host_data: u8, guest_policy: u64) -> LaunchFacts {
        LaunchFacts {
            measurement: Measurement([measurement; 48]),
            host_data: HostData([host_data; 32]),
            guest_policy,
            platform_info: 1,
        }
    }

    #[test]
    fn the_pinned_list_admits_only_what_it_names() {
        let measurement = hex::encode([0x52; 48]);
        let host_data = hex::encode([0x48; 32]);
        let pinned = Pinned::from_toml(&format!(
            "[[launches]]\nmeasurement = \"{measurement}\"\nhost_data = \"{host_data}\"\n\
             guest_policy = 0x30000\nplatform_info = 1\n"
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let released = Released::Pinned(pinned.allow);
        assert_eq!(released.check(&launch(0x52, 0x48, 0x3_0000)), Ok(()));
        assert!(released.check(&launch(0x53, 0x48, 0x3_0000)).is_err());
        assert!(released.check(&launch(0x52, 0x49, 0x3_0000)).is_err());
        assert!(released.check(&launch(0x52, 0x48, 0x1_0000)).is_err());
        assert!(
            pinned.keys.0.is_empty(),
            "no key configuration pinned: every key is refused"
        );
    }

    #[test]
    fn an_empty_list_refuses_everything_and_bad_digests_are_errors() {
        let empty = Pinned::from_toml("").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            Released::Pinned(empty.allow)
                .check(&launch(0, 0, 0x3_0000))
                .is_err()
        );
        assert!(Pinned::from_toml("[[launches]]\nmeasurement = \"abcd\"").is_err());
        assert!(Pinned::from_toml("anything = []").is_err());
    }

    fn policies() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
    }

    /// The production attestation policy and a ledger no one listens on.
    fn production() -> Config {
        let mut config = Config {
            attestation: crate::config::AttestationSettings {
                policy_file: policies().join("attestation.toml"),
                ..crate::config::AttestationSettings::default()
            },
            ..Config::default()
        };
        config.trust.ledger_url = "https://127.0.0.1:9".into();
        // The Ed25519 base point: a valid key no ledger signs with.
        config.trust.ledger_log_key = format!("58{}", "66".repeat(31));
        config
    }

    /// A witness no ledger has: a `cosignature/v1` vkey of the Ed25519 base point.
    fn witness_pin() -> WitnessPin {
        WitnessPin {
            name: "witness.example".into(),
            vkey: "witness.example+36e41530+BFhmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZm".into(),
        }
    }

    #[tokio::test]
    async fn the_ledger_authority_needs_a_pinned_log_key() {
        let mut config = production();
        config.trust.ledger_log_key = String::new();
        config.trust.reviewer_policy_file = Some(policies().join("ledger-reviewers.toml"));
        config.trust.witnesses = vec![witness_pin()];
        let refused = Trust::load(&config).await;
        assert!(refused.is_err_and(|e| format!("{e:#}").contains("ledger_log_key")));
    }

    #[tokio::test]
    async fn the_client_refuses_to_run_without_a_pinned_reviewer_policy() {
        let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut config = production();
        config.state_dir = state.path().to_owned();
        let error = |config: Config| async move {
            Trust::load(&config)
                .await
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        let refused = error(config.clone()).await;
        assert!(
            refused.contains("no reviewer policy is pinned") && refused.contains("demo = true"),
            "{refused}"
        );
        // The pinned allow-list and the simulation policy are demos too.
        let pinned = Config {
            trust: TrustSettings {
                authority: Authority::Pinned,
                reviewer_policy_file: Some(policies().join("ledger-reviewers.toml")),
                ..config.trust.clone()
            },
            ..config.clone()
        };
        assert!(
            error(pinned)
                .await
                .contains("allow-list instead of the reviewed ledger")
        );
        let reviewed = TrustSettings {
            reviewer_policy_file: Some(policies().join("ledger-reviewers.toml")),
            ..config.trust.clone()
        };
        let unwitnessed = Config {
            trust: reviewed.clone(),
            ..config.clone()
        };
        assert!(
            error(unwitnessed)
                .await
                .contains("no ledger witnesses are pinned")
        );
        let witnessed = TrustSettings {
            witnesses: vec![witness_pin()],
            ..reviewed
        };
        let mut simulated = config.clone();
        simulated.trust = witnessed.clone();
        simulated.attestation.policy_file = policies().join("attestation-simulated.toml");
        assert!(error(simulated).await.contains("SIMULATED evidence"));
        // Pinned, or told it is a demo: past the gate, on to the (absent) ledger.
        for passing in [
            Config {
                demo: true,
                ..config.clone()
            },
            Config {
                trust: witnessed,
                ..config.clone()
            },
        ] {
            let message = error(passing).await;
            assert!(
                message.contains("no verified view of the ledger"),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn trust_files_are_never_read_relative_to_the_working_directory() {
        let mut config = production();
        config.attestation.policy_file = "policies/attestation.toml".into();
        let refused = Trust::load(&config).await.err().map(|e| format!("{e:#}"));
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("never read from the working directory")),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn the_simulated_root_is_cached_in_the_state_directory_and_a_damaged_cache_is_replaced() {
        let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let pinned = state.path().join("pinned.toml");
        std::fs::write(&pinned, "").unwrap_or_else(|e| panic!("{e}"));
        let mut config = production();
        config.demo = true;
        config.state_dir = state.path().join("state");
        config.attestation.policy_file = policies().join("attestation-simulated.toml");
        config.trust.authority = Authority::Pinned;
        config.trust.pinned_file = pinned;
        let cache = || {
            std::fs::read_dir(&config.state_dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with("simulated-root-"))
                })
                .collect::<Vec<_>>()
        };
        Trust::load(&config)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let [file] = cache()
            .try_into()
            .unwrap_or_else(|files| panic!("{files:?}"));
        let written = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
        let seed = simulated_seed(&config.attestation.simulated_platform_seed)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            SimulatedRoot::cached(seed, &config.state_dir)
                .map(|(_, source)| source)
                .ok(),
            Some(cloister_attestation::RootSource::Cache),
            "the client's cache is the library's"
        );
        std::fs::write(&file, b"not a root").unwrap_or_else(|e| panic!("{e}"));
        Trust::load(&config)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let replaced = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(replaced.len(), written.len(), "derived again and stored");
        assert_eq!(cache(), [file]);
    }

    #[test]
    fn the_committed_policies_parse_and_only_the_simulation_one_allows_simulation() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let read = |name: &str| {
            let path = root.join(name);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let production =
            Policy::from_toml(&read("attestation.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!production.allow_simulated);
        assert_eq!(
            production.allowed_vmpls,
            std::collections::BTreeSet::from([0])
        );
        let simulated = Policy::from_toml(&read("attestation-simulated.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(simulated.allow_simulated);
    }
}
