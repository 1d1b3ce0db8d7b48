//! `cloister-host serve` in-process on loopback, behind a relay and a
//! gateway running their DEFAULT configuration (so their default size limits
//! are shown to carry attestation evidence), with the real plugins, the real
//! policies and the deterministic inference backend.
//!
//! Attestation is SIMULATED on the public development platform; the client
//! accepts it only because its policy sets `allow_simulated`, and only for
//! the measurement and HOST_DATA that `measure` computes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cloister_api::{FeatureRequest, FeatureResponse};
use cloister_attestation::{
    AllowList, DEVELOPMENT_SEED, DEVELOPMENT_TCB, Policy, PolicySetError, SimulatedPlatform,
    TrustAnchors, Verifier,
};
use cloister_client::{Client, ClientConfig, OhttpTransport, UncheckedKeys};
use cloister_gateway::NoRedeemer;
use cloister_host::capabilities::inference::BackendKind;
use cloister_host::launch::{LaunchDigests, LaunchError};
use cloister_host::logfilter::MemorySink;
use cloister_host::serve::{AttestationError, BootError, ProviderKind};
use cloister_host::{Host, HostConfig, LoadError, PolicySet};
use cloister_ratls::ClientSession;
use cloister_test_support::{Loopback, bind_loopback, forward_to};
use cloister_wire::{HostData, Measurement};
use tokio::sync::oneshot;

/// The host binary digest the tests launch as (any fixed value: `measure`
/// and `serve` take it from the same place).
const HOST_BINARY: [u8; 32] = [0xb1; 32];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The defaults, with the real policies and components and the simulated
/// inference stand-in (no model needed).
fn config(policy_dir: &Path) -> HostConfig {
    let mut config = HostConfig {
        plugin_dir: std::env::var_os("CLOISTER_PLUGIN_DIR")
            .map_or_else(|| repo_root().join("target/plugins"), PathBuf::from),
        policy_dir: policy_dir.to_path_buf(),
        ..HostConfig::default()
    };
    config.inference.backend = BackendKind::Deterministic;
    config
}

fn policies(config: &HostConfig) -> PolicySet {
    config
        .policies()
        .unwrap_or_else(|e| panic!("policies in {}: {e}", config.policy_dir.display()))
}

fn boot(config: &HostConfig) -> Result<Host, BootError> {
    let policies = policies(config);
    let filter = HostConfig::log_filter(&policies, Arc::new(MemorySink::default()));
    Host::boot(config, &policies, filter, HOST_BINARY)
}

/// A development client's verifier: the AMD roots plus the simulated root
/// derived from the public development seed, accepting exactly `launch`.
fn verifier(launch: &LaunchDigests) -> Verifier<AllowList> {
    let platform = SimulatedPlatform::from_seed(DEVELOPMENT_SEED, DEVELOPMENT_TCB)
        .unwrap_or_else(|e| panic!("platform: {e}"));
    let measurement = launch
        .measurement
        .unwrap_or_else(|| panic!("simulated launch has a measurement"));
    let accepted = AllowList {
        measurements: [Measurement(measurement)].into(),
        host_data: [HostData(launch.host_data)].into(),
    };
    let policy = Policy {
        allow_simulated: true,
        report_versions: 2..=5,
        allowed_vmpls: [0].into(),
        minimum_tcb: DEVELOPMENT_TCB,
        accepted: accepted.clone(),
    };
    let anchors = platform
        .pin_in(TrustAnchors::amd())
        .unwrap_or_else(|e| panic!("anchors: {e}"));
    Verifier::new(anchors, policy, accepted)
}

/// A gateway and a relay with their default configuration in front of
/// `host`; returns a client (default configuration too) through both.
async fn gateway_and_relay(host: SocketAddr) -> Client<UncheckedKeys> {
    let servers = Loopback::start(
        NoRedeemer {
            require_tokens: false,
        },
        forward_to(host),
    )
    .await;
    Client::new(
        ClientConfig {
            relay_url: servers.relay_url,
            key_config_url: servers.key_config_url,
            ..ClientConfig::default()
        },
        UncheckedKeys,
    )
    .unwrap_or_else(|e| panic!("client: {e}"))
}

async fn get(url: &str) -> String {
    let response = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn team_lunch() -> FeatureRequest {
    let path = repo_root().join("plugins/summarise/testdata/team-lunch.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_summarises_through_relay_gateway_and_an_attested_host() {
    let config = config(&repo_root().join("policies"));
    let host =
        tokio::task::block_in_place(|| boot(&config)).unwrap_or_else(|e| panic!("boot: {e}"));
    let launch = host.launch().clone();
    assert_eq!(
        launch,
        LaunchDigests::compute(&config, &policies(&config), HOST_BINARY).expect("measure")
    );
    let (listener, host_addr) = bind_loopback().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(host.serve(listener, async move {
        let _ = stopped.await;
    }));

    let client = gateway_and_relay(host_addr).await;
    let transport = OhttpTransport::new(Arc::new(client), "cloister.invalid");
    let verifier = tokio::task::block_in_place(|| verifier(&launch));
    let mut session = ClientSession::establish(transport, &verifier)
        .await
        .unwrap_or_else(|e| panic!("establish: {e}"));
    assert_eq!(
        Some(session.attestation().measurement.0),
        launch.measurement
    );
    assert_eq!(session.attestation().host_data, launch.host_data);
    let response = session
        .request(&team_lunch())
        .await
        .unwrap_or_else(|e| panic!("summarise: {e}"));
    assert!(
        matches!(&response, FeatureResponse::Summary { text, messages_covered: 6 } if !text.is_empty()),
        "{response:?}"
    );

    let health: serde_json::Value =
        serde_json::from_str(&get(&format!("http://{host_addr}/healthz")).await)
            .unwrap_or_else(|e| panic!("healthz is JSON: {e}"));
    assert_eq!(health["status"], "ok");
    assert!(
        health["attestation"]
            .as_str()
            .is_some_and(|a| a.starts_with("SIMULATED")),
        "{health}"
    );
    assert_eq!(health["inference_simulated"], true);

    let metrics = get(&format!("http://{host_addr}/metrics")).await;
    for line in [
        "cloister_host_sessions_open 1",
        "cloister_host_sessions_established_total 1",
        "cloister_host_feature_requests_total{feature=\"summarise\",outcome=\"ok\"} 1",
        "cloister_host_feature_requests_total{feature=\"summarise\",outcome=\"failed\"} 0",
        "cloister_host_errors_total{kind=\"time_limit\"} 0",
        "cloister_host_requests_total{route=\"/healthz\",status=\"2xx\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing `{line}` in:\n{metrics}"
        );
    }
    assert!(
        metrics
            .lines()
            .any(|l| l
                .starts_with("cloister_host_request_duration_seconds_count{route=\"/session\"} ")),
        "no /session latency in:\n{metrics}"
    );
    assert!(
        !metrics.contains(session.session_id()),
        "metrics name a session:\n{metrics}"
    );

    let _ = stop.send(());
    let served = tokio::time::timeout(Duration::from_secs(10), serving).await;
    assert!(
        matches!(served, Ok(Ok(Ok(())))),
        "graceful shutdown: {served:?}"
    );
}

#[test]
fn the_host_refuses_a_host_data_that_is_not_its_policy_set() {
    let mut config = config(&repo_root().join("policies"));
    config.attestation.simulated.host_data = Some([0x11; 32]);
    let loaded = policies(&config).digest().expect("digest");
    let error = boot(&config)
        .err()
        .unwrap_or_else(|| panic!("the host started with foreign HOST_DATA"));
    assert!(
        matches!(
            &error,
            BootError::Attestation(AttestationError::PolicySet(PolicySetError::Mismatch { expected, actual }))
                if *expected == [0x11; 32] && *actual == loaded
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&hex::encode([0x11; 32])) && message.contains(&hex::encode(loaded)),
        "{message}"
    );
}

#[test]
fn the_host_starts_when_the_configured_host_data_is_its_policy_set() {
    let mut config = config(&repo_root().join("policies"));
    config.attestation.simulated.host_data = Some(policies(&config).digest().expect("digest"));
    let host = boot(&config).unwrap_or_else(|e| panic!("boot: {e}"));
    assert_eq!(
        Some(host.launch().host_data),
        config.attestation.simulated.host_data
    );
}

#[test]
fn a_sev_guest_host_never_starts_without_a_report_naming_its_policies() {
    // Here there is no /dev/sev-guest; on an SNP guest the launch's
    // HOST_DATA is not this test's policy set. Either way: no start.
    let mut config = config(&repo_root().join("policies"));
    config.attestation.provider = ProviderKind::SevGuest;
    let error = boot(&config)
        .err()
        .unwrap_or_else(|| panic!("started without genuine attestation"));
    assert!(
        matches!(
            &error,
            BootError::Attestation(
                AttestationError::BootReport(_) | AttestationError::PolicySet(_)
            )
        ),
        "{error:?}"
    );
}

/// Copies the repository's policies into a fresh folder.
fn policy_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = repo_root().join("policies");
    std::fs::create_dir(dir.path().join("plugins")).expect("mkdir");
    for name in [
        "log-allowlist.toml",
        "plugins/summarise.toml",
        "plugins/suggest.toml",
    ] {
        std::fs::copy(from.join(name), dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    dir
}

#[test]
fn measure_names_every_policy_file_and_changes_with_any_of_them() {
    let dir = policy_copy();
    let config = config(dir.path());
    let before = LaunchDigests::compute(&config, &policies(&config), HOST_BINARY).expect("measure");

    let json = serde_json::to_value(&before).expect("json");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "mode",
            "measurement",
            "host_data",
            "snp_policy",
            "host_binary",
            "plugins",
            "policy_files"
        ]
        .into()
    );
    assert_eq!(json["mode"], "simulated");
    assert_eq!(json["measurement"].as_str().map(str::len), Some(96));
    assert_eq!(json["host_data"].as_str().map(str::len), Some(64));
    assert_eq!(json["host_binary"], hex::encode(HOST_BINARY));
    let names: Vec<&str> = before
        .policy_files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "log-allowlist.toml",
            "plugins/suggest.toml",
            "plugins/summarise.toml"
        ]
    );
    let summarise = before
        .plugins
        .iter()
        .find(|p| p.name == "summarise")
        .expect("summarise measured");
    let manifest =
        std::fs::read_to_string(dir.path().join("plugins/summarise.toml")).expect("manifest");
    assert!(manifest.contains(&format!("sha256:{}", hex::encode(summarise.digest))));

    let path = dir.path().join("log-allowlist.toml");
    let mut allow_list = std::fs::read_to_string(&path).expect("read");
    allow_list.push_str("\n# reviewed again\n");
    std::fs::write(&path, allow_list).expect("write");
    let after = LaunchDigests::compute(&config, &policies(&config), HOST_BINARY).expect("measure");
    assert_ne!(after.host_data, before.host_data);
    assert_ne!(after.measurement, before.measurement);
    assert_ne!(after.policy_files[0].digest, before.policy_files[0].digest);
    assert_eq!(after.policy_files[1..], before.policy_files[1..]);
    assert_eq!(after.plugins, before.plugins);

    let other_binary =
        LaunchDigests::compute(&config, &policies(&config), [0xb2; 32]).expect("measure");
    assert_ne!(other_binary.measurement, after.measurement);
    assert_eq!(other_binary.host_data, after.host_data);

    // On hardware the firmware measures the VM image; the host cannot know it.
    let mut hardware = config.clone();
    hardware.attestation.provider = ProviderKind::SevGuest;
    let real =
        LaunchDigests::compute(&hardware, &policies(&hardware), HOST_BINARY).expect("measure");
    assert_eq!(
        (real.measurement, real.snp_policy, real.host_data),
        (None, None, after.host_data)
    );
    assert_eq!(
        serde_json::to_value(&real).expect("json")["mode"],
        "sev-guest"
    );
}

#[test]
fn measure_refuses_a_component_that_differs_from_its_manifest() {
    let plugins = tempfile::tempdir().expect("tempdir");
    let mut config = config(&repo_root().join("policies"));
    let real = config.plugin_dir.clone();
    for name in ["summarise.wasm", "suggest.wasm"] {
        std::fs::copy(real.join(name), plugins.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let mut tampered = std::fs::read(plugins.path().join("suggest.wasm")).expect("read");
    tampered.push(0);
    std::fs::write(plugins.path().join("suggest.wasm"), tampered).expect("write");
    config.plugin_dir = plugins.path().to_path_buf();
    let error = LaunchDigests::compute(&config, &policies(&config), HOST_BINARY)
        .expect_err("tampered component");
    assert!(
        matches!(&error, LaunchError::Load(LoadError::DigestMismatch { plugin, .. }) if plugin == "suggest"),
        "{error:?}"
    );
}
