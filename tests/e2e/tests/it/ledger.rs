//! `LedgerTrust` against real, in-process ledgers on loopback: what it
//! accepts, and every way a ledger or a state file can fail it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cloister_attestation::{AuthorityRejection, LaunchFacts, MeasurementAuthority};
use cloister_client::ledger::{
    LedgerTrust, LedgerTrustConfig, LedgerTrustError, SyncReport, WitnessedCheckpoints,
};
use cloister_client::tokens::{IssuanceError, IssuerKeyCheck, TokenWallet};
use cloister_client::{Client, InnerRequest};
use cloister_client::{ClientError, KeyConsistency};
use cloister_gateway::{EchoRouter, GatewayConfig, NoRedeemer, spawn_published_key_maintenance};
use cloister_ledger::Ledger;
use cloister_ledger_server::{WitnessConfig, Witnesses};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::client::VerifyError;
use cloister_ledger_verify::cosignature::{Cosigner, CosignerKey, WitnessPolicyError};
use cloister_ledger_verify::entry::{
    EntryBody, KeyWindow, Provenance, Release, ReleasedPlugin, ReviewerSignature, SignedEntry,
    Subject,
};
use cloister_ledger_verify::note::VerifierKey;
use cloister_ledger_verify::publish::{KeyPublisher, PublisherSettings};
use cloister_ledger_verify::review::{KeyKind, Publisher, Reviewer, ReviewerPolicy};
use cloister_ohttp_keys::KeyRing;
use cloister_relay::RelayConfig;
use cloister_test_support::Loopback;
use cloister_wire::{HostData, Measurement};
use ed25519_dalek::SigningKey;

const MEASUREMENT: Measurement = Measurement([0xa1; 48]);
/// The policy set, model and settings of the released launch.
const POLICY_SET: [u8; 32] = [0xb0; 32];
const MODEL: [u8; 32] = [0xb1; 32];
const HOST_CONFIG: [u8; 32] = [0xb3; 32];
/// The released guest policy: SMT not allowed (bit 16 clear; bit 17 is reserved, set).
const RELEASED_GUEST_POLICY: u64 = 0x2_0000;
const RELEASED_PLATFORM_INFO: u64 = 0x0;
/// Logged, but as a single policy file rather than as a launch's HOST_DATA.
const OTHER_POLICY_FILE: [u8; 32] = [0xc3; 32];

/// HOST_DATA of the released launch.
fn host_data() -> HostData {
    HostData::of_launch(&POLICY_SET, Some(&MODEL), &HOST_CONFIG)
}

/// Seconds since the Unix epoch: releases and key windows are read against the real clock.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// Release `sequence` of the production series: `measurement` with the
/// policy set `policy_set`, published `age` seconds ago, superseding earlier
/// releases `overlap_secs` after that.
fn launch_release(
    measurement: Measurement,
    policy_set: [u8; 32],
    sequence: u64,
    age: u64,
    overlap_secs: u64,
) -> Subject {
    Subject::Release(Release {
        series: "production".into(),
        sequence,
        published_at: now() - age,
        overlap_secs,
        measurement,
        snp_policy: RELEASED_GUEST_POLICY,
        platform_info: RELEASED_PLATFORM_INFO,
        host_data: HostData::of_launch(&policy_set, Some(&MODEL), &HOST_CONFIG),
        policy_set: HexBytes(policy_set),
        model: Some(HexBytes(MODEL)),
        host_config: HexBytes(HOST_CONFIG),
        plugins: vec![ReleasedPlugin {
            name: "summarise".into(),
            digest: HexBytes([0xd4; 32]),
        }],
        build: None,
    })
}

/// The released launch of `measurement`: release 1, published an hour ago.
fn cvm_launch(measurement: Measurement) -> Subject {
    launch_release(measurement, POLICY_SET, 1, HOUR, HOUR)
}

/// A logged OHTTP key configuration, usable from `opened` seconds ago for `lifetime` seconds.
fn ohttp_key(encoded: &[u8], opened: u64, lifetime: u64) -> Subject {
    let not_before = now() - opened;
    Subject::OhttpKeyConfig {
        key_id: encoded[0],
        digest: digest(encoded),
        window: KeyWindow {
            not_before,
            not_after: not_before + lifetime,
        },
    }
}

/// What a report of the released launch of `measurement` says, but with `host_data`.
fn reported(measurement: Measurement, host_data: HostData) -> LaunchFacts {
    LaunchFacts {
        measurement,
        host_data,
        guest_policy: RELEASED_GUEST_POLICY,
        platform_info: RELEASED_PLATFORM_INFO,
    }
}
/// An encoded OHTTP key configuration (only its digest matters here).
const KEY_CONFIG: &[u8] = &[1, 0, 0x20, 9, 9, 9];

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn policy(threshold: usize, seeds: &[u8]) -> ReviewerPolicy {
    let reviewers = seeds
        .iter()
        .map(|&seed| Reviewer {
            name: format!("r{seed}"),
            public_key: HexBytes(key(seed).verifying_key().to_bytes()),
        })
        .collect();
    ReviewerPolicy {
        threshold,
        reviewers,
        publishers: Vec::new(),
    }
}

fn digest(bytes: &[u8]) -> HexBytes<32> {
    HexBytes(cloister_ohttp_keys::key_config_digest(bytes))
}

/// An entry for `subject` signed by the reviewers with these seeds.
pub(crate) fn entry(subject: Subject, signers: &[u8]) -> SignedEntry {
    let body = EntryBody {
        subject,
        provenance: Provenance {
            source_commit: "0123abcd".into(),
            builder: "test@ci".into(),
        },
    };
    let signatures = signers
        .iter()
        .map(|&seed| ReviewerSignature::sign(&key(seed), &body))
        .collect();
    SignedEntry { body, signatures }
}

/// A release: plugin, single policy file, CVM launch, key configuration.
fn release() -> Vec<SignedEntry> {
    [
        Subject::PluginComponent {
            name: "summarise".into(),
            version: "0.1.0".into(),
            wit_world: "cloister:feature/feature".into(),
            digest: HexBytes([0xd4; 32]),
        },
        Subject::PolicyFile {
            name: "log-allowlist.toml".into(),
            digest: HexBytes(OTHER_POLICY_FILE),
        },
        cvm_launch(MEASUREMENT),
        ohttp_key(KEY_CONFIG, HOUR, DAY),
    ]
    .into_iter()
    .map(|subject| entry(subject, &[1, 2]))
    .collect()
}

/// A real ledger (reviewers 1, 2, 3; 2 of them must sign) on a loopback port.
pub(crate) struct TestLedger {
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

impl TestLedger {
    pub(crate) async fn start(log_key_seed: u8, entries: &[SignedEntry]) -> Self {
        Self::start_with(log_key_seed, policy(2, &[1, 2, 3]), entries).await
    }

    async fn start_with(log_key_seed: u8, policy: ReviewerPolicy, entries: &[SignedEntry]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&dir.path().join("ledger.redb"), key(log_key_seed), policy)
            .expect("ledger");
        if !entries.is_empty() {
            ledger.submit_batch(entries).expect("entries admitted");
        }
        let url = cloister_ledger_server::spawn_on_loopback(ledger)
            .await
            .expect("serve");
        Self { url, _dir: dir }
    }

    /// A ledger whose checkpoints the witnesses at these URLs cosign
    /// (`(url, vkey)`); the first round is done when this returns.
    async fn start_witnessed(entries: &[SignedEntry], witnesses: &[(String, CosignerKey)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(
            &dir.path().join("ledger.redb"),
            key(LOG_KEY_SEED),
            policy(2, &[1, 2, 3]),
        )
        .expect("ledger");
        ledger.submit_batch(entries).expect("entries admitted");
        let configs: Vec<WitnessConfig> = witnesses
            .iter()
            .map(|(url, vkey)| WitnessConfig {
                url: url.clone(),
                name: vkey.name().to_owned(),
                vkey: vkey.to_string(),
            })
            .collect();
        let witnesses = Witnesses::new(&configs, Duration::from_secs(5)).expect("witnesses");
        // No refresh during a test: cosignatures are as old as the last append.
        let url = cloister_ledger_server::spawn_witnessed_on_loopback(
            ledger,
            witnesses,
            Duration::from_secs(3600),
        )
        .await
        .expect("serve");
        Self { url, _dir: dir }
    }

    async fn append(&self, entry: &SignedEntry) {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/entries", self.url))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(entry).expect("json"))
            .send()
            .await
            .expect("ledger answers");
        assert!(
            response.status().is_success(),
            "append refused: {}",
            response.status()
        );
    }
}

pub(crate) const LOG_KEY_SEED: u8 = 42;

/// A ledger holding `entries`, and a client view of it synced once (its
/// state in the returned directory).
async fn synced(entries: &[SignedEntry]) -> (TestLedger, tempfile::TempDir, LedgerTrust) {
    let ledger = TestLedger::start(LOG_KEY_SEED, entries).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let trust = LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("open");
    trust.sync().await.expect("sync");
    (ledger, dir, trust)
}

pub(crate) fn config(url: &str, state_path: &Path) -> LedgerTrustConfig {
    LedgerTrustConfig {
        ledger_url: url.to_owned(),
        timeout: Duration::from_secs(10),
        tls: cloister_client::Outbound::insecure_demo(),
        ..LedgerTrustConfig::new(
            HexBytes(key(LOG_KEY_SEED).verifying_key().to_bytes()),
            state_path.to_owned(),
        )
    }
}

/// The test ledger's log key as witnesses and clients name it in checkpoints.
fn checkpoint_key() -> VerifierKey {
    VerifierKey::ed25519(
        cloister_ledger::DEFAULT_ORIGIN,
        key(LOG_KEY_SEED).verifying_key(),
    )
    .expect("vkey")
}

/// A witness of the test ledger's log (of `logs`, if given) whose clock is
/// `lag_secs` behind: its URL and vkey. Its state lives in `dir`.
async fn witness(
    dir: &Path,
    seed: u8,
    logs: Vec<VerifierKey>,
    lag_secs: u64,
) -> (String, CosignerKey) {
    let cosigner = Cosigner::ed25519(&format!("witness-{seed}.test"), key(seed)).expect("name");
    let vkey = cosigner.verifier_key().clone();
    let witness =
        cloister_witness::Witness::open(&dir.join(format!("witness-{seed}.redb")), cosigner, logs)
            .expect("witness");
    let url = if lag_secs == 0 {
        cloister_witness::spawn_on_loopback(witness)
            .await
            .expect("witness serves")
    } else {
        let witness = Arc::new(witness);
        // The same checks, with cosignatures dated as a lagging clock dates them.
        let app = axum::Router::new().route(
            "/add-checkpoint",
            axum::routing::post(move |body: axum::body::Bytes| async move {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_secs();
                match witness.add_checkpoint(&body, now - lag_secs) {
                    Ok(lines) => (
                        axum::http::StatusCode::OK,
                        lines.iter().map(ToString::to_string).collect::<String>(),
                    ),
                    Err(refusal) => (refusal.status(), refusal.to_string()),
                }
            }),
        );
        format!("http://{}", cloister_test_support::serve_app(app).await)
    };
    (url, vkey)
}

/// [`config`] requiring `threshold` of `witnesses` to cosign each checkpoint.
fn witnessed_config(
    url: &str,
    state_path: &Path,
    witnesses: &[(String, CosignerKey)],
    threshold: usize,
) -> LedgerTrustConfig {
    LedgerTrustConfig {
        witnesses: Some(WitnessedCheckpoints::new(
            cloister_ledger::DEFAULT_ORIGIN,
            witnesses.iter().map(|(_, vkey)| vkey.clone()).collect(),
            threshold,
        )),
        ..config(url, state_path)
    }
}

pub(crate) fn state_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("ledger-state.json")
}

#[tokio::test]
async fn trusts_logged_digests_and_refuses_unlogged_ones() {
    let ledger = TestLedger::start(LOG_KEY_SEED, &release()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let trust = LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("open");
    assert!(
        matches!(
            MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data())),
            Err(AuthorityRejection::Unavailable(_))
        ),
        "nothing is trusted before the first sync"
    );

    let report = trust.sync().await.expect("sync");
    assert_eq!(
        report,
        SyncReport {
            tree_size: 4,
            new_entries: 4,
            untrusted_entries: 0
        }
    );
    MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data()))
        .expect("logged measurement and policy set");
    assert_eq!(
        MeasurementAuthority::check(&trust, &reported(Measurement([0; 48]), host_data())),
        Err(AuthorityRejection::Measurement(Measurement([0; 48])))
    );
    assert_eq!(
        MeasurementAuthority::check(&trust, &reported(MEASUREMENT, HostData(OTHER_POLICY_FILE))),
        Err(AuthorityRejection::HostData(HostData(OTHER_POLICY_FILE))),
        "HOST_DATA must be logged as a launch's, not as any policy file"
    );

    KeyConsistency::check(&trust, KEY_CONFIG)
        .await
        .expect("logged key configuration");
    let unlogged = KeyConsistency::check(&trust, &[2, 0, 0x20, 9, 9, 9]).await;
    assert!(
        matches!(unlogged, Err(ClientError::KeyConsistency(_))),
        "{unlogged:?}"
    );
}

#[tokio::test]
async fn a_key_rotated_after_the_last_sync_is_found_by_a_fresh_sync() {
    let (ledger, _dir, trust) = synced(&release()).await;
    let rotated: &[u8] = &[2, 0, 0x20, 7, 7, 7];
    ledger
        .append(&entry(ohttp_key(rotated, 0, DAY), &[2, 3]))
        .await;
    KeyConsistency::check(&trust, rotated)
        .await
        .expect("found after syncing");
    assert_eq!(trust.tree_head().map(|head| head.head.tree_size), Some(5));
}

#[tokio::test]
async fn state_survives_reopening_and_the_next_sync_is_incremental() {
    let ledger = TestLedger::start(LOG_KEY_SEED, &release()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("open");
    first.sync().await.expect("sync");
    let head = first.tree_head();
    drop(first);

    // Release 2 overlaps release 1 for a day: both stay current.
    let new_measurement = Measurement([0xee; 48]);
    ledger
        .append(&entry(
            launch_release(new_measurement, POLICY_SET, 2, 0, DAY),
            &[1, 3],
        ))
        .await;
    let reopened = LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("reopen");
    assert_eq!(reopened.tree_head(), head);
    MeasurementAuthority::check(&reopened, &reported(MEASUREMENT, host_data()))
        .expect("trusted from the saved state, before any sync");
    assert!(
        MeasurementAuthority::check(&reopened, &reported(new_measurement, host_data())).is_err(),
        "not seen yet"
    );
    let report = reopened.sync().await.expect("sync");
    assert_eq!(
        report,
        SyncReport {
            tree_size: 5,
            new_entries: 1,
            untrusted_entries: 0
        }
    );
    MeasurementAuthority::check(&reopened, &reported(new_measurement, host_data()))
        .expect("now logged");
}

#[tokio::test]
async fn a_forked_ledger_fails_against_the_remembered_head() {
    // The honest history so far: plugin and policy file, no launch yet.
    let honest = TestLedger::start(LOG_KEY_SEED, &release()[..2]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    LedgerTrust::open(config(&honest.url, &state_path(&dir)))
        .expect("open")
        .sync()
        .await
        .expect("sync");
    let saved = std::fs::read(state_path(&dir)).expect("state");

    // Same log key, different history: a larger tree, and one of equal size.
    let mut forked_history = release();
    forked_history.swap(0, 1);
    for history in [&forked_history[..], &forked_history[..2]] {
        let fork = TestLedger::start(LOG_KEY_SEED, history).await;
        let trust = LedgerTrust::open(config(&fork.url, &state_path(&dir))).expect("open");
        let error = trust.sync().await.expect_err("split view");
        assert!(
            matches!(
                error,
                LedgerTrustError::Verify(VerifyError::SplitView { .. })
            ),
            "{error}"
        );
        assert!(
            MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data())).is_err(),
            "nothing from the fork is trusted"
        );
        assert_eq!(
            std::fs::read(state_path(&dir)).expect("state"),
            saved,
            "the remembered head is kept"
        );
    }
}

#[tokio::test]
async fn a_tree_head_signed_by_another_key_is_refused() {
    let impostor = TestLedger::start(LOG_KEY_SEED + 1, &release()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let trust = LedgerTrust::open(config(&impostor.url, &state_path(&dir))).expect("open");
    let error = trust.sync().await.expect_err("forged head");
    assert!(
        matches!(
            error,
            LedgerTrustError::Verify(VerifyError::BadSignature(_))
        ),
        "{error}"
    );
    assert!(
        !state_path(&dir).exists(),
        "nothing is saved from a refused sync"
    );
    assert!(matches!(
        MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data())),
        Err(AuthorityRejection::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_corrupt_state_file_is_an_error_and_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = state_path(&dir);
    std::fs::write(&path, b"{\"version\": 1, \"log_key\": ").expect("write");
    let error = LedgerTrust::open(config("http://127.0.0.1:9", &path)).expect_err("corrupt");
    assert!(
        matches!(error, LedgerTrustError::CorruptState { .. }),
        "{error}"
    );
    assert_eq!(
        std::fs::read(&path).expect("state"),
        b"{\"version\": 1, \"log_key\": "
    );

    // A valid state of another log is refused too.
    let ledger = TestLedger::start(LOG_KEY_SEED, &release()).await;
    let other = tempfile::tempdir().expect("tempdir");
    LedgerTrust::open(config(&ledger.url, &state_path(&other)))
        .expect("open")
        .sync()
        .await
        .expect("sync");
    let mut other_log = config(&ledger.url, &state_path(&other));
    other_log.log_key = HexBytes(key(7).verifying_key().to_bytes());
    let error = LedgerTrust::open(other_log).expect_err("state of another log");
    assert!(
        matches!(error, LedgerTrustError::CorruptState { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn entries_failing_the_pinned_reviewer_policy_are_not_trusted() {
    let ledger = TestLedger::start(LOG_KEY_SEED, &release()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The client pins reviewers 2 and 3, both required; the release carries 1 and 2.
    let mut pinned = config(&ledger.url, &state_path(&dir));
    pinned.reviewer_policy = Some(policy(2, &[2, 3]));
    let trust = LedgerTrust::open(pinned.clone()).expect("open");
    let report = trust.sync().await.expect("sync");
    assert_eq!(
        report,
        SyncReport {
            tree_size: 4,
            new_entries: 4,
            untrusted_entries: 4
        }
    );
    assert_eq!(
        MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data())),
        Err(AuthorityRejection::Measurement(MEASUREMENT))
    );

    // With the ledger's own policy pinned instead, the same state re-verifies from the start.
    drop(trust);
    pinned.reviewer_policy = Some(policy(2, &[1, 2, 3]));
    let trust = LedgerTrust::open(pinned.clone()).expect("reopen");
    assert_eq!(
        trust.sync().await.expect("sync"),
        SyncReport {
            tree_size: 4,
            new_entries: 4,
            untrusted_entries: 0
        }
    );
    MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data()))
        .expect("trusted under the ledger's policy");

    pinned.reviewer_policy = Some(policy(0, &[1]));
    let error = LedgerTrust::open(pinned).expect_err("threshold 0 would trust unsigned entries");
    assert!(
        matches!(error, LedgerTrustError::BadReviewerPolicy(_)),
        "{error}"
    );
}

/// An operator starts the released image, with the released policies, model
/// and settings, under a weaker SNP guest policy (SMT allowed) or on a
/// platform configured otherwise. The launch digest covers neither, so
/// only the release's own values can refuse it.
#[tokio::test]
async fn a_launch_with_a_policy_other_than_the_released_one_is_refused() {
    use cloister_attestation::{
        DEVELOPMENT_TCB, Policy, SimulatedLaunch, TrustAnchors, Verifier, VerifyError,
    };

    let (_ledger, _dir, trust) = synced(&release()).await;
    let platform = crate::development::development_platform(DEVELOPMENT_TCB);
    let anchors = platform.pin_in(TrustAnchors::amd()).expect("anchors");
    let policy = Policy::from_toml(include_str!(
        "../../../../policies/attestation-simulated.toml"
    ))
    .expect("policy");
    let verifier = Verifier::new(anchors, policy, trust);
    let verify = |guest_policy, platform_info| {
        let launch = SimulatedLaunch {
            guest_policy,
            platform_info,
            ..SimulatedLaunch::new(MEASUREMENT, host_data())
        };
        let evidence = platform.evidence(&launch, &[9; 64]).expect("evidence");
        verifier.verify_bound(&evidence, &[9; 64]).map(|_| ())
    };

    verify(RELEASED_GUEST_POLICY, RELEASED_PLATFORM_INFO).expect("the launch as released");
    let smt_allowed = RELEASED_GUEST_POLICY | 1 << 16;
    assert_eq!(
        verify(smt_allowed, RELEASED_PLATFORM_INFO),
        Err(VerifyError::LaunchSettingsNotAccepted(
            AuthorityRejection::GuestPolicy(smt_allowed)
        ))
    );
    let smt_enabled = RELEASED_PLATFORM_INFO | 1;
    assert_eq!(
        verify(RELEASED_GUEST_POLICY, smt_enabled),
        Err(VerifyError::LaunchSettingsNotAccepted(
            AuthorityRejection::PlatformInfo(smt_enabled)
        ))
    );
}

/// Release 1 ran image M with policy set A; release 2 runs the same image
/// with policy set B (say, a plugin with a fix, or a stricter allow-list).
/// Once release 2's overlap has passed, a host presenting M with A, an old
/// and weaker but logged combination, is refused; and no host may pair a
/// measurement with a policy set of another release.
#[tokio::test]
async fn measurement_and_policy_set_must_come_from_one_release() {
    const OLD_POLICY_SET: [u8; 32] = [0xa0; 32];
    const OTHER_MEASUREMENT: Measurement = Measurement([0xa2; 48]);
    const OTHER_POLICY_SET: [u8; 32] = [0xa3; 32];
    let entries: Vec<SignedEntry> = [
        launch_release(MEASUREMENT, OLD_POLICY_SET, 1, 3 * DAY, HOUR),
        launch_release(MEASUREMENT, POLICY_SET, 2, 2 * DAY, HOUR),
        // Another deployment, current too.
        Subject::Release(Release {
            series: "staging".into(),
            ..match launch_release(OTHER_MEASUREMENT, OTHER_POLICY_SET, 1, HOUR, HOUR) {
                Subject::Release(release) => release,
                _ => unreachable!("launch_release makes releases"),
            }
        }),
    ]
    .into_iter()
    .map(|subject| entry(subject, &[1, 2]))
    .collect();
    let (_ledger, _dir, trust) = synced(&entries).await;
    let launch = |measurement, policy_set: [u8; 32]| {
        reported(
            measurement,
            HostData::of_launch(&policy_set, Some(&MODEL), &HOST_CONFIG),
        )
    };

    MeasurementAuthority::check(&trust, &launch(MEASUREMENT, POLICY_SET))
        .expect("the current release");
    MeasurementAuthority::check(&trust, &launch(OTHER_MEASUREMENT, OTHER_POLICY_SET))
        .expect("the other deployment's current release");
    let old = MeasurementAuthority::check(&trust, &launch(MEASUREMENT, OLD_POLICY_SET));
    assert!(
        matches!(&old, Err(AuthorityRejection::NotCurrent { release, why })
            if release == "production #1" && why.contains("superseded by #2")),
        "the image with its superseded policy set: {old:?}"
    );
    for (measurement, policy_set) in [
        (MEASUREMENT, OTHER_POLICY_SET),
        (OTHER_MEASUREMENT, POLICY_SET),
    ] {
        let mixed = MeasurementAuthority::check(&trust, &launch(measurement, policy_set));
        assert!(
            matches!(mixed, Err(AuthorityRejection::HostData(_))),
            "a measurement with another release's policy set: {mixed:?}"
        );
    }
}

#[tokio::test]
async fn a_revoked_release_is_refused() {
    let (ledger, _dir, trust) = synced(&release()).await;
    MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data()))
        .expect("current before the revocation");

    let revocation = Subject::Revocation {
        series: "production".into(),
        sequence: 1,
        reason: "CVE-2026-0001 in the summarise plugin".into(),
    };
    ledger.append(&entry(revocation.clone(), &[1, 3])).await;
    trust.sync().await.expect("sync");
    let refused = MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data()));
    assert_eq!(
        refused,
        Err(AuthorityRejection::Revoked {
            release: "production #1".into(),
            reason: "CVE-2026-0001 in the summarise plugin".into(),
        })
    );

    // A revocation with too few reviewer signatures is refused by the ledger
    // and, pinned, by the client: one reviewer alone cannot withdraw (or
    // un-withdraw) a release.
    let other = TestLedger::start(LOG_KEY_SEED, &release()).await;
    let lone = entry(revocation, &[1]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/entries", other.url))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&lone).expect("json"))
        .send()
        .await
        .expect("ledger answers");
    assert!(response.status().is_client_error(), "{}", response.status());
}

/// A gateway hands a targeted user an old key configuration: logged, but
/// past its window, or superseded by two newer ones. Either would let it
/// tell that user's requests apart by key id.
#[tokio::test]
async fn an_old_logged_key_config_is_refused() {
    let expired: &[u8] = &[3, 0, 0x20, 3, 3, 3];
    let oldest: &[u8] = &[4, 0, 0x20, 4, 4, 4];
    let older: &[u8] = &[5, 0, 0x20, 5, 5, 5];
    let current: &[u8] = &[6, 0, 0x20, 6, 6, 6];
    let entries: Vec<SignedEntry> = [
        ohttp_key(expired, 3 * DAY, DAY),
        ohttp_key(oldest, 3 * DAY, 7 * DAY),
        ohttp_key(older, 2 * DAY, 7 * DAY),
        ohttp_key(current, DAY, 7 * DAY),
    ]
    .into_iter()
    .map(|subject| entry(subject, &[1, 2]))
    .collect();
    let (_ledger, _dir, trust) = synced(&entries).await;

    KeyConsistency::check(&trust, current)
        .await
        .expect("the newest key");
    KeyConsistency::check(&trust, older)
        .await
        .expect("the one before it, for clients still holding it");
    for (old, why) in [(expired, "expired"), (oldest, "superseded")] {
        let refused = KeyConsistency::check(&trust, old).await;
        assert!(
            matches!(&refused, Err(ClientError::KeyConsistency(message)) if message.contains(why)),
            "{why}: {refused:?}"
        );
    }
}

/// An issuer colluding with the gateway gives one account a key of its own;
/// the key id of every token that account redeems would then name it. The
/// client requests tokens only under a key logged in the ledger and current.
#[tokio::test]
async fn an_issuer_key_not_in_the_ledger_is_refused() {
    let issuer = crate::common::Issuer::start(100).await;
    let directory = issuer.client().directory().await.expect("directory");
    let published = directory.blind_rsa_keys().expect("keys");
    let token_key_id = *published.first().expect("one key").key.key_id();
    let issuer_key = |token_key_id| Subject::IssuerKey {
        token_key_id: HexBytes(token_key_id),
        window: KeyWindow {
            not_before: now() - HOUR,
            not_after: now() + DAY,
        },
    };
    // The ledger logs some other key of the issuer, not the one it serves.
    let ledger = TestLedger::start(LOG_KEY_SEED, &[entry(issuer_key([0x77; 32]), &[1, 2])]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let trust = Arc::new(LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("open"));
    trust.sync().await.expect("sync");
    let wallet_dir = tempfile::tempdir().expect("tempdir");
    let wallet = TokenWallet::open(
        wallet_dir.path(),
        &issuer.settings().challenge().expect("challenge"),
    )
    .expect("wallet");
    let client = issuer
        .client()
        .with_key_check(Arc::clone(&trust) as Arc<dyn IssuerKeyCheck>);

    let refused = client
        .fetch(&issuer.account, &wallet, 2)
        .await
        .expect_err("an unlogged issuer key");
    assert!(
        matches!(&refused.cause, IssuanceError::KeyNotAccepted(why) if why.contains("not logged")),
        "{refused}"
    );
    assert_eq!(refused.stored, 0);

    ledger
        .append(&entry(issuer_key(token_key_id), &[2, 3]))
        .await;
    trust.sync().await.expect("sync");
    assert_eq!(
        client
            .fetch(&issuer.account, &wallet, 2)
            .await
            .expect("the logged key"),
        2
    );
}

/// A ledger whose policy also lets the publisher with key `seed` log keys
/// of `kind` alone, that policy, and the publisher (its key file in `dir`).
async fn ledger_with_publisher(
    seed: u8,
    name: &str,
    kind: KeyKind,
    dir: &Path,
) -> (TestLedger, ReviewerPolicy, KeyPublisher) {
    let mut ledger_policy = policy(2, &[1, 2, 3]);
    ledger_policy.publishers.push(Publisher {
        name: name.into(),
        public_key: HexBytes(key(seed).verifying_key().to_bytes()),
        publishes: kind,
    });
    let ledger = TestLedger::start_with(LOG_KEY_SEED, ledger_policy.clone(), &[]).await;
    let publisher_key = dir.join(format!("{name}-publisher.key"));
    std::fs::write(&publisher_key, hex::encode(key(seed).to_bytes())).expect("key file");
    let publisher = KeyPublisher::new(
        &PublisherSettings {
            url: ledger.url.clone(),
            publisher_key_file: publisher_key,
            publisher_name: name.into(),
            log_key: Some(HexBytes(key(LOG_KEY_SEED).verifying_key().to_bytes())),
            lead_secs: 1,
        },
        Duration::from_secs(5),
    )
    .expect("publisher");
    (ledger, ledger_policy, publisher)
}

/// The gateway rotates its key every 2 s (a day, compressed), logging each
/// next key 1 s ahead under its publisher key; a client that trusts only
/// what the ledger holds sends requests all the while. None is refused.
#[tokio::test]
async fn gateway_key_rotation_needs_no_client_downtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, ledger_policy, publisher) =
        ledger_with_publisher(60, "gateway", KeyKind::OhttpKeyConfig, dir.path()).await;

    let mut gateway = GatewayConfig::default();
    gateway.keys.rotate_every_secs = 2;
    gateway.keys.overlap_secs = 3;
    gateway.keys.max_cache_secs = 1;
    let stack = Loopback::start_with(
        &gateway,
        &RelayConfig::default(),
        NoRedeemer {
            require_tokens: false,
        },
        EchoRouter,
    )
    .await;
    // The first round logs the current key before anyone is told of it.
    stack
        .keys
        .maintain_published(&publisher, cloister_wire::unix_now(), 1)
        .await
        .expect("first round");
    spawn_published_key_maintenance(
        Arc::clone(&stack.keys),
        Arc::new(publisher),
        Duration::from_millis(200),
        Duration::from_secs(1),
    );
    // The relay's refresh schedule, compressed as well.
    let relay_keys = Arc::clone(&stack.relay_keys);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            // A failed refresh keeps the copy it has, as the relay does.
            drop(relay_keys.refresh().await);
        }
    });

    let mut pinned = config(&ledger.url, &state_path(&dir));
    pinned.reviewer_policy = Some(ledger_policy);
    let trust = LedgerTrust::open(pinned).expect("open");
    let client = Client::new(
        crate::common::loopback_client_config(
            stack.relay_url.clone(),
            stack.key_config_url.clone(),
        ),
        trust,
    )
    .expect("client");
    let mut key_ids = std::collections::BTreeSet::new();
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(9) {
        key_ids.insert(stack.keys.with_ring(KeyRing::current_key_id));
        let text = format!("request {sent}");
        let response = client
            .send(&InnerRequest::new("POST", "cloister.invalid", "/echo").body(text.as_str()))
            .await
            .unwrap_or_else(|error| panic!("request {sent} refused: {error}"));
        assert_eq!(response.content(), format!("POST /echo\n{text}").as_bytes());
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        key_ids.len() >= 4,
        "several rotations happened: keys {key_ids:?}"
    );
    assert!(sent >= 40, "requests all the while: {sent}");
}

#[tokio::test]
async fn a_log_with_two_witnesses_is_followed_by_a_client_requiring_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut witnesses = Vec::new();
    for seed in [51, 52] {
        witnesses.push(witness(dir.path(), seed, vec![checkpoint_key()], 0).await);
    }
    let ledger = TestLedger::start_witnessed(&release(), &witnesses).await;
    let trust = LedgerTrust::open(witnessed_config(
        &ledger.url,
        &state_path(&dir),
        &witnesses,
        2,
    ))
    .expect("open");
    assert_eq!(trust.sync().await.expect("2 of 2 cosigned").tree_size, 4);
    ledger
        .append(&entry(cvm_launch(Measurement([0xee; 48])), &[1, 3]))
        .await;
    let report = trust.sync().await.expect("the append was witnessed too");
    assert_eq!((report.tree_size, report.new_entries), (5, 1));
}

#[tokio::test]
async fn a_checkpoint_without_enough_witness_cosignatures_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The second witness does not follow this log: it refuses to cosign.
    let witnesses = vec![
        witness(dir.path(), 51, vec![checkpoint_key()], 0).await,
        witness(dir.path(), 52, vec![], 0).await,
    ];
    let ledger = TestLedger::start_witnessed(&release()[..2], &witnesses).await;
    let one_of_two = witnessed_config(&ledger.url, &state_path(&dir), &witnesses, 1);
    let error = refused_after_a_lenient_sync(&dir, &ledger, &witnesses, one_of_two).await;
    assert!(
        matches!(
            error,
            LedgerTrustError::Checkpoint(WitnessPolicyError::NotEnoughCosignatures {
                cosigned: 1,
                threshold: 2,
                ..
            })
        ),
        "{error}"
    );
}

/// Syncs the first two entries of [`release`] with `lenient`, a client
/// configuration for `ledger`; appends the launch; syncs again requiring 2
/// of 2 `witnesses` within a day, and returns why that was refused, having
/// checked that the refused client kept the state of the first sync.
async fn refused_after_a_lenient_sync(
    dir: &tempfile::TempDir,
    ledger: &TestLedger,
    witnesses: &[(String, CosignerKey)],
    lenient: LedgerTrustConfig,
) -> LedgerTrustError {
    LedgerTrust::open(lenient)
        .expect("open")
        .sync()
        .await
        .expect("the lenient client accepts the checkpoint");
    let saved = std::fs::read(state_path(dir)).expect("state");

    ledger.append(&release()[2]).await;
    let trust = LedgerTrust::open(witnessed_config(
        &ledger.url,
        &state_path(dir),
        witnesses,
        2,
    ))
    .expect("open");
    let error = trust.sync().await.expect_err("refused");
    assert_eq!(trust.tree_head().map(|head| head.head.tree_size), Some(2));
    assert!(
        MeasurementAuthority::check(&trust, &reported(MEASUREMENT, host_data())).is_err(),
        "the launch logged after the refused checkpoint is not trusted"
    );
    assert_eq!(std::fs::read(state_path(dir)).expect("state"), saved);
    error
}

#[tokio::test]
async fn a_stale_checkpoint_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let two_days = 2 * 24 * 3600;
    // Both witnesses' cosignatures are two days old, as the cosignatures of
    // a checkpoint the log kept serving for two days would be.
    let mut witnesses = Vec::new();
    for seed in [51, 52] {
        witnesses.push(witness(dir.path(), seed, vec![checkpoint_key()], two_days).await);
    }
    let ledger = TestLedger::start_witnessed(&release()[..2], &witnesses).await;
    let mut lenient = witnessed_config(&ledger.url, &state_path(&dir), &witnesses, 2);
    if let Some(witnessed) = &mut lenient.witnesses {
        witnessed.policy.max_age = Duration::from_secs(3 * 24 * 3600);
    }
    let error = refused_after_a_lenient_sync(&dir, &ledger, &witnesses, lenient).await;
    assert!(
        matches!(
            error,
            LedgerTrustError::Checkpoint(WitnessPolicyError::Stale { age_secs, .. })
                if age_secs >= two_days
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_bundled_entry_that_is_not_its_leaf_in_the_tiles_is_refused() {
    let ledger = TestLedger::start(LOG_KEY_SEED, &release()).await;
    // In front of the honest ledger: the same tiles, but bundles whose first
    // two entries are swapped (both logged, neither at its own index).
    let upstream = ledger.url.clone();
    let proxy = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let upstream = upstream.clone();
        async move {
            let path = uri.path_and_query().map_or("/", |path| path.as_str());
            let response = reqwest::get(format!("{upstream}{path}"))
                .await
                .expect("upstream answers");
            let status =
                axum::http::StatusCode::from_u16(response.status().as_u16()).expect("status");
            let body = response.bytes().await.expect("body").to_vec();
            if !path.starts_with("/v1/tile/entries/") {
                return (status, body);
            }
            let mut entries: Vec<SignedEntry> = serde_json::from_slice(&body).expect("bundle");
            entries.swap(0, 1);
            (status, serde_json::to_vec(&entries).expect("json"))
        }
    });
    let proxy = format!("http://{}", cloister_test_support::serve_app(proxy).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let trust = LedgerTrust::open(config(&proxy, &state_path(&dir))).expect("open");
    let error = trust.sync().await.expect_err("swapped entries");
    assert!(
        matches!(error, LedgerTrustError::BadEntry { index: 0, .. }),
        "{error}"
    );
    assert_eq!(trust.tree_head(), None, "nothing accepted");
}

/// The issuer lists a key in its directory only once the ledger holds it,
/// logged under its publisher key; a client that trusts the ledger then
/// obtains tokens under it.
#[tokio::test]
async fn an_issuer_publishes_only_keys_the_ledger_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ledger, _, publisher) =
        ledger_with_publisher(61, "issuer", KeyKind::IssuerKey, dir.path()).await;
    let issuer =
        crate::common::Issuer::start_with(100, |state| state.publishing_only_logged_keys()).await;
    let listed = |directory: cloister_privacypass::IssuerDirectory| {
        directory.blind_rsa_keys().expect("keys").len()
    };
    assert_eq!(
        listed(issuer.client().directory().await.expect("directory")),
        0,
        "nothing published before it is logged"
    );

    assert_eq!(
        cloister_issuer::server::publish_keys(&issuer.state, &publisher)
            .await
            .expect("logged"),
        1
    );
    assert_eq!(
        cloister_issuer::server::publish_keys(&issuer.state, &publisher)
            .await
            .expect("logged once"),
        0
    );
    assert_eq!(
        listed(issuer.client().directory().await.expect("directory")),
        1
    );

    let trust = Arc::new(LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("open"));
    trust.sync().await.expect("sync");
    let wallet_dir = tempfile::tempdir().expect("tempdir");
    let wallet = TokenWallet::open(
        wallet_dir.path(),
        &issuer.settings().challenge().expect("challenge"),
    )
    .expect("wallet");
    let fetched = issuer
        .client()
        .with_key_check(trust as Arc<dyn IssuerKeyCheck>)
        .fetch(&issuer.account, &wallet, 2)
        .await
        .expect("tokens under the logged key");
    assert_eq!(fetched, 2);
}

/// A client that cannot reach the ledger keeps the view of its last sync,
/// but judges no host and no key on it once it is older than the age limit
/// (a day): a log that hides from it a revocation, a newer release or a
/// key's replacement gains nothing by staying unreachable.
#[tokio::test]
async fn nothing_is_judged_on_a_stale_view() {
    let ledger = TestLedger::start(LOG_KEY_SEED, &release()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    LedgerTrust::open(config(&ledger.url, &state_path(&dir)))
        .expect("open")
        .sync()
        .await
        .expect("sync");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state_path(&dir)).expect("state")).expect("json");
    state["seen_at"] = serde_json::json!(now() - 2 * DAY);
    std::fs::write(state_path(&dir), serde_json::to_vec(&state).expect("json")).expect("write");

    let unreachable =
        LedgerTrust::open(config("http://127.0.0.1:9", &state_path(&dir))).expect("open");
    assert!(unreachable.sync().await.is_err());
    let refused = MeasurementAuthority::check(&unreachable, &reported(MEASUREMENT, host_data()));
    assert!(
        matches!(&refused, Err(AuthorityRejection::Unavailable(why)) if why.contains("must be synced")),
        "{refused:?}"
    );
    let key = KeyConsistency::check(&unreachable, KEY_CONFIG).await;
    assert!(
        matches!(&key, Err(ClientError::KeyConsistency(why)) if why.contains("sync failed")),
        "{key:?}"
    );

    let synced = LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("open");
    synced.sync().await.expect("sync");
    MeasurementAuthority::check(&synced, &reported(MEASUREMENT, host_data()))
        .expect("a fresh view");
}
