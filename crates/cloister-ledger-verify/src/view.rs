//! A verified view of the transparency ledger (DESIGN.md, phases 2 and 4),
//! kept by every party that must judge another by its release: the client,
//! and the two ends of the remote inference hop (a feature host judging its
//! inference host, an inference host judging its callers).
//!
//! [`LedgerTrust`] answers three questions: is this OHTTP key configuration
//! or Privacy Pass issuer key logged and current
//! ([`LedgerTrust::ohttp_key_status`], [`LedgerTrust::issuer_key_status`]:
//! the client's key-consistency checks are built on them), and is this CVM
//! running a current release as released ([`MeasurementAuthority`]: one
//! release that is neither superseded past its overlap nor revoked names its
//! measurement, its HOST_DATA (policies, model and settings), its SNP guest
//! policy and its platform info, all four together)? It answers them only
//! from entries it has verified itself:
//!
//! * the log key is pinned (32-byte Ed25519): a tree head not signed by it is refused;
//! * every new tree head must be an append-only extension of the one accepted
//!   last (RFC 9162 consistency proof), which is remembered in a state file
//!   (mode 0600, replaced whole: [`crate::private_file`]) across runs: a
//!   ledger showing this party a different history than it
//!   showed before (split view) is caught;
//! * with witnesses pinned ([`WitnessedCheckpoints`]), a tree head is
//!   accepted only as the tree of a checkpoint signed by the log and
//!   cosigned by k of the n pinned witnesses within a maximum age (default
//!   24 h): a log cannot show this client a history the witnesses did not
//!   see, nor hold it on an old one. Without witnesses, the first tree head
//!   is trusted on first use;
//! * every entry added since the last sync is downloaded from the ledger's
//!   C2SP entry bundles and checked against its leaf hash in the new tree's
//!   tiles, which must hash to the new head's root (and from which the
//!   consistency proof is computed); when the client pins the reviewer
//!   policy, its reviewer signatures are checked too (an entry that does not
//!   satisfy the pinned policy is not trusted, whatever the ledger says).
//!
//! The verified digests are persisted with the head, so the next
//! [`LedgerTrust::sync`] downloads only what is new.
//!
//! **Privacy.** The view downloads the whole log rather than asking about
//! the digests it meets, so the ledger only learns that a party synced,
//! never which host, key or release it is about to use.
//!
//! **Scale.** Entries come in bundles of 256 with their tiles,
//! incrementally from the last sync: a first sync of `n` entries costs about
//! `n / 128` requests, an incremental one a few (see the `sync` benchmark
//! of `cloister-ledger-server`). Every request is for a static, cacheable
//! path, so a CDN or mirror can serve them.
//!
//! Every failure is an error and leaves the previous verified state in place:
//! nothing is trusted that was not verified, and a corrupt state file is
//! reported, never silently replaced (replacing it would forget the head that
//! split-view detection relies on).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloister_attestation::{AuthorityRejection, LaunchFacts, MeasurementAuthority};
use cloister_tls::{Outbound, TlsError, check_url};
use cloister_wire::unix_now;
use serde::{Deserialize, Serialize};

use crate::client::{LogVerifier, VerifyError};
use crate::current::{KeyBook, KeyStatus, LoggedKey, ReleaseBook, ReleaseStatus, RevokedRelease};
use crate::entry::{PublicKeyBytes, Release, SignedEntry, Subject};
use crate::remote::{LedgerClient, RemoteError};
use crate::review::{PolicyError, ReviewerPolicy};
use crate::tree_head::SignedTreeHead;

mod checkpoint;
mod peers;
mod tiles;

pub use checkpoint::{DEFAULT_MAX_AGE, WitnessedCheckpoints};
pub use peers::{
    LedgerSettings, LedgerSettingsError, PeerReleases, WitnessSetting, peer_policy_digest,
};

/// Version of the state file layout. A state of an older layout keeps its
/// tree head (split-view detection) and has its entries verified again.
const STATE_VERSION: u32 = 3;

/// Where the ledger is and what the client pins.
#[derive(Debug, Clone)]
pub struct LedgerTrustConfig {
    /// The ledger's base URL (default `https://127.0.0.1:7400`).
    pub ledger_url: String,
    /// The log's Ed25519 public key, pinned out of band.
    pub log_key: PublicKeyBytes,
    /// The reviewer policy, if the client ships it: entries are then trusted
    /// only with signatures satisfying it, not merely because the ledger logged them.
    pub reviewer_policy: Option<ReviewerPolicy>,
    /// Where the accepted tree head and the verified digests are kept.
    pub state_path: PathBuf,
    /// Time allowed for each HTTP exchange.
    pub timeout: Duration,
    /// The witnesses whose cosignatures a checkpoint needs (`None`: the
    /// first tree head is trusted on first use).
    pub witnesses: Option<WitnessedCheckpoints>,
    /// Whom the ledger's certificate must chain to; plain `http://` is
    /// refused unless this allows it.
    pub tls: Outbound,
}

impl LedgerTrustConfig {
    /// A configuration for the default local ledger with these pins.
    pub fn new(log_key: PublicKeyBytes, state_path: PathBuf) -> Self {
        Self {
            ledger_url: "https://127.0.0.1:7400".into(),
            log_key,
            reviewer_policy: None,
            state_path,
            timeout: Duration::from_secs(30),
            witnesses: None,
            tls: Outbound::default(),
        }
    }
}

/// Why the ledger view could not be brought up to date or loaded.
#[derive(Debug, thiserror::Error)]
pub enum LedgerTrustError {
    /// The ledger could not be reached, the exchange broke off, it answered
    /// with an error status or with undecodable JSON.
    #[error("ledger {0}")]
    Remote(RemoteError),
    /// The ledger URL is plain HTTP and [`LedgerTrustConfig::tls`] does
    /// not allow it.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A tree head or proof did not verify: forged head, split view, entry not included.
    #[error("ledger verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// The checkpoint is not the log's, or lacks enough fresh cosignatures
    /// of the pinned witnesses.
    #[error("ledger checkpoint refused: {0}")]
    Checkpoint(crate::cosignature::WitnessPolicyError),
    /// The ledger's tree head is not the tree of its witnessed checkpoint.
    #[error(
        "ledger tree head of size {head_size} is not the witnessed checkpoint of size {checkpoint_size}"
    )]
    Unwitnessed {
        /// The tree head's size.
        head_size: u64,
        /// The witnessed checkpoint's size.
        checkpoint_size: u64,
    },
    /// The ledger's tiles do not hash to the tree head being accepted.
    #[error("ledger tiles refused: {0}")]
    Tiles(crate::tiles::TileError),
    /// The ledger served an entry that is not the one asked for, or a malformed one.
    #[error("ledger entry {index}: {reason}")]
    BadEntry {
        /// The index asked for.
        index: u64,
        /// What was wrong.
        reason: String,
    },
    /// The pinned reviewer policy is unusable (for example a threshold of 0,
    /// which would trust unsigned entries).
    #[error("pinned reviewer policy: {0}")]
    BadReviewerPolicy(#[from] PolicyError),
    /// The state file could not be read or written.
    #[error("ledger state {path}: {source}")]
    StateIo {
        /// The state file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The state file exists but is not valid. It is left untouched: delete it
    /// only knowing that split-view detection then restarts from scratch.
    #[error("ledger state {path} is corrupt ({reason}); refusing to continue without it")]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl From<RemoteError> for LedgerTrustError {
    /// Verification failures keep their own variant, wherever they were
    /// found, so a split view is matched in one place.
    fn from(error: RemoteError) -> Self {
        match error {
            RemoteError::Verify(error) => Self::Verify(error),
            other => Self::Remote(other),
        }
    }
}

/// What one [`LedgerTrust::sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// Size of the tree now accepted.
    pub tree_size: u64,
    /// Entries verified by this sync.
    pub new_entries: u64,
    /// Of those, entries not trusted because their signatures do not satisfy
    /// the pinned reviewer policy.
    pub untrusted_entries: u64,
}

/// The verified view, exactly as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustState {
    version: u32,
    /// The log this state belongs to.
    log_key: PublicKeyBytes,
    /// The reviewer policy the digests below were admitted under (`None`: any the ledger admitted).
    reviewer_policy: Option<ReviewerPolicy>,
    /// The newest tree head accepted.
    tree_head: Option<SignedTreeHead>,
    /// How many entries, from index 0, have been verified.
    verified_entries: u64,
    /// When the accepted head was last known current: when the threshold of
    /// witnesses had cosigned its checkpoint, or without witnesses, the sync's own time.
    #[serde(default)]
    seen_at: Option<u64>,
    /// Logged releases and revocations.
    releases: ReleaseBook,
    /// Logged OHTTP key configurations and their windows.
    ohttp_keys: KeyBook,
    /// Logged Privacy Pass issuer keys and their windows.
    issuer_keys: KeyBook,
}

impl TrustState {
    fn empty(config: &LedgerTrustConfig, tree_head: Option<SignedTreeHead>) -> Self {
        Self {
            version: STATE_VERSION,
            log_key: config.log_key,
            reviewer_policy: config.reviewer_policy.clone(),
            tree_head,
            verified_entries: 0,
            seen_at: None,
            releases: ReleaseBook::default(),
            ohttp_keys: KeyBook::default(),
            issuer_keys: KeyBook::default(),
        }
    }

    /// Reads the state at `path`; a missing file is a first run.
    fn load(config: &LedgerTrustConfig) -> Result<Self, LedgerTrustError> {
        let path = &config.state_path;
        let corrupt = |reason: String| LedgerTrustError::CorruptState {
            path: path.clone(),
            reason,
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::empty(config, None));
            }
            Err(source) => {
                return Err(LedgerTrustError::StateIo {
                    path: path.clone(),
                    source,
                });
            }
        };
        let older: OlderState =
            serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
        if older.version < STATE_VERSION {
            if older.log_key != config.log_key {
                return Err(corrupt(format!(
                    "it belongs to the log with key {}, not the pinned one",
                    older.log_key
                )));
            }
            tracing::info!(
                version = older.version,
                "ledger state of an older layout; re-verifying the ledger from its first entry"
            );
            return Ok(Self::empty(config, older.tree_head));
        }
        let state: Self =
            serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
        if state.version != STATE_VERSION {
            return Err(corrupt(format!("unsupported version {}", state.version)));
        }
        if state.log_key != config.log_key {
            return Err(corrupt(format!(
                "it belongs to the log with key {}, not the pinned one",
                state.log_key
            )));
        }
        let head_size = state.tree_head.map_or(0, |head| head.head.tree_size);
        if state.verified_entries > head_size {
            return Err(corrupt(format!(
                "{} entries verified under a tree of {head_size}",
                state.verified_entries
            )));
        }
        if state.reviewer_policy != config.reviewer_policy {
            // The digests were admitted under another policy: keep the head
            // (split-view detection) but verify every entry again.
            tracing::info!("reviewer policy changed; re-verifying the ledger from its first entry");
            return Ok(Self::empty(config, state.tree_head));
        }
        Ok(state)
    }

    /// Replaces the state file whole (see [`crate::private_file::replace`]).
    fn save(&self, path: &Path) -> Result<(), LedgerTrustError> {
        let json = serde_json::to_vec_pretty(self).map_err(|error| LedgerTrustError::StateIo {
            path: path.to_owned(),
            source: error.into(),
        })?;
        crate::private_file::replace(path, &json)
            .map_err(|(path, source)| LedgerTrustError::StateIo { path, source })
    }

    /// Records verified entry `index`.
    fn record(&mut self, subject: &Subject, index: u64) {
        match subject {
            Subject::Release(release) => {
                if !self.releases.record_release(release) {
                    tracing::warn!(
                        index,
                        series = release.series,
                        sequence = release.sequence,
                        "a second, different release under a logged sequence number is ignored"
                    );
                }
            }
            Subject::Revocation {
                series,
                sequence,
                reason,
            } => self.releases.record_revocation(RevokedRelease {
                series: series.clone(),
                sequence: *sequence,
                reason: reason.clone(),
            }),
            Subject::OhttpKeyConfig { digest, window, .. } => self.ohttp_keys.record(LoggedKey {
                digest: *digest,
                window: *window,
                index,
            }),
            Subject::IssuerKey {
                token_key_id,
                window,
            } => self.issuer_keys.record(LoggedKey {
                digest: *token_key_id,
                window: *window,
                index,
            }),
            // Plugins and policy files are covered by a release's HOST_DATA.
            Subject::PluginComponent { .. } | Subject::PolicyFile { .. } => {}
        }
    }
}

/// The fields every layout of the state file has, read to carry a tree head
/// over from an older layout.
#[derive(Debug, Deserialize)]
struct OlderState {
    version: u32,
    log_key: PublicKeyBytes,
    tree_head: Option<SignedTreeHead>,
}

/// A verified view of the ledger; see the [module docs](self).
#[derive(Debug)]
pub struct LedgerTrust {
    config: LedgerTrustConfig,
    ledger: LedgerClient,
    state: RwLock<TrustState>,
    /// One sync at a time, so each starts from the head the previous one accepted.
    syncing: tokio::sync::Mutex<()>,
}

impl LedgerTrust {
    /// Loads the state file (a missing file is a first run: the first tree
    /// head is trusted on first use, the log key never is).
    ///
    /// # Errors
    /// [`LedgerTrustError::CorruptState`] if the state file is invalid or
    /// belongs to another log, [`LedgerTrustError::StateIo`] if it cannot be
    /// read, [`LedgerTrustError::BadReviewerPolicy`], or
    /// [`LedgerTrustError::Remote`] if no HTTP client can be built.
    pub fn open(config: LedgerTrustConfig) -> Result<Self, LedgerTrustError> {
        if let Some(policy) = &config.reviewer_policy {
            policy.validate()?;
        }
        if let Some(witnesses) = &config.witnesses {
            witnesses.validate(&config.log_key)?;
        }
        let state = TrustState::load(&config)?;
        if let Some(head) = state.tree_head {
            // A remembered head that the pinned key did not sign is corruption.
            LogVerifier::new(config.log_key.as_bytes(), Some(head)).map_err(|error| {
                LedgerTrustError::CorruptState {
                    path: config.state_path.clone(),
                    reason: error.to_string(),
                }
            })?;
        }
        check_url("ledger URL", &config.ledger_url, config.tls.plain_http)?;
        let ledger =
            LedgerClient::with_trust(&config.ledger_url, config.timeout, &config.tls.trust)?;
        Ok(Self {
            config,
            ledger,
            state: RwLock::new(state),
            syncing: tokio::sync::Mutex::new(()),
        })
    }

    /// Brings the view up to the ledger's latest tree head: checks the head's
    /// signature (and, with witnesses pinned, that it is the tree of a
    /// checkpoint k of them cosigned recently) and its consistency with the
    /// remembered one, verifies every
    /// new entry's inclusion (and reviewer signatures, if pinned), then
    /// persists the new state. On any error nothing changes.
    ///
    /// # Errors
    /// See [`LedgerTrustError`]; [`VerifyError::SplitView`] inside
    /// [`LedgerTrustError::Verify`] means the ledger contradicted a head it signed before.
    pub async fn sync(&self) -> Result<SyncReport, LedgerTrustError> {
        let _one_at_a_time = self.syncing.lock().await;
        let mut next = self.snapshot();
        let mut verifier = LogVerifier::new(self.config.log_key.as_bytes(), next.tree_head)?;
        let (offered, seen_at) = match &self.config.witnesses {
            Some(witnesses) => {
                witnesses
                    .witnessed_head(&self.ledger, &self.config.log_key)
                    .await?
            }
            None => (self.ledger.tree_head().await?, unix_now()),
        };
        let (head, tree) =
            tiles::move_to(&self.ledger, &mut verifier, offered, next.verified_entries).await?;
        let tree_size = head.head.tree_size;
        let mut report = SyncReport {
            tree_size,
            new_entries: 0,
            untrusted_entries: 0,
        };
        let first = next.verified_entries;
        tiles::entries(&self.ledger, &tree, first, |index, entry| {
            let trusted = self.admit(index, entry, &mut next)?;
            report.new_entries += 1;
            report.untrusted_entries += u64::from(!trusted);
            Ok(())
        })
        .await?;
        next.verified_entries = next.verified_entries.max(tree_size);
        next.tree_head = Some(head);
        next.seen_at = Some(seen_at);
        next.save(&self.config.state_path)?;
        *self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        if report.untrusted_entries > 0 {
            tracing::warn!(
                untrusted = report.untrusted_entries,
                "ledger entries whose reviewer signatures do not satisfy the pinned policy were not trusted"
            );
        }
        tracing::info!(tree_size, new_entries = report.new_entries, "ledger synced");
        Ok(report)
    }

    /// Records entry `index`, proven in the accepted tree, in `state` if it
    /// is well-formed and trusted (returned).
    fn admit(
        &self,
        index: u64,
        entry: &SignedEntry,
        state: &mut TrustState,
    ) -> Result<bool, LedgerTrustError> {
        entry
            .validate()
            .map_err(|error| LedgerTrustError::BadEntry {
                index,
                reason: error.to_string(),
            })?;
        if let Some(policy) = &self.config.reviewer_policy
            && let Err(refusal) = policy.admit(entry)
        {
            tracing::warn!(index, %refusal, "logged entry does not satisfy the pinned reviewer policy");
            return Ok(false);
        }
        state.record(&entry.body.subject, index);
        Ok(true)
    }

    /// Refuses a view older than `max_age`: it may miss a revocation, a
    /// newer release or a key's replacement.
    fn fresh(state: &TrustState, max_age: Duration, now: u64) -> Result<(), String> {
        let max_age = max_age.as_secs();
        let age = now.saturating_sub(state.seen_at.unwrap_or(0));
        if age > max_age {
            return Err(format!(
                "the ledger view was last confirmed {age} s ago, longer than the {max_age} s \
                 allowed; it must be synced"
            ));
        }
        Ok(())
    }

    /// The oldest view anything is judged on: the witnesses' limit, or a day.
    fn max_view_age(&self) -> Duration {
        self.config
            .witnesses
            .as_ref()
            .map_or(DEFAULT_MAX_AGE, |witnesses| witnesses.policy.max_age)
    }

    fn snapshot(&self) -> TrustState {
        self.read_state().clone()
    }

    /// The tree head accepted last, if any.
    pub fn tree_head(&self) -> Option<SignedTreeHead> {
        self.read_state().tree_head
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, TrustState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses a view older than the witnesses' age limit (a day without
    /// witnesses): it may miss a revocation, a newer release or a key's
    /// replacement.
    ///
    /// # Errors
    /// Why the view is too old, to be synced.
    pub fn check_fresh(&self) -> Result<(), String> {
        Self::fresh(&self.read_state(), self.max_view_age(), unix_now())
    }

    /// Where the OHTTP key configuration of SHA-256 `digest` stands in the
    /// last synced view, now.
    #[must_use]
    pub fn ohttp_key_status(&self, digest: &[u8; 32]) -> KeyStatus {
        self.read_state().ohttp_keys.status(digest, unix_now())
    }

    /// Where the Privacy Pass issuer key `token_key_id` stands in the last
    /// synced view, now.
    #[must_use]
    pub fn issuer_key_status(&self, token_key_id: &[u8; 32]) -> KeyStatus {
        self.read_state()
            .issuer_keys
            .status(token_key_id, unix_now())
    }

    /// Syncs every `every`, for as long as the returned task runs, so that
    /// the view a long-running party judges its peers on stays fresh. A
    /// failed sync is logged and leaves the last verified view in place
    /// (which [`MeasurementAuthority::check`] refuses once it is too old).
    pub fn keep_synced(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(error) = self.sync().await {
                    tracing::warn!(%error, "ledger sync failed; keeping the last verified view");
                }
            }
        })
    }
}

/// `series #sequence`, as errors name a release.
fn release_name(release: &Release) -> String {
    format!("{} #{}", release.series, release.sequence)
}

fn launch_of(release: &Release) -> LaunchFacts {
    LaunchFacts {
        measurement: release.measurement,
        host_data: release.host_data,
        guest_policy: release.snp_policy,
        platform_info: release.platform_info,
    }
}

impl LedgerTrust {
    /// The current release that names all of `launch` in the last synced
    /// view (`"<series> #<sequence>"`), for the label shown with an answer.
    #[must_use]
    pub fn release_of(&self, launch: &LaunchFacts) -> Option<String> {
        let state = self.read_state();
        let now = unix_now();
        let release = state
            .releases
            .current(now)
            .find(|release| launch_of(release) == *launch);
        release.map(release_name)
    }

    /// Every release of the last synced view that serves plugin `name` with
    /// the component of SHA-256 `digest` (`"<series> #<sequence>"`), with
    /// where it stands now: what a reviewer asks of a plugin before signing
    /// it off. Empty when no trusted release lists that plugin with that
    /// digest.
    #[must_use]
    pub fn plugin_releases(&self, name: &str, digest: &[u8; 32]) -> Vec<(String, ReleaseStatus)> {
        let state = self.read_state();
        let now = unix_now();
        state
            .releases
            .releases()
            .iter()
            .filter(|release| {
                release
                    .plugins
                    .iter()
                    .any(|plugin| plugin.name == name && plugin.digest.0 == *digest)
            })
            .map(|release| (release_name(release), state.releases.status(release, now)))
            .collect()
    }
}

impl MeasurementAuthority for LedgerTrust {
    /// Accepts only a launch whose four values one current release names
    /// together, in the view of the last sync: a released image under
    /// another release's policies, or under a guest policy or platform
    /// configuration it was not released with, is refused, and so is a
    /// release that was revoked or superseded past its overlap window.
    fn check(&self, launch: &LaunchFacts) -> Result<(), AuthorityRejection> {
        let state = self.read_state();
        if state.tree_head.is_none() {
            return Err(AuthorityRejection::Unavailable(
                "the ledger has not been synced".into(),
            ));
        }
        let now = unix_now();
        Self::fresh(&state, self.max_view_age(), now).map_err(AuthorityRejection::Unavailable)?;
        let current: Vec<LaunchFacts> = state.releases.current(now).map(launch_of).collect();
        let Err(rejection) = launch.check_released(&current) else {
            return Ok(());
        };
        // Say why when the launch is exactly that of a release no longer current.
        let released = state
            .releases
            .releases()
            .iter()
            .find(|release| launch_of(release) == *launch);
        Err(
            match released.map(|release| (release, state.releases.status(release, now))) {
                Some((release, ReleaseStatus::Revoked { reason })) => AuthorityRejection::Revoked {
                    release: release_name(release),
                    reason,
                },
                Some((release, ReleaseStatus::Superseded { by, since })) => {
                    AuthorityRejection::NotCurrent {
                        release: release_name(release),
                        why: format!("superseded by #{by} since {since}"),
                    }
                }
                Some((release, ReleaseStatus::NotYetPublished { published_at })) => {
                    AuthorityRejection::NotCurrent {
                        release: release_name(release),
                        why: format!("published at {published_at}, not yet"),
                    }
                }
                Some((_, ReleaseStatus::Current)) | None => rejection,
            },
        )
    }
}
