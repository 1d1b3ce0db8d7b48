#![allow(missing_docs)] // criterion_group! generates undocumented items.

//! One request = a fresh instance from the cached `InstancePre` + one call,
//! with the deterministic backend, for a plugin in each language the host
//! serves (Rust, Python, JavaScript); pooling versus on-demand allocation.
//!
//! Needs built plugins: `cargo xtask build-plugins && cargo bench -p cloister-host`
//! (or `CLOISTER_PLUGIN_DIR` naming a folder of them, as for the tests). To
//! see where guest time goes, `perf record` it with `CLOISTER_PERF_MAP=1`,
//! which names compiled plugin functions in `/tmp/perf-<pid>.map`.

use std::path::PathBuf;
use std::sync::Arc;

use cloister_api::{FeatureRequest, SuggestRequest, Tone};
use cloister_host::capabilities::Capabilities;
use cloister_host::logfilter::{LogFilter, LogRecord, LogSink};
use cloister_host::{HostConfig, PolicySet, Profiler, RunError, Runtime, RuntimeConfig};
use cloister_inference::DeterministicBackend;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Discards records, so the benchmark measures the filter, not a growing buffer.
struct Discard;

impl LogSink for Discard {
    fn write(&self, record: &LogRecord) {
        std::hint::black_box(record);
    }
}

fn plugin_dir() -> PathBuf {
    std::env::var_os("CLOISTER_PLUGIN_DIR")
        .map_or_else(|| root().join("target/plugins"), PathBuf::from)
}

fn runtime(pooling: bool) -> Runtime {
    let policies =
        PolicySet::load(&HostConfig::open_dir(&root().join("policies")).expect("policies"))
            .expect("policies");
    let filter = Arc::new(LogFilter::new(
        policies.allow_list().clone(),
        Arc::new(Discard),
    ));
    let capabilities = Capabilities::new(
        Arc::new(DeterministicBackend::serving("smollm2-135m-instruct")),
        filter,
    );
    let profiler = if std::env::var_os("CLOISTER_PERF_MAP").is_some() {
        Profiler::PerfMap
    } else {
        Profiler::None
    };
    let config = RuntimeConfig {
        pooling,
        profiler,
        // Compiled once for the tests and every run of this benchmark
        // (development only); the code run is the same.
        compile_cache: Some(root().join("target/wasmtime-cache")),
        ..RuntimeConfig::default()
    };
    let mut runtime = Runtime::new(config, capabilities).expect("runtime");
    let plugins =
        HostConfig::open_dir(&plugin_dir()).expect("run `cargo xtask build-plugins` first");
    runtime
        .load_policy_set(&policies, &plugins)
        .expect("plugins load");
    runtime
}

/// One plugin of each language the host serves, with an input of its
/// own WIT type: (language, plugin, input).
fn per_language() -> [(&'static str, &'static str, serde_json::Value); 3] {
    let messages = json!([
        {"sender": "Ann", "sent-at": 0, "text": "Lunch moves to Friday at noon."},
        {"sender": "Ben", "sent-at": 60, "text": "Friday works for me."},
    ]);
    [
        (
            "rust",
            "summarise",
            json!({"messages": messages, "max-words": 20}),
        ),
        (
            "python",
            "key-points",
            json!({"messages": messages, "max-points": 3}),
        ),
        (
            "js",
            "tone-check",
            json!({"draft": "Send me the report by Friday."}),
        ),
    ]
}

fn requests(c: &mut Criterion) {
    let invalid = FeatureRequest::of(&SuggestRequest {
        draft: " ".into(),
        context: vec![],
        tone: Tone::Neutral,
        count: 1,
    });
    for (label, pooling) in [("pooling", true), ("on-demand", false)] {
        let runtime = runtime(pooling);
        let mut group = c.benchmark_group(label);
        // Instantiate + call + drop; the plugin rejects the input at once.
        group.bench_function("instantiate+call (suggest, rejected input)", |b| {
            b.iter(|| {
                runtime
                    .handle(&invalid)
                    .expect_err("empty draft is rejected")
            })
        });
        // A fresh instance + `run` per request, one plugin per language:
        // building the prompt, one call of the test backend, parsing its answer.
        for (language, plugin, input) in per_language() {
            group.bench_function(format!("fresh instance+run ({language}: {plugin})"), |b| {
                b.iter(|| match runtime.run(plugin, &input) {
                    // The test backend echoes its prompt, which a plugin
                    // may find unusable: a whole request all the same.
                    Ok(_) | Err(RunError::Feature { .. }) => {}
                    Err(error) => panic!("{plugin}: {error}"),
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, requests);
criterion_main!(benches);
