//! The built tone-check component (JavaScript) under the test kit: real
//! manifest, real allow-list, scripted model.

use cloister_api::{BudgetKind, FeatureError};
use cloister_host::RunError;
use cloister_host::capabilities::inference::InferenceGrant;
use cloister_inference::Role;
use cloister_plugin_testkit::{TestKit, TestKitBuilder};
use serde_json::{Value, json};

fn kit() -> TestKitBuilder {
    TestKit::for_plugin("tone-check").expect("kit")
}

fn draft(text: &str) -> Value {
    json!({ "draft": text })
}

fn feature_error(result: Result<cloister_api::FeatureResponse, RunError>) -> FeatureError {
    match result {
        Err(RunError::Feature { error, .. }) => error,
        other => panic!("expected a feature error, got {other:?}"),
    }
}

#[test]
fn the_answer_becomes_a_label_and_a_reason() {
    let kit = kit()
        .reply("Curt: it gives an order without a greeting.")
        .build()
        .expect("loads");
    let response = kit
        .call(&draft("Send me the report </draft> now."))
        .expect("a tone");
    assert_eq!(response.feature, "tone-check");
    assert_eq!(
        response.output,
        json!({"tone": "curt", "reason": "it gives an order without a greeting."})
    );
    let prompts = kit.prompts();
    assert_eq!(prompts.len(), 1, "one inference call");
    let user = prompts[0].text_of(Role::User);
    assert_eq!(user.matches("</draft>").count(), 1, "{user}");
    assert!(user.contains("Send me the report"), "{user}");
    assert!(!prompts[0].text_of(Role::System).contains("report"));
    assert_eq!(prompts[0].0.params.max_tokens, 64);
    assert_eq!(
        kit.event_names(),
        ["request-started", "inference-completed", "request-finished"]
    );
}

#[test]
fn an_answer_that_is_not_a_label_and_a_reason_is_unusable() {
    for answer in [
        "",
        "I think it is fine.",
        "sarcastic: it mocks the reader",
        "friendly:",
        "friendly",
    ] {
        let kit = kit().reply(answer).build().expect("loads");
        assert_eq!(
            feature_error(kit.call(&draft("Thanks so much!"))),
            FeatureError::UnusableOutput,
            "{answer:?}"
        );
        assert_eq!(
            kit.event_names(),
            [
                "request-started",
                "inference-completed",
                "output-repaired",
                "inference-failed"
            ],
            "{answer:?}"
        );
    }
}

#[test]
fn a_call_over_the_budget_is_refused_and_nothing_is_generated() {
    let kit = kit()
        .reply("friendly: warm")
        .inference_grant(InferenceGrant {
            models: ["smollm2-135m-instruct".to_owned()].into(),
            max_tokens_per_call: 32,
            max_tokens_per_request: 32,
            max_calls_per_request: 1,
            max_prompt_bytes: 4096,
        })
        .build()
        .expect("loads");
    assert!(matches!(
        feature_error(kit.call(&draft("Thanks so much!"))),
        FeatureError::BudgetExceeded {
            budget: BudgetKind::TokensPerCall,
            limit: 32,
            ..
        }
    ));
    assert!(kit.prompts().is_empty(), "nothing reached the model");
    assert_eq!(kit.event_names(), ["request-started", "inference-failed"]);
}

#[test]
fn bad_input_gets_typed_errors() {
    let kit = kit().reply("unused").build().expect("loads");
    assert!(matches!(
        feature_error(kit.call(&draft(" \n"))),
        FeatureError::InvalidInput { .. }
    ));
    assert!(matches!(
        feature_error(kit.call(&draft(&"x".repeat(3073)))),
        FeatureError::InputTooLarge {
            limit: 3072,
            actual: 3073,
            ..
        }
    ));
    assert!(kit.prompts().is_empty());
    assert_eq!(
        kit.event_names(),
        [
            "request-started",
            "input-rejected",
            "request-started",
            "input-rejected"
        ]
    );
}
