//! `LedgerTrust` against real, in-process ledgers on loopback: what it
//! accepts, and every way a ledger or a state file can fail it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cloister_attestation::{AuthorityRejection, LaunchFacts, MeasurementAuthority};
use cloister_client::ledger::{
    LedgerTrust, LedgerTrustConfig, LedgerTrustError, SyncReport, WitnessedCheckpoints,
};
use cloister_client::{ClientError, KeyConsistency};
use cloister_ledger::Ledger;
use cloister_ledger_server::{WitnessConfig, Witnesses};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::client::VerifyError;
use cloister_ledger_verify::cosignature::{Cosigner, CosignerKey, WitnessPolicyError};
use cloister_ledger_verify::entry::{
    EntryBody, Provenance, ReviewerSignature, SignedEntry, Subject,
};
use cloister_ledger_verify::note::VerifierKey;
use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
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

/// The released launch of `measurement`, as its entry names it.
fn cvm_launch(measurement: Measurement) -> Subject {
    Subject::CvmMeasurement {
        measurement,
        snp_policy: RELEASED_GUEST_POLICY,
        platform_info: RELEASED_PLATFORM_INFO,
        host_data: host_data(),
        policy_set: HexBytes(POLICY_SET),
        model: Some(HexBytes(MODEL)),
        host_config: HexBytes(HOST_CONFIG),
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

fn key(seed: u8) -> SigningKey {
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
    }
}

fn digest(bytes: &[u8]) -> HexBytes<32> {
    HexBytes(cloister_ohttp_keys::key_config_digest(bytes))
}

/// An entry for `subject` signed by the reviewers with these seeds.
fn entry(subject: Subject, signers: &[u8]) -> SignedEntry {
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
        Subject::OhttpKeyConfig {
            key_id: 1,
            digest: digest(KEY_CONFIG),
        },
    ]
    .into_iter()
    .map(|subject| entry(subject, &[1, 2]))
    .collect()
}

/// A real ledger (reviewers 1, 2, 3; 2 of them must sign) on a loopback port.
struct TestLedger {
    url: String,
    _dir: tempfile::TempDir,
}

impl TestLedger {
    async fn start(log_key_seed: u8, entries: &[SignedEntry]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(
            &dir.path().join("ledger.redb"),
            key(log_key_seed),
            policy(2, &[1, 2, 3]),
        )
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

const LOG_KEY_SEED: u8 = 42;

fn config(url: &str, state_path: &Path) -> LedgerTrustConfig {
    LedgerTrustConfig {
        ledger_url: url.to_owned(),
        timeout: Duration::from_secs(10),
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

fn state_path(dir: &tempfile::TempDir) -> PathBuf {
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
    let ledger = TestLedger::start(LOG_KEY_SEED, &release()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let trust = LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("open");
    trust.sync().await.expect("sync");
    let rotated: &[u8] = &[2, 0, 0x20, 7, 7, 7];
    ledger
        .append(&entry(
            Subject::OhttpKeyConfig {
                key_id: 2,
                digest: digest(rotated),
            },
            &[2, 3],
        ))
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

    let new_measurement = Measurement([0xee; 48]);
    ledger
        .append(&entry(cvm_launch(new_measurement), &[1, 3]))
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
        DEVELOPMENT_SEED, DEVELOPMENT_TCB, Policy, SimulatedLaunch, SimulatedPlatform,
        TrustAnchors, Verifier, VerifyError,
    };

    let ledger = TestLedger::start(LOG_KEY_SEED, &release()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let trust = LedgerTrust::open(config(&ledger.url, &state_path(&dir))).expect("open");
    trust.sync().await.expect("sync");
    let platform =
        SimulatedPlatform::from_seed(DEVELOPMENT_SEED, DEVELOPMENT_TCB).expect("platform");
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
