//! A component that imports WASI p2 runs in the empty context: it loads only
//! when its manifest lists every WASI interface it imports, and then sees no
//! environment, arguments or directories, frozen clocks, and a stdout whose
//! text never reaches a log.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloister_api::{FeatureResponse, Message, SummariseRequest, Summary, Typed as _};
use cloister_host::capabilities::inference::InferenceGrant;
use cloister_host::capabilities::{Capabilities, Grants};
use cloister_host::logfilter::{
    AllowList, AllowListLayer, FieldValue, LogFilter, MemorySink, Source,
};
use cloister_host::manifest::Limits;
use cloister_host::{
    Digest, LoadError, PluginManifest, RunError, Runtime, RuntimeConfig, component_interfaces,
};
use cloister_inference::DeterministicBackend;
use tracing_subscriber::layer::SubscriberExt as _;

/// A fixture of `plugins/fixtures/<name>/<name>.wat`, compiled from its
/// text (see the file for what it does).
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../plugins/fixtures/{name}/{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A component of `target/plugins` (or `$CLOISTER_PLUGIN_DIR`), built by
/// `cargo xtask build-plugins`.
pub(crate) fn built(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("CLOISTER_PLUGIN_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"),
        PathBuf::from,
    );
    let path = dir.join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `cargo xtask build-plugins` first",
            path.display()
        )
    })
}

fn wasi_guest() -> Vec<u8> {
    fixture("wasi-guest")
}

fn manifest(component: &[u8], wasi: BTreeSet<String>) -> PluginManifest {
    named_manifest("wasi-guest", component, wasi)
}

/// Every WASI interface `component` imports: the `wasi` list that lets it load.
pub(crate) fn wasi_imports(component: &[u8]) -> BTreeSet<String> {
    let (imports, _) = component_interfaces(component).expect("a component");
    imports
        .into_iter()
        .filter(|i| i.starts_with("wasi:"))
        .collect()
}

pub(crate) fn named_manifest(
    name: &str,
    component: &[u8],
    wasi: BTreeSet<String>,
) -> PluginManifest {
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
        compile_cache: Some(crate::common::compile_cache()),
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
        .load_plugin(manifest(&component, BTreeSet::new()), &component)
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
fn a_wasi_import_the_manifest_does_not_list_is_refused() {
    let (mut runtime, _, _) = runtime();
    let component = wasi_guest();
    let mut listed = wasi_imports(&component);
    assert!(listed.remove("wasi:cli/environment@0.2.0"), "{listed:?}");
    let error = runtime
        .load_plugin(manifest(&component, listed), &component)
        .expect_err("environment not listed");
    assert!(
        matches!(&error, LoadError::ImportNotGranted { import, .. } if import == "wasi:cli/environment@0.2.0"),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "plugin `wasi-guest` imports `wasi:cli/environment@0.2.0`, which its manifest does not grant"
    );
    // Another version of a listed interface is another interface.
    let other_version = wasi_imports(&component)
        .into_iter()
        .map(|i| i.replace("environment@0.2.0", "environment@0.2.9"))
        .collect();
    assert!(matches!(
        runtime.load_plugin(manifest(&component, other_version), &component),
        Err(LoadError::ImportNotGranted { .. })
    ));
}

#[test]
fn wasi_component_runs_in_the_empty_context() {
    let (mut runtime, filter, sink) = runtime();
    let component = wasi_guest();
    runtime
        .load_plugin(manifest(&component, wasi_imports(&component)), &component)
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
        // does not see what the first wrote into its memory or globals.
        let expected = "wall-clock=0000000000000000.00000000 monotonic-clock=0000000000000000 \
                        environment=00000000 arguments=00000000 preopens=00000000 stdout-write=00 leftover=000000";
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
    let mut manifest = named_manifest("wasi-sleeper", &component, wasi_imports(&component));
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

#[test]
fn python_and_js_plugins_find_no_files_env_or_sockets() {
    // What a leaky context would hand over: a file that exists, a variable
    // that is set, a socket that listens.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let probe = serde_json::json!({
        "path": concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        "variable": "PATH",
        "address": listener.local_addr().expect("address").to_string(),
    });
    assert!(std::env::var_os("PATH").is_some());
    let (mut runtime, _, _) = runtime();
    let guest = wasi_guest();
    runtime
        .load_plugin(manifest(&guest, wasi_imports(&guest)), &guest)
        .expect("loads");
    for name in ["py-sandbox", "js-sandbox"] {
        let component = built(name);
        let mut manifest = named_manifest(name, &component, wasi_imports(&component));
        // The shared `types` interface uses `inference`'s error type, so the
        // toolchains import `inference` too; the fixtures never call it.
        manifest.imports = BTreeSet::from(["cloister:feature/inference@0.1.0".to_owned()]);
        manifest.grants.inference = Some(InferenceGrant {
            models: BTreeSet::from(["unused".to_owned()]),
            max_tokens_per_call: 1,
            max_tokens_per_request: 1,
            max_calls_per_request: 1,
            max_prompt_bytes: 1,
        });
        manifest.limits = Limits {
            memory_bytes: 64 << 20,
            table_elements: 20_000,
            time_ms: 10_000,
            max_output_bytes: 4096,
        };
        runtime.load_plugin(manifest, &component).expect("loads");
        let response = runtime.run(name, &probe).expect("runs to the end");
        for attempt in ["file", "env", "socket"] {
            let outcome = response.output[attempt].as_str().unwrap_or_default();
            assert!(
                outcome.starts_with("error: "),
                "{name} {attempt}: {outcome} (whole answer {:?})",
                response.output
            );
        }
        // The host keeps serving.
        runtime
            .run("wasi-guest", &summarise(1))
            .expect("the next request is served");
    }
}
