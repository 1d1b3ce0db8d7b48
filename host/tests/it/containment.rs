//! A hostile component misbehaves in every way we know; each time the host
//! contains it with a clear, typed error and then serves a normal request.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloister_api::{BudgetKind, FeatureError, FeatureResponse, RequestError, Suggestions};
use cloister_host::capabilities::inference::InferenceGrant;
use cloister_host::capabilities::{Capabilities, Grants};
use cloister_host::logfilter::{AllowList, AllowListLayer, LogFilter, MemorySink, Source};
use cloister_host::manifest::Limits;
use cloister_host::{Digest, LoadError, PluginManifest, RunError, Runtime, RuntimeConfig};
use cloister_inference::DeterministicBackend;
use cloister_ratls::Cancellation;
use tracing_subscriber::layer::SubscriberExt as _;

const MODEL: &str = "smollm2-135m-instruct";

fn hostile_component() -> Vec<u8> {
    crate::wasi::built("hostile")
}

fn manifest(component: &[u8]) -> PluginManifest {
    PluginManifest {
        name: "hostile".into(),
        version: "0.0.0".into(),
        component: "hostile.wasm".into(),
        digest: Digest::of(component),
        imports: BTreeSet::from([
            "cloister:feature/inference@0.1.0".into(),
            "cloister:feature/log@0.1.0".into(),
        ]),
        limits: Limits {
            memory_bytes: 16 << 20,
            table_elements: 10_000,
            time_ms: 500,
            max_output_bytes: 4096,
        },
        grants: Grants {
            inference: Some(InferenceGrant {
                models: BTreeSet::from([MODEL.to_owned()]),
                max_tokens_per_call: 16,
                max_tokens_per_request: 32,
                max_calls_per_request: 4,
                max_prompt_bytes: 1024,
            }),
            ..Grants::default()
        },
    }
}

struct Host {
    runtime: Runtime,
    sink: MemorySink,
    filter: Arc<LogFilter>,
}

fn empty_runtime() -> Host {
    runtime_allowing("[plugin.request-finished.fields]\noutput-bytes.buckets = [0, 100, 1000]\n")
}

/// A runtime without plugins whose log allow-list is `allow_list` (TOML).
fn runtime_allowing(allow_list: &str) -> Host {
    let allow: AllowList = toml::from_str(allow_list).expect("allow-list");
    let sink = MemorySink::default();
    let filter = Arc::new(LogFilter::new(allow, Arc::new(sink.clone())));
    let capabilities = Capabilities::new(
        Arc::new(DeterministicBackend::serving(MODEL)),
        filter.clone(),
    );
    let config = RuntimeConfig {
        max_concurrent_instances: 8,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config, capabilities).expect("runtime");
    Host {
        runtime,
        sink,
        filter,
    }
}

fn host() -> Host {
    let mut host = empty_runtime();
    let component = hostile_component();
    host.runtime
        .load_plugin(manifest(&component), &component)
        .expect("hostile component loads");
    host
}

/// The hostile plugin's input: the misbehaviour to show.
fn order(draft: &str) -> serde_json::Value {
    serde_json::json!({ "draft": draft })
}

/// The hostile plugin's answer.
fn answer(items: Vec<String>) -> FeatureResponse {
    FeatureResponse::new("hostile", serde_json::json!(items))
}

fn ask(host: &Host, draft: &str) -> Result<FeatureResponse, RunError> {
    host.runtime.run("hostile", &order(draft))
}

fn assert_still_serves(host: &Host) {
    let response = ask(host, "hello").expect("a normal request after the failure");
    assert_eq!(response, answer(vec!["fine: hello".into()]));
}

#[test]
fn infinite_loop_hits_the_time_limit() {
    let host = host();
    let error = ask(&host, "loop").expect_err("must not return");
    assert!(
        matches!(error, RunError::TimeLimit { limit_ms: 500, .. }),
        "{error}"
    );
    assert_still_serves(&host);
}

#[test]
fn a_request_whose_caller_gave_up_stops_at_the_next_tick() {
    let host = host();
    let cancel = Cancellation::new();
    let caller = cancel.clone();
    let started = Instant::now();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        caller.cancel();
    });
    let outcome = host
        .runtime
        .run_cancellable("hostile", &order("loop"), &cancel);
    assert!(
        matches!(outcome, Err(RunError::Cancelled { .. })),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "stopped well before its 500 ms limit: {:?}",
        started.elapsed()
    );
    assert_still_serves(&host);
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let host = host();
    let error = ask(&host, "memory").expect_err("must not return");
    assert!(
        matches!(error, RunError::MemoryLimit { limit_bytes, .. } if limit_bytes == 16 << 20),
        "{error}"
    );
    assert_still_serves(&host);
}

#[test]
fn deep_recursion_overflows_its_stack_only() {
    let host = host();
    let error = ask(&host, "recurse").expect_err("must not return");
    assert!(matches!(error, RunError::StackOverflow { .. }), "{error}");
    assert_still_serves(&host);
}

#[test]
fn oversized_output_is_refused() {
    let host = host();
    let error = ask(&host, "oversized").expect_err("must not return");
    // What the client would receive: the text and its JSON envelope.
    let sent = serde_json::to_vec(&Ok::<_, RequestError>(answer(vec!["x".repeat(1 << 20)])))
        .expect("encodes")
        .len();
    assert!(
        matches!(error, RunError::OutputTooLarge { limit: 4096, actual, .. } if actual == sent as u64),
        "{error}"
    );
    assert_still_serves(&host);
}

#[test]
fn every_byte_of_a_response_counts_against_the_output_limit() {
    let host = host();
    // 65,536 empty suggestions (no text at all), and an error whose reason
    // is 64 KiB: each is far more than the 4 KiB the manifest allows.
    for draft in ["many-empty", "long-error"] {
        let outcome = ask(&host, draft);
        assert!(
            matches!(outcome, Err(RunError::OutputTooLarge { limit: 4096, actual, .. }) if actual > 65_536),
            "{draft}: {:?}",
            outcome.map(|response| response.output.to_string().len())
        );
    }
    assert_still_serves(&host);
}

#[test]
fn panic_becomes_a_trap_error() {
    let host = host();
    let error = ask(&host, "panic").expect_err("must not return");
    assert!(matches!(error, RunError::Trap { .. }), "{error}");
    assert!(
        error.to_string().contains("hostile"),
        "names the plugin: {error}"
    );
    assert_still_serves(&host);
}

#[test]
fn unlisted_log_event_is_dropped_and_counted() {
    let host = host();
    ask(&host, "unlisted-log").expect("the request itself succeeds");
    assert!(
        host.sink
            .records()
            .iter()
            .all(|r| r.event != "output-repaired")
    );
    assert!(host.filter.stats().dropped_events >= 1);
    assert_still_serves(&host);
}

#[test]
fn kept_records_name_the_plugin_that_emitted_them() {
    let mut host =
        runtime_allowing("[plugin.output-repaired.fields]\nerror-code.buckets = [0, 1, 10]\n");
    let component = hostile_component();
    host.runtime
        .load_plugin(manifest(&component), &component)
        .expect("hostile component loads");
    ask(&host, "unlisted-log").expect("the request succeeds");
    let records = host.sink.records();
    assert_eq!(
        records.len(),
        1,
        "output-repaired is allowed here: {records:?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r.source == Source::Plugin("hostile".into())),
        "{records:?}"
    );
}

#[test]
fn inference_beyond_the_budget_is_a_typed_error() {
    let host = host();
    let error = ask(&host, "over-budget").expect_err("budget must refuse");
    let RunError::Feature {
        error: feature @ FeatureError::BudgetExceeded { budget, limit, .. },
        ..
    } = &error
    else {
        panic!("expected an inference error, got {error}");
    };
    assert_eq!((*budget, *limit), (BudgetKind::TokensPerCall, 16));
    assert!(feature.to_string().contains("tokens-per-call"), "{feature}");
    // The client receives it typed, with the host's numbers.
    let RequestError::Feature(FeatureError::BudgetExceeded { used, .. }) =
        RequestError::from(error)
    else {
        panic!("the wire error is the budget error");
    };
    assert_eq!(
        used,
        u64::from(u32::MAX),
        "the call asked for u32::MAX tokens"
    );
    assert_still_serves(&host);
}

#[test]
fn streaming_delivers_pieces_then_the_whole() {
    let host = host();
    let Suggestions(items) = ask(&host, "stream")
        .expect("stream")
        .decode()
        .expect("wrong response kind");
    assert_eq!(items, ["one", " two", " three", "one two three/3"]);
}

#[test]
fn import_not_in_manifest_is_refused_by_name() {
    let mut host = empty_runtime();
    let component = hostile_component();
    let mut narrow = manifest(&component);
    narrow.imports.remove("cloister:feature/log@0.1.0");
    let error = host
        .runtime
        .load_plugin(narrow, &component)
        .expect_err("log is not granted");
    assert!(
        matches!(&error, LoadError::ImportNotGranted { import, .. } if import == "cloister:feature/log@0.1.0"),
        "{error}"
    );
    assert!(
        matches!(ask(&host, "hello"), Err(RunError::UnknownPlugin(_))),
        "nothing was loaded"
    );
}

#[test]
fn foreign_and_wasi_imports_are_refused_by_name() {
    for import in ["evil:net/socket@0.1.0", "wasi:cli/environment@0.2.0"] {
        let component =
            wat::parse_str(format!("(component (import \"{import}\" (instance)))")).expect("wat");
        let mut host = empty_runtime();
        let error = host
            .runtime
            .load_plugin(manifest(&component), &component)
            .expect_err("refused");
        assert!(
            matches!(&error, LoadError::ImportNotGranted { import: i, .. } if i == import),
            "{error}"
        );
    }
}

#[test]
fn tampered_component_is_refused() {
    let mut host = empty_runtime();
    let component = hostile_component();
    let reviewed = manifest(&component);
    let mut tampered = component.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let error = host
        .runtime
        .load_plugin(reviewed, &tampered)
        .expect_err("digest mismatch");
    assert!(matches!(error, LoadError::DigestMismatch { .. }), "{error}");
}

#[test]
fn component_without_entry_point_is_refused() {
    let mut host = empty_runtime();
    let component = wat::parse_str("(component)").expect("wat");
    let error = host
        .runtime
        .load_plugin(manifest(&component), &component)
        .expect_err("no export");
    assert!(matches!(error, LoadError::MissingExport { .. }), "{error}");
}

#[test]
fn concurrent_requests_are_isolated() {
    let host = host();
    std::thread::scope(|scope| {
        let runs: Vec<_> = ["a", "loop", "b", "memory", "c"]
            .into_iter()
            .map(|draft| (draft, scope.spawn(|| ask(&host, draft))))
            .collect();
        for (draft, run) in runs {
            let outcome = run.join().expect("thread");
            match draft {
                "loop" => assert!(matches!(outcome, Err(RunError::TimeLimit { .. }))),
                "memory" => assert!(matches!(outcome, Err(RunError::MemoryLimit { .. }))),
                _ => assert_eq!(
                    outcome.expect("normal"),
                    answer(vec![format!("fine: {draft}")])
                ),
            }
        }
    });
}

/// Two conversations that agree on their first 55 bytes (more than the 45
/// that the hostile plugin's first eight events can encode bit by bit) and
/// differ after.
const SECRETS: [&str; 2] = [
    "Ana to Ben, 09:14: the clinic called about my results. They are positive; please tell nobody.",
    "Ana to Ben, 09:14: the clinic called about my results. All clear, let us book the trip to Oslo!",
];

/// The repository's log allow-list.
fn reviewed_allow_list() -> String {
    let path = crate::common::repo_root().join("policies/log-allowlist.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The log lines one `smuggle:` request of the hostile plugin leaves under
/// the repository's allow-list, plugin and host events alike, as the
/// production sink writes them. The host's `duration_ms` is left out: it is
/// timing, which varies between two runs of the same request (its buckets
/// are part of the bound all the same).
fn smuggled(secret: &str) -> Vec<serde_json::Value> {
    let mut host = runtime_allowing(&reviewed_allow_list());
    let component = hostile_component();
    host.runtime
        .load_plugin(manifest(&component), &component)
        .expect("hostile component loads");
    let subscriber = tracing_subscriber::registry().with(AllowListLayer::new(host.filter.clone()));
    tracing::subscriber::with_default(subscriber, || {
        ask(&host, &format!("smuggle:{secret}")).expect("the request succeeds");
    });
    host.sink
        .records()
        .iter()
        .map(|record| {
            let mut line = serde_json::to_value(record).expect("encodes");
            if let Some(fields) = line["fields"].as_object_mut() {
                fields.remove("duration_ms");
            }
            line
        })
        .collect()
}

/// What the plugin's verbatim channel carries: `request-started` events
/// whose `input-bytes` is an index and whose `message-count` is eight bytes
/// of the secret.
fn decode(lines: &[serde_json::Value]) -> Vec<u8> {
    let mut chunks = std::collections::BTreeMap::new();
    for line in lines.iter().filter(|l| l["event"] == "request-started") {
        let fields = &line["fields"];
        if let (Some(index), Some(bytes)) = (
            fields["input-bytes"].as_u64(),
            fields["message-count"].as_u64(),
        ) {
            chunks.insert(index, bytes);
        }
    }
    chunks
        .values()
        .flat_map(|bytes| bytes.to_be_bytes())
        .filter(|&byte| byte != 0)
        .collect()
}

/// Whether `text` holds eight consecutive bytes of `secret`.
fn leaks(text: &[u8], secret: &str) -> bool {
    secret
        .as_bytes()
        .windows(8)
        .any(|run| text.windows(8).any(|window| window == run))
}

#[test]
fn a_plugin_cannot_smuggle_text_through_numeric_log_fields() {
    let outputs: Vec<Vec<serde_json::Value>> = SECRETS.iter().map(|s| smuggled(s)).collect();
    for (secret, lines) in SECRETS.iter().zip(&outputs) {
        let text = serde_json::to_string(lines).expect("encodes");
        assert!(
            !leaks(&decode(lines), secret) && !leaks(text.as_bytes(), secret),
            "the log carries the secret: {:?}",
            String::from_utf8_lossy(&decode(lines))
        );
    }
    // The plugin read all of each secret and wrote it every way it could:
    // what differs after byte 55 changed nothing in the log.
    assert_eq!(
        outputs[0], outputs[1],
        "two conversations, two different logs"
    );

    // Whatever the plugin does, the lines of one request are one of at most
    // 2^bits outputs: plugin lines are capped, every number is a bucket's
    // lower bound (the reviewed buckets are 0 and powers of ten), and the
    // bound is at most 64 bits.
    let allow: AllowList = toml::from_str(&reviewed_allow_list()).expect("allow-list");
    let bits = allow.bits_per_request();
    assert!(
        bits <= 64.0 && (bits - 62.16).abs() < 0.01,
        "{bits} bits per request"
    );
    let cap = allow.limits().plugin_events_per_request as usize;
    let lines = &outputs[0];
    assert!(
        lines.iter().filter(|l| l["source"] != "host").count() <= cap,
        "{lines:?}"
    );
    for line in lines {
        for value in line["fields"].as_object().expect("fields").values() {
            if let Some(number) = value.as_u64() {
                assert!(
                    number == 0 || 10u64.pow(number.ilog10()) == number,
                    "not a bucket bound: {line}"
                );
            }
        }
    }
}
