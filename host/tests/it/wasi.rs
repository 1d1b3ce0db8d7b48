//! A component that imports WASI p2 runs in the empty context: it loads only
//! when its manifest grants WASI, and then sees no environment, arguments or
//! directories, frozen clocks, and a stdout whose text never reaches a log.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloister_api::{FeatureResponse, Message, SummariseRequest, Summary, Typed as _};
use cloister_host::capabilities::{Capabilities, Grants};
use cloister_host::logfilter::{
    AllowList, AllowListLayer, FieldValue, LogFilter, MemorySink, Source,
};
use cloister_host::manifest::Limits;
use cloister_host::{Digest, LoadError, PluginManifest, RunError, Runtime, RuntimeConfig};
use cloister_inference::DeterministicBackend;
use tracing_subscriber::layer::SubscriberExt as _;

/// A fixture of `plugins/fixtures/<name>/<name>.wat`, compiled from its
/// text (see the file for what it does).
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../plugins/fixtures/{name}/{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn wasi_guest() -> Vec<u8> {
    fixture("wasi-guest")
}

fn manifest(component: &[u8], wasi: bool) -> PluginManifest {
    named_manifest("wasi-guest", component, wasi)
}

pub(crate) fn named_manifest(name: &str, component: &[u8], wasi: bool) -> PluginManifest {
    PluginManifest {
        name: name.into(),
        version: "0.0.0".into(),
        component: format!("{name}.wasm"),
        digest: Digest::of(component),
        imports: BTreeSet::new(),
        limits: Limits {
            memory_bytes: 1 << 20,
            table_elements: 100,
            time_ms: 500,
            max_output_bytes: 4096,
        },
        grants: Grants {
            wasi,
            ..Grants::default()
        },
    }
}

/// A runtime whose log filter admits only the host's report of discarded output.
pub(crate) fn runtime() -> (Runtime, Arc<LogFilter>, MemorySink) {
    let allow: AllowList = toml::from_str(
        "[request.plugin-output-discarded.fields]\n\
         plugin.labels = [\"wasi-guest\"]\n\
         bytes.buckets = [1, 24, 1000]\n",
    )
    .expect("allow-list");
    let sink = MemorySink::default();
    let filter = Arc::new(LogFilter::new(allow, Arc::new(sink.clone())));
    let capabilities = Capabilities::new(
        Arc::new(DeterministicBackend::serving("unused")),
        filter.clone(),
    );
    let config = RuntimeConfig {
        max_concurrent_instances: 4,
        ..RuntimeConfig::default()
    };
    (
        Runtime::new(config, capabilities).expect("runtime"),
        filter,
        sink,
    )
}

/// The input of the fixtures (a summarise input).
pub(crate) fn summarise(messages: usize) -> serde_json::Value {
    let message = Message {
        sender: "Ann".into(),
        sent_at: 1_700_000_000,
        text: "Lunch on Friday?".into(),
    };
    SummariseRequest {
        messages: vec![message; messages],
        max_words: 20,
    }
    .to_json()
}

#[test]
fn wasi_component_is_refused_without_the_grant() {
    let (mut runtime, _, _) = runtime();
    let component = wasi_guest();
    let error = runtime
        .load_plugin(manifest(&component, false), &component)
        .expect_err("wasi not granted");
    assert!(
        matches!(&error, LoadError::ImportNotGranted { import, .. } if import.starts_with("wasi:")),
        "{error}"
    );
    assert!(matches!(
        runtime.run("wasi-guest", &summarise(1)),
        Err(RunError::UnknownPlugin(_))
    ));
}

#[test]
fn wasi_component_runs_in_the_empty_context() {
    let (mut runtime, filter, sink) = runtime();
    let component = wasi_guest();
    runtime
        .load_plugin(manifest(&component, true), &component)
        .expect("granted wasi loads");

    let subscriber = tracing_subscriber::registry().with(AllowListLayer::new(filter.clone()));
    let responses: Vec<_> = tracing::subscriber::with_default(subscriber, || {
        (1..=2)
            .map(|messages| {
                runtime
                    .run("wasi-guest", &summarise(messages))
                    .expect("runs")
            })
            .collect()
    });

    for (response, messages) in responses.into_iter().zip(1..) {
        // Frozen clocks; no environment, arguments or preopened directories;
        // the stdout write succeeded (and went nowhere); the second request
        // does not see what the first wrote into its memory.
        let expected = "wall-clock=0000000000000000.00000000 monotonic-clock=0000000000000000 \
                        environment=00000000 arguments=00000000 preopens=00000000 stdout-write=00 leftover=0000";
        assert_eq!(
            response,
            FeatureResponse::new(
                "wasi-guest",
                Summary {
                    text: expected.into(),
                    messages_covered: messages
                }
                .to_json()
            )
        );
    }

    // What the guest wrote is counted, per request, and never kept.
    let records = sink.records();
    assert_eq!(records.len(), 2, "{records:?}");
    for record in &records {
        assert_eq!(record.source, Source::Host);
        assert_eq!(record.event, "plugin-output-discarded");
        assert_eq!(record.fields.get("bytes"), Some(&FieldValue::Count(24)));
        assert_eq!(
            record.fields.get("plugin"),
            Some(&FieldValue::Label("wasi-guest".into()))
        );
    }
    assert!(
        !format!("{records:?}").contains("hello"),
        "stdout text reached the log"
    );
    // request-completed (and wasmtime-wasi's own trace events, which name
    // no allow-listed event) are dropped and counted.
    assert!(filter.stats().dropped_events >= 2, "{:?}", filter.stats());
}

#[test]
fn wasi_blocking_calls_end_at_the_time_limit() {
    let (mut runtime, _, _) = runtime();
    let component = fixture("wasi-sleeper");
    let mut manifest = named_manifest("wasi-sleeper", &component, true);
    manifest.limits.time_ms = 100;
    runtime
        .load_plugin(manifest, &component)
        .expect("granted wasi loads");
    // The fixture sleeps for an hour in host code; on its own thread, so
    // that a host that cannot stop it fails this test instead of hanging it.
    let (done, outcome) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let _ = done.send(runtime.run("wasi-sleeper", &summarise(1)));
    });
    let outcome = outcome
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_else(|_| panic!("still blocked after {:?}", started.elapsed()));
    assert!(
        matches!(outcome, Err(RunError::TimeLimit { limit_ms: 100, .. })),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}
