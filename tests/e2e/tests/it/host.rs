//! `cloister-host serve` in-process on loopback, behind a relay and a
//! gateway running their DEFAULT configuration (so their default size limits
//! are shown to carry attestation evidence), with the real plugins, the real
//! policies and the deterministic inference backend.
//!
//! Attestation is SIMULATED on the public development platform; the client
//! accepts it only because its policy sets `allow_simulated`, and only for
//! the measurement and HOST_DATA that `measure` computes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cloister_api::{FeatureError, FeatureRequest, RequestError, Summary};
use cloister_attestation::VerifyError;
use cloister_client::{Client, OhttpTransport, UncheckedKeys};
use cloister_gateway::NoRedeemer;
use cloister_host::launch::LaunchDigests;
use cloister_inference::InferenceBackend;
use cloister_inference_candle::{CandleBackend, CandleConfig};
use cloister_ratls::{ClientError as RatlsError, ClientSession};
use cloister_test_support::{Loopback, bind_loopback, forward_to};
use tokio::sync::oneshot;

use crate::development::verifier;
use crate::host_common::{HOST_BINARY, boot, boot_with, config, engine, policies, repo_root};

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
        crate::common::loopback_client_config(servers.relay_url, servers.key_config_url),
        UncheckedKeys,
    )
    .unwrap_or_else(|e| panic!("client: {e}"))
}

pub(crate) fn team_lunch() -> FeatureRequest {
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
        LaunchDigests::compute(
            &config,
            &policies(&config),
            HOST_BINARY,
            &engine().identity()
        )
        .expect("measure")
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
        matches!(response.decode::<Summary>(), Ok(Summary { text, messages_covered: 6 }) if !text.is_empty()),
        "{response:?}"
    );

    // The Python and JavaScript features are served next to it. The
    // deterministic backend replays the prompt: key-points takes the
    // prompt's numbered messages for points, each citing a message that
    // exists (never one beyond the conversation); tone-check finds no tone
    // label in it and refuses with its typed error.
    let messages = team_lunch().input["messages"].clone();
    let count = messages.as_array().map_or(0, Vec::len) as u64;
    let conversation = serde_json::json!({ "messages": messages, "max-points": 3 });
    let points = session
        .request(&FeatureRequest::new("key-points", conversation))
        .await
        .unwrap_or_else(|e| panic!("key-points: {e}"));
    let points = points.output["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!points.is_empty() && points.len() <= 3, "{points:?}");
    for point in &points {
        let cited = point["messages"].as_array().cloned().unwrap_or_default();
        assert!(
            !cited.is_empty() && cited.iter().all(|m| m.as_u64().is_some_and(|m| m < count)),
            "a point cites a message the conversation does not have: {point}"
        );
    }
    let draft = serde_json::json!({ "draft": "Thanks, see you Friday!" });
    match session
        .request(&FeatureRequest::new("tone-check", draft))
        .await
    {
        Err(RatlsError::Feature(RequestError::Feature(FeatureError::UnusableOutput))) => {}
        other => panic!("tone-check: {other:?}"),
    }

    let health: serde_json::Value = serde_json::from_str(
        &crate::common::get_text(&format!("http://{host_addr}/healthz")).await,
    )
    .unwrap_or_else(|e| panic!("healthz is JSON: {e}"));
    assert_eq!(health["status"], "ok");
    assert!(
        health["attestation"]
            .as_str()
            .is_some_and(|a| a.starts_with("SIMULATED")),
        "{health}"
    );
    assert_eq!(health["inference_simulated"], true);

    let metrics = crate::common::get_text(&format!("http://{host_addr}/metrics")).await;
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

/// The candle engine on the shipped model in `model_dir`, one thread.
fn candle_engine(model_dir: &std::path::Path) -> Arc<dyn InferenceBackend> {
    let config = CandleConfig {
        model_dir: model_dir.to_path_buf(),
        threads: 1,
        ..CandleConfig::default()
    };
    Arc::new(CandleBackend::load(&config).unwrap_or_else(|e| panic!("model: {e}")))
}

/// An operator swaps the model weights (one byte of the last tensor
/// changed: the file still loads and serves) under a host whose policies,
/// settings and binary are the released ones. Its HOST_DATA changes with
/// the weights, so a client that accepts only the released launch refuses
/// it at attestation, before any request is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_other_model_weights_is_refused_by_the_client() {
    let config = config(&repo_root().join("policies"));
    let model_dir = std::env::var_os("CLOISTER_MODEL_DIR").map_or_else(
        || repo_root().join("target/models"),
        std::path::PathBuf::from,
    );
    let model_file = model_dir.join(CandleConfig::DEFAULT_MODEL_FILE);
    let mut weights = std::fs::read(&model_file).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run inference/fetch-model.sh)",
            model_file.display()
        )
    });
    let released = tokio::task::block_in_place(|| boot_with(&config, candle_engine(&model_dir)))
        .unwrap_or_else(|e| panic!("boot: {e}"))
        .launch()
        .clone();

    let swapped_dir = tempfile::tempdir().expect("tempdir");
    if let Some(last) = weights.last_mut() {
        *last ^= 0x01;
    }
    std::fs::write(
        swapped_dir.path().join(CandleConfig::DEFAULT_MODEL_FILE),
        &weights,
    )
    .expect("write the swapped model");
    drop(weights);
    let swapped =
        tokio::task::block_in_place(|| boot_with(&config, candle_engine(swapped_dir.path())))
            .unwrap_or_else(|e| panic!("boot: {e}"));
    let launch = swapped.launch().clone();
    assert_ne!(launch.model, released.model);
    assert_eq!(
        (launch.policy_set, launch.host_config),
        (released.policy_set, released.host_config),
        "only the weights differ"
    );
    assert_ne!(launch.host_data, released.host_data);

    let (listener, host_addr) = bind_loopback().await;
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(swapped.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = gateway_and_relay(host_addr).await;
    let transport = OhttpTransport::new(Arc::new(client), "cloister.invalid");
    // On hardware the image, and so the measurement, is the released one.
    // A simulated measurement also covers HOST_DATA: release the swapped
    // host's measurement with the released HOST_DATA, as hardware would.
    let as_on_hardware = LaunchDigests {
        measurement: launch.measurement,
        ..released.clone()
    };
    let verifier = tokio::task::block_in_place(|| verifier(&as_on_hardware));
    let refused = ClientSession::establish(transport, &verifier).await;
    let error = refused
        .err()
        .unwrap_or_else(|| panic!("a host with other weights was accepted"));
    assert!(
        matches!(
            &error,
            RatlsError::Attestation(VerifyError::HostDataNotAccepted(_))
        ),
        "{error:?}"
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
}
