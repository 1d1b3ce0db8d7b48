//! How a party judges a peer CVM by the ledger: the `[ledger]` section both
//! ends of the remote inference hop read, the authority that accepts a
//! peer's launch only if the ledger (and an allow-list, when one is given
//! too) names its release, and the digest of that judgement which the
//! party's HOST_DATA binds, so that a client can see which peers it accepts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cloister_attestation::{AllowList, AuthorityRejection, LaunchFacts, MeasurementAuthority};
use cloister_tls::{Outbound, PlainHttp, TlsSettings};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{LedgerTrust, LedgerTrustConfig, LedgerTrustError, WitnessedCheckpoints};
use crate::cosignature::CosignerKey;
use crate::entry::PublicKeyBytes;
use crate::note::NoteError;
use crate::review::ReviewerPolicy;

/// A party's `[ledger]` section: where the ledger is and what is pinned.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LedgerSettings {
    /// The ledger's base URL: `https://`, or `http://` on loopback only.
    pub url: String,
    /// The log's Ed25519 public key (hex), pinned out of band.
    pub log_key: PublicKeyBytes,
    /// The log's origin: its checkpoints' first line and its key's name.
    #[serde(default = "default_origin")]
    pub origin: String,
    /// A reviewer policy file (`policies/ledger-reviewers.toml` format):
    /// entries are then trusted only with signatures satisfying it.
    #[serde(default)]
    pub reviewers: Option<PathBuf>,
    /// The witnesses whose cosignatures each checkpoint needs
    /// (`[[ledger.witness]]`); none: the first tree head is trusted on first use.
    #[serde(default, rename = "witness")]
    pub witnesses: Vec<WitnessSetting>,
    /// How many of them must cosign (default: all).
    #[serde(default)]
    pub witness_threshold: Option<usize>,
    /// The oldest view (judged by the cosignatures, or by the last sync)
    /// a peer is judged on, in seconds.
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// Where the verified view is kept (`ledger-view.json`, mode 0600).
    pub state_dir: PathBuf,
    /// Time allowed for each exchange with the ledger, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// How often the view is synced while the party runs, in seconds.
    #[serde(default = "default_sync_every")]
    pub sync_every_secs: u64,
}

/// One pinned witness.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessSetting {
    /// Its name, as its vkey names it.
    pub name: String,
    /// Its `cosignature/v1` vkey (`cloister-witness vkey` prints it).
    pub vkey: String,
}

fn default_origin() -> String {
    "cloister.localhost/ledger".into()
}

fn default_max_age() -> u64 {
    super::DEFAULT_MAX_AGE.as_secs()
}

fn default_timeout() -> u64 {
    30
}

fn default_sync_every() -> u64 {
    300
}

/// Why a `[ledger]` section could not be turned into a view.
#[derive(Debug, thiserror::Error)]
pub enum LedgerSettingsError {
    /// The reviewer policy file could not be read.
    #[error("[ledger] reviewers {path}: {source}")]
    ReviewersIo {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The reviewer policy file is not a reviewer policy.
    #[error("[ledger] reviewers {path}: {source}")]
    Reviewers {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },
    /// A witness's vkey does not parse or is named otherwise.
    #[error("[[ledger.witness]] {name:?}: {source}")]
    Witness {
        /// The configured name.
        name: String,
        /// The cause.
        #[source]
        source: NoteError,
    },
    /// The `[tls]` CA bundle could not be read.
    #[error(transparent)]
    Tls(#[from] cloister_tls::TlsError),
}

impl LedgerSettings {
    /// The view's configuration: relative paths resolved against `base`
    /// (the configuration file's directory), HTTPS trusting `tls`'s CA
    /// bundle, plain HTTP to a loopback ledger only.
    ///
    /// # Errors
    /// See [`LedgerSettingsError`].
    pub fn trust_config(
        &self,
        base: &Path,
        tls: &TlsSettings,
    ) -> Result<LedgerTrustConfig, LedgerSettingsError> {
        let reviewer_policy = match &self.reviewers {
            Some(path) => {
                let path = base.join(path);
                let text = std::fs::read_to_string(&path).map_err(|source| {
                    LedgerSettingsError::ReviewersIo {
                        path: path.clone(),
                        source,
                    }
                })?;
                Some(
                    toml::from_str::<ReviewerPolicy>(&text)
                        .map_err(|source| LedgerSettingsError::Reviewers { path, source })?,
                )
            }
            None => None,
        };
        let witnesses = if self.witnesses.is_empty() {
            None
        } else {
            let keys = self
                .witnesses
                .iter()
                .map(|pin| {
                    CosignerKey::parse_named(&pin.vkey, &pin.name).map_err(|source| {
                        LedgerSettingsError::Witness {
                            name: pin.name.clone(),
                            source,
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let threshold = self.witness_threshold.unwrap_or(keys.len());
            let mut witnessed = WitnessedCheckpoints::new(&self.origin, keys, threshold);
            witnessed.policy.max_age = Duration::from_secs(self.max_age_secs);
            Some(witnessed)
        };
        Ok(LedgerTrustConfig {
            ledger_url: self.url.clone(),
            log_key: self.log_key,
            reviewer_policy,
            state_path: base.join(&self.state_dir).join("ledger-view.json"),
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
            witnesses,
            tls: Outbound {
                trust: tls.trust()?,
                plain_http: PlainHttp::Loopback,
            },
        })
    }

    /// [`LedgerSettings::trust_config`] of a party's optional `[ledger]`
    /// section, relative paths taken from the working directory.
    ///
    /// # Errors
    /// See [`LedgerSettingsError`].
    pub fn resolve(
        section: Option<&Self>,
        tls: &TlsSettings,
    ) -> Result<Option<LedgerTrustConfig>, LedgerSettingsError> {
        section
            .map(|settings| settings.trust_config(Path::new(""), tls))
            .transpose()
    }

    /// The view of this section, synced once (a party must not start
    /// judging peers on an empty view), with a task keeping it synced
    /// every [`LedgerSettings::sync_every_secs`]. The state directory is
    /// created (mode 0700) if missing. Call within a Tokio runtime.
    ///
    /// # Errors
    /// The view cannot be opened, or its first sync failed and no view
    /// verified earlier is on disk.
    pub async fn open_synced(
        &self,
        config: LedgerTrustConfig,
    ) -> Result<Arc<LedgerTrust>, LedgerTrustError> {
        if let Some(dir) = config
            .state_path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
        {
            private_dir(dir).map_err(|source| LedgerTrustError::StateIo {
                path: dir.to_owned(),
                source,
            })?;
        }
        let view = Arc::new(LedgerTrust::open(config)?);
        if let Err(error) = view.sync().await {
            if view.tree_head().is_none() {
                return Err(error);
            }
            tracing::warn!(%error, "ledger sync failed: judging peers on the view verified last");
        }
        Arc::clone(&view).keep_synced(Duration::from_secs(self.sync_every_secs.max(1)));
        Ok(view)
    }
}

/// Creates `dir` and its missing parents, only this user's (0700).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

impl LedgerTrustConfig {
    /// SHA-256 of what this view trusts, which decides the releases it
    /// finds: the log key, its origin and witnesses with their threshold
    /// and age limit, and the pinned reviewer policy. The ledger's address,
    /// the state file and the timeout change where the view comes from,
    /// never what it accepts, and are left out.
    #[must_use]
    pub fn trust_root_digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(b"cloister-ledger-trust-root-v1\n");
        hash.update(format!("log-key {}\n", self.log_key).as_bytes());
        if let Some(witnessed) = &self.witnesses {
            let policy = &witnessed.policy;
            hash.update(
                format!(
                    "origin {}\nthreshold {}\nmax-age {}\n",
                    witnessed.origin,
                    policy.threshold,
                    policy.max_age.as_secs()
                )
                .as_bytes(),
            );
            for witness in &policy.witnesses {
                hash.update(format!("witness {witness}\n").as_bytes());
            }
        }
        if let Some(policy) = &self.reviewer_policy {
            // The policy's own serialisation: stable for one policy.
            hash.update(b"reviewers ");
            hash.update(serde_json::to_vec(policy).unwrap_or_default());
        }
        hash.finalize().into()
    }
}

/// The digest of how a party judges its peers, for its HOST_DATA: its
/// attestation policy file as read (platform rules and any allow-list) and,
/// when it has a ledger, the ledger's [trust root](LedgerTrustConfig::trust_root_digest).
#[must_use]
pub fn peer_policy_digest(policy_file: &[u8], ledger: Option<&LedgerTrustConfig>) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"cloister-peer-policy-v1\n");
    hash.update(Sha256::digest(policy_file));
    match ledger {
        Some(ledger) => {
            hash.update([1]);
            hash.update(ledger.trust_root_digest());
        }
        None => hash.update([0]),
    }
    hash.finalize().into()
}

/// Accepts a peer's launch only if every configured authority does: the
/// ledger view (its release is logged and current) and the allow-list
/// (when it lists any launch). With neither, every peer is refused.
#[derive(Debug, Clone)]
pub struct PeerReleases {
    ledger: Option<Arc<LedgerTrust>>,
    allow_list: Option<AllowList>,
}

impl PeerReleases {
    /// `ledger` and `allow_list` must both accept; an empty allow-list is
    /// no authority (with a ledger, the ledger alone decides).
    #[must_use]
    pub fn new(ledger: Option<Arc<LedgerTrust>>, allow_list: AllowList) -> Self {
        let allow_list = (!allow_list.launches.is_empty()).then_some(allow_list);
        Self { ledger, allow_list }
    }

    /// Whether any authority is configured (without one, every peer is refused).
    #[must_use]
    pub fn is_configured(&self) -> bool {
        self.ledger.is_some() || self.allow_list.is_some()
    }
}

impl MeasurementAuthority for PeerReleases {
    fn check(&self, launch: &LaunchFacts) -> Result<(), AuthorityRejection> {
        if !self.is_configured() {
            return Err(AuthorityRejection::Unavailable(
                "neither a ledger nor an allow-list is configured: every peer is refused".into(),
            ));
        }
        if let Some(ledger) = &self.ledger {
            ledger.check(launch)?;
        }
        if let Some(allow_list) = &self.allow_list {
            allow_list.check(launch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LedgerSettings {
        toml::from_str(
            "url = \"http://127.0.0.1:7400\"\nstate-dir = \"state\"\n\
             log-key = \"0101010101010101010101010101010101010101010101010101010101010101\"\n",
        )
        .expect("settings parse")
    }

    #[test]
    fn the_trust_root_covers_the_log_key_but_not_the_address() {
        let base = Path::new("/srv");
        let config = settings()
            .trust_config(base, &TlsSettings::default())
            .expect("config");
        assert_eq!(config.state_path, Path::new("/srv/state/ledger-view.json"));
        let moved = LedgerTrustConfig {
            ledger_url: "https://ledger.example".into(),
            ..config.clone()
        };
        assert_eq!(moved.trust_root_digest(), config.trust_root_digest());
        let other_log = LedgerTrustConfig {
            log_key: crate::HexBytes([2; 32]),
            ..config.clone()
        };
        assert_ne!(other_log.trust_root_digest(), config.trust_root_digest());
        assert_ne!(
            peer_policy_digest(b"policy", Some(&config)),
            peer_policy_digest(b"policy", None)
        );
        assert!(toml::from_str::<LedgerSettings>("url = \"x\"\nlog-keys = \"\"\n").is_err());
    }

    #[test]
    fn no_authority_refuses_every_peer() {
        let peers = PeerReleases::new(None, AllowList::default());
        assert!(!peers.is_configured());
        let launch = LaunchFacts {
            measurement: cloister_wire::Measurement([1; 48]),
            host_data: cloister_wire::HostData::of_launch(&[0; 32], None, &[0; 32]),
            guest_policy: 0,
            platform_info: 0,
        };
        assert!(matches!(
            peers.check(&launch),
            Err(AuthorityRejection::Unavailable(_))
        ));
    }
}
