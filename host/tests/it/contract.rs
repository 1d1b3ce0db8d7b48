//! The open feature contract at the host's boundary: requests are routed by
//! feature name and checked against the input type the component declares
//! before any of its code runs; a component whose `run` does not have the
//! shape of a feature does not load.

use cloister_api::{FeatureRequest, RequestError};
use cloister_host::logfilter::AllowListLayer;
use cloister_host::serve::metrics::{FeatureMeter, MeteredRuntime, host_metrics};
use cloister_host::{LoadError, RunError};
use cloister_ratls::FeatureService as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::wasi::{fixture, named_manifest, runtime, summarise, wasi_imports};

#[test]
fn an_unknown_feature_is_refused_by_name() {
    let (runtime, _, _) = runtime();
    let error = runtime
        .run("translate", &summarise(1))
        .expect_err("nothing serves it");
    assert!(matches!(&error, RunError::UnknownPlugin(name) if name == "translate"));
    assert_eq!(
        RequestError::from(error),
        RequestError::UnknownFeature {
            name: "translate".into()
        }
    );
}

#[test]
fn an_input_that_does_not_fit_is_refused_with_its_path_before_the_plugin_runs() {
    let (mut runtime, filter, sink) = runtime();
    let component = fixture("wasi-guest");
    runtime
        .load_plugin(
            named_manifest("wasi-guest", &component, wasi_imports(&component)),
            &component,
        )
        .expect("loads");
    let mut input = summarise(3);
    input["messages"][2]["sent-at"] = serde_json::json!("yesterday");
    let subscriber = tracing_subscriber::registry().with(AllowListLayer::new(filter));
    let error = tracing::subscriber::with_default(subscriber, || runtime.run("wasi-guest", &input))
        .expect_err("does not fit");
    assert_eq!(
        error.to_string(),
        "plugin `wasi-guest`: the input does not fit its types: \
         input.messages[2].sent-at: expected u64, found string"
    );
    assert_eq!(
        RequestError::from(error),
        RequestError::InputMismatch {
            path: "input.messages[2].sent-at".into(),
            reason: "expected u64, found string".into(),
        }
    );
    // The fixture writes to stdout whenever it runs, and the host reports
    // the discarded bytes: nothing was written.
    assert!(
        sink.records().is_empty(),
        "the plugin ran: {:?}",
        sink.records()
    );

    let mut smuggled = summarise(1);
    smuggled["exfiltrate"] = serde_json::json!(true);
    assert!(matches!(
        runtime.run("wasi-guest", &smuggled),
        Err(RunError::InvalidInput { error, .. }) if error.path == "input.exfiltrate"
    ));
    assert!(runtime.run("wasi-guest", &summarise(1)).is_ok());
}

#[test]
fn a_component_without_a_feature_entry_point_does_not_load() {
    let cases = [
        (r#"(component)"#, "does not export `run`"),
        (
            r#"(component
                 (core module $m (func (export "run") (param i32) (result i32) local.get 0))
                 (core instance $i (instantiate $m))
                 (func $run (param "x" u32) (result u32) (canon lift (core func $i "run")))
                 (export "run" (func $run)))"#,
            "`run` must be `func(input: T) -> result<U, feature-error>`",
        ),
        (
            r#"(component
                 (core module $m
                   (memory (export "memory") 1)
                   (func (export "run") (param i32) (result i32) i32.const 0))
                 (core instance $i (instantiate $m))
                 (func $run (param "x" u32) (result (result u32 (error u32)))
                   (canon lift (core func $i "run") (memory (core memory $i "memory"))))
                 (export "run" (func $run)))"#,
            "its error type is not `cloister:feature/types.feature-error`",
        ),
    ];
    for (text, expected) in cases {
        let (mut runtime, _, _) = runtime();
        let component = wat::parse_str(text).expect("wat");
        let error = runtime
            .load_plugin(
                named_manifest("odd", &component, Default::default()),
                &component,
            )
            .expect_err(expected);
        assert!(
            matches!(
                error,
                LoadError::MissingExport { .. } | LoadError::BadEntryPoint { .. }
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains(expected),
            "`{error}`: {expected}"
        );
    }
}

/// The feature name is the client's text: it must not leave the host
/// through the aggregate metrics (a label per name would also let anyone
/// grow them without bound).
#[test]
fn a_made_up_feature_name_never_reaches_the_metrics() {
    let (runtime, _, _) = runtime();
    let mut metrics = host_metrics();
    let meter = FeatureMeter::new(&mut metrics, runtime.manifests().map(|m| m.name.as_str()));
    let service = MeteredRuntime::new(runtime, meter);
    let secret = "the-password-is-hunter2";
    assert_eq!(
        service.handle(FeatureRequest::new(secret, serde_json::json!({}))),
        Err(RequestError::UnknownFeature {
            name: secret.into()
        })
    );
    let text = metrics.render();
    assert!(!text.contains(secret), "{text}");
    assert!(
        text.contains(
            r#"cloister_host_feature_requests_total{feature="unknown",outcome="failed"} 1"#
        ),
        "{text}"
    );
}
