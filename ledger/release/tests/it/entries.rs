//! The entries of a release, computed from a scratch tree and the host's
//! launch digests, and what is refused.

use std::fs;
use std::path::Path;

use cloister_host::LaunchDigests;
use cloister_host::config::ProviderKind;
use cloister_host::launch::{PluginDigest, PolicyFileDigest};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::{
    EntryBody, KeyWindow, Provenance, Release, ReleaseBuild, ReleasedPlugin, Sha256Digest, Subject,
};
use cloister_release::ReleaseError;
use cloister_release::entries::{
    IssuerKeyWindow, ReleaseInputs, ReleaseTerms, is_simulated, issuer_key_windows, release_entries,
};
use cloister_wire::{HostData, Measurement};
use sha2::{Digest as _, Sha256};

const COMPONENT: &[u8] = b"\0asm pretend component";
const ALLOWLIST: &[u8] = b"# allow-list\n";
/// An OHTTP key configuration as the gateway publishes it (key id 7).
const KEY_CONFIG: &[u8] = &[7, 0, 0x20, 1, 2, 3];

/// A scratch tree: one plugin manifest and component, one more policy file,
/// and the launch digests a host would print for them.
pub struct Tree {
    pub dir: tempfile::TempDir,
    pub launch: LaunchDigests,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn hex256(bytes: &[u8]) -> Sha256Digest {
    HexBytes(sha256(bytes))
}

pub fn tree() -> Tree {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    fs::create_dir_all(root.join("policies/plugins")).expect("mkdir");
    fs::create_dir_all(root.join("target/plugins")).expect("mkdir");
    fs::write(root.join("target/plugins/summarise.wasm"), COMPONENT).expect("write");
    let manifest = format!(
        "name = \"summarise\"\nversion = \"0.1.0\"\ncomponent = \"summarise.wasm\"\ndigest = \"sha256:{}\"\n",
        hex256(COMPONENT)
    );
    fs::write(root.join("policies/plugins/summarise.toml"), &manifest).expect("write");
    fs::write(root.join("policies/log-allowlist.toml"), ALLOWLIST).expect("write");
    let launch = LaunchDigests {
        mode: ProviderKind::Simulated,
        measurement: Some([0xab; 48]),
        host_data: launch_host_data().0,
        policy_set: POLICY_SET,
        model: Some(MODEL),
        host_config: HOST_CONFIG,
        host_settings: "{}".into(),
        engine_settings: "candle".into(),
        snp_policy: Some(0x30000),
        platform_info: Some(0x1),
        host_binary: [0xef; 32],
        plugins: vec![PluginDigest {
            name: "summarise".into(),
            version: "0.1.0".into(),
            digest: sha256(COMPONENT),
        }],
        policy_files: vec![
            PolicyFileDigest {
                name: "log-allowlist.toml".into(),
                digest: sha256(ALLOWLIST),
            },
            PolicyFileDigest {
                name: "plugins/summarise.toml".into(),
                digest: sha256(manifest.as_bytes()),
            },
        ],
    };
    Tree { dir, launch }
}

const POLICY_SET: [u8; 32] = [0xc0; 32];
const MODEL: [u8; 32] = [0xc1; 32];
const HOST_CONFIG: [u8; 32] = [0xc2; 32];

fn launch_host_data() -> HostData {
    HostData::of_launch(&POLICY_SET, Some(&MODEL), &HOST_CONFIG)
}

pub fn provenance() -> Provenance {
    Provenance {
        source_commit: "0123abcd".into(),
        builder: "test@ci".into(),
    }
}

const KEY_WINDOW: KeyWindow = KeyWindow {
    not_before: 1_800_000_000,
    not_after: 1_800_604_800,
};

pub fn terms() -> ReleaseTerms {
    ReleaseTerms {
        series: "production".into(),
        sequence: 7,
        published_at: 1_800_000_000,
        overlap_secs: 3600,
        key_window: KEY_WINDOW,
    }
}

const ISSUER_KEY: IssuerKeyWindow = IssuerKeyWindow {
    token_key_id: [0x1c; 32],
    window: KEY_WINDOW,
};

pub fn entries(tree: &Tree) -> Result<Vec<EntryBody>, ReleaseError> {
    entries_built(tree, None)
}

fn entries_built(
    tree: &Tree,
    build: Option<&ReleaseBuild>,
) -> Result<Vec<EntryBody>, ReleaseError> {
    let root = tree.dir.path();
    let configs = [KEY_CONFIG.to_vec()];
    let issuer_keys = [ISSUER_KEY];
    release_entries(&ReleaseInputs {
        root,
        plugin_dir: &root.join("target/plugins"),
        launch: &tree.launch,
        ohttp_configs: &configs,
        issuer_keys: &issuer_keys,
        provenance: &provenance(),
        terms: &terms(),
        build,
    })
}

/// A build record is logged with the release, and only for the host binary
/// that measured.
#[test]
fn the_build_record_is_logged_for_the_measured_host_only() {
    let tree = tree();
    let mut build = ReleaseBuild {
        rustc: "rustc 1.95.0 (59807616e 2026-04-14)".into(),
        cargo: "cargo 1.95.0 (f2d3ce0bd 2026-03-21)".into(),
        wasm: "rustup wasm32-unknown-unknown".into(),
        host_binary: HexBytes(tree.launch.host_binary),
    };
    let bodies = entries_built(&tree, Some(&build)).expect("entries");
    let logged = bodies.iter().find_map(|body| match &body.subject {
        Subject::Release(release) => release.build.as_deref(),
        _ => None,
    });
    assert_eq!(logged, Some(&build));

    build.host_binary = HexBytes([0x0e; 32]);
    let other = entries_built(&tree, Some(&build)).expect_err("another host binary");
    assert!(
        matches!(other, ReleaseError::OtherHostBinary { .. }),
        "{other}"
    );
}

#[test]
fn dry_run_lists_every_artefact_of_the_release() {
    let tree = tree();
    let bodies = entries(&tree).expect("entries");
    assert!(bodies.iter().all(|body| body.provenance == provenance()));
    let subjects: Vec<Subject> = bodies.into_iter().map(|body| body.subject).collect();
    assert_eq!(
        subjects,
        [
            Subject::PluginComponent {
                name: "summarise".into(),
                version: "0.1.0".into(),
                wit_world: "cloister:summarise/summarise".into(),
                digest: hex256(COMPONENT),
            },
            Subject::PolicyFile {
                name: "log-allowlist.toml".into(),
                digest: hex256(ALLOWLIST)
            },
            Subject::PolicyFile {
                name: "plugins/summarise.toml".into(),
                digest: HexBytes(tree.launch.policy_files[1].digest)
            },
            Subject::Release(Release {
                series: "production".into(),
                sequence: 7,
                published_at: 1_800_000_000,
                overlap_secs: 3600,
                measurement: Measurement([0xab; 48]),
                snp_policy: 0x30000,
                platform_info: 0x1,
                host_data: launch_host_data(),
                policy_set: HexBytes(POLICY_SET),
                model: Some(HexBytes(MODEL)),
                host_config: HexBytes(HOST_CONFIG),
                plugins: vec![ReleasedPlugin {
                    name: "summarise".into(),
                    digest: hex256(COMPONENT),
                }],
                build: None,
            }),
            Subject::OhttpKeyConfig {
                key_id: 7,
                digest: hex256(KEY_CONFIG),
                window: KEY_WINDOW,
            },
            Subject::IssuerKey {
                token_key_id: HexBytes(ISSUER_KEY.token_key_id),
                window: KEY_WINDOW,
            },
        ]
    );
}

#[test]
fn refuses_stale_manifests_and_measurements() {
    let tree = self::tree();
    fs::write(
        tree.dir.path().join("target/plugins/summarise.wasm"),
        b"rebuilt",
    )
    .expect("write");
    let stale_manifest = entries(&tree).expect_err("component no longer matches its manifest");
    assert!(
        stale_manifest.to_string().contains("build-plugins"),
        "{stale_manifest}"
    );

    let mut tree = self::tree();
    tree.launch.policy_files[0].digest = [0; 32];
    let stale_measurement = entries(&tree).expect_err("measured policy differs from the tree");
    assert!(
        stale_measurement.to_string().contains("measure again"),
        "{stale_measurement}"
    );

    let mut tree = self::tree();
    tree.launch.plugins[0].version = "9.9.9".into();
    assert!(
        entries(&tree).is_err(),
        "host loads a plugin this tree did not build"
    );

    let mut tree = self::tree();
    tree.launch.measurement = None;
    let no_measurement = entries(&tree).expect_err("real hardware: measurement must be given");
    assert!(
        no_measurement.to_string().contains("--measurement"),
        "{no_measurement}"
    );

    let mut tree = self::tree();
    tree.launch.host_data = [0xcd; 32];
    let mismatch = entries(&tree).expect_err("HOST_DATA must be that of its parts");
    assert!(
        matches!(mismatch, ReleaseError::InvalidEntry { .. }),
        "{mismatch}"
    );

    let mut tree = self::tree();
    tree.launch.policy_files[0].name = "../escape.toml".into();
    assert!(
        entries(&tree).is_err(),
        "policy names must stay under policies/"
    );
}

/// The launch digests as `cloister-host measure` prints them on real hardware.
fn sev_guest_launch() -> LaunchDigests {
    let json = format!(
        r#"{{"mode": "sev-guest", "measurement": null, "host_data": "{}",
            "policy_set": "{}", "model": null, "host_config": "{}", "host_settings": "", "engine_settings": "",
            "snp_policy": null, "platform_info": null, "host_binary": "{}", "plugins": [],
            "policy_files": []}}"#,
        HexBytes([0xcd; 32]),
        HexBytes([0xc0; 32]),
        HexBytes([0xc2; 32]),
        HexBytes([0xef; 32]),
    );
    serde_json::from_str(&json).expect("the host's JSON form")
}

#[test]
fn a_sev_guest_launch_is_not_called_simulated() {
    let launch = sev_guest_launch();
    assert_eq!(launch.mode, ProviderKind::SevGuest);
    assert!(!is_simulated(&launch));
}

#[test]
fn a_simulated_launch_is_called_simulated() {
    let launch = tree().launch;
    let json = serde_json::to_string(&launch).expect("json");
    assert!(json.contains(r#""mode":"simulated""#), "{json}");
    let read_back: LaunchDigests = serde_json::from_str(&json).expect("read back");
    assert_eq!(read_back, launch);
    assert!(is_simulated(&read_back));
}

#[test]
fn reads_the_launch_the_host_prints() {
    let tree = tree();
    let path = tree.dir.path().join("measure.json");
    fs::write(
        &path,
        serde_json::to_string_pretty(&tree.launch).expect("json"),
    )
    .expect("write");
    assert_eq!(
        cloister_release::sources::read_launch(&path).expect("read"),
        tree.launch
    );
    let error = cloister_release::sources::read_launch(Path::new("/nonexistent/measure.json"))
        .expect_err("missing file");
    assert!(matches!(error, ReleaseError::Io { .. }), "{error}");
}

#[test]
fn issuer_keys_are_logged_with_their_window_and_keys_without_one_are_left_out() {
    use cloister_privacypass::directory::PublishedKey;
    use cloister_privacypass::{IssuerDirectory, IssuerSecretKey};
    let dated = IssuerSecretKey::generate().expect("key");
    let undated = IssuerSecretKey::generate().expect("key");
    let directory = IssuerDirectory::new(
        "http://issuer/token-request",
        &[
            PublishedKey {
                key: dated.public_key().clone(),
                not_before: Some(1_800_000_000),
            },
            PublishedKey {
                key: undated.public_key().clone(),
                not_before: None,
            },
        ],
    );
    let windows = issuer_key_windows(directory.to_json().as_bytes(), 3600).expect("windows");
    assert_eq!(
        windows,
        [IssuerKeyWindow {
            token_key_id: *dated.public_key().key_id(),
            window: KeyWindow {
                not_before: 1_800_000_000,
                not_after: 1_800_003_600,
            },
        }]
    );
    let only_undated = IssuerDirectory::new(
        "http://issuer/token-request",
        &[PublishedKey {
            key: undated.public_key().clone(),
            not_before: None,
        }],
    );
    for bad in [only_undated.to_json().into_bytes(), b"{".to_vec()] {
        assert!(matches!(
            issuer_key_windows(&bad, 3600),
            Err(ReleaseError::IssuerDirectory(_))
        ));
    }
}

/// The guest image recipe's record gives the measurement and guest policy;
/// the rest of what it records is for people, and a malformed one is refused.
#[test]
fn the_guest_images_launch_is_read_from_the_recipes_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("launch.json");
    let measurement = "ab".repeat(48);
    fs::write(
        &path,
        format!(
            r#"{{"measurement": "{measurement}", "snp_policy": 196608, "vcpus": 4,
                "vcpu_type": "EPYC-v4", "cmdline": "console=ttyS0",
                "ovmf_sha256": "00", "kernel_sha256": "00", "initrd_sha256": "00",
                "source_commit": "abc"}}"#
        ),
    )
    .expect("write");
    let launch = cloister_release::sources::read_cvm_launch(&path).expect("read");
    assert_eq!(launch.measurement, Measurement([0xab; 48]));
    assert_eq!(launch.snp_policy, 0x3_0000);

    fs::write(&path, r#"{"measurement": "ab"}"#).expect("write");
    let error = cloister_release::sources::read_cvm_launch(&path).expect_err("malformed");
    assert!(error.to_string().contains("cvm-image"), "{error}");
}
