//! The built key-points component (Python) under the test kit: real
//! manifest, real allow-list, scripted model.

use cloister_api::{BudgetKind, FeatureError};
use cloister_host::RunError;
use cloister_host::capabilities::inference::InferenceGrant;
use cloister_inference::Role;
use cloister_plugin_testkit::{TestKit, TestKitBuilder};
use serde_json::{Value, json};

fn kit() -> TestKitBuilder {
    TestKit::for_plugin("key-points").expect("kit")
}

fn conversation(texts: &[(&str, &str)], max_points: u32) -> Value {
    let messages: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, (sender, text))| {
            json!({"sender": sender, "sent-at": 1_764_064_800 + 60 * i as u64, "text": text})
        })
        .collect();
    json!({"messages": messages, "max-points": max_points})
}

const LUNCH: [(&str, &str); 3] = [
    ("Alice", "Lunch on Friday instead of Thursday?"),
    ("Bruno", "Friday works, I'll book Trattoria Roma."),
    ("Alice", "Great, see you at noon."),
];

fn feature_error(result: Result<cloister_api::FeatureResponse, RunError>) -> FeatureError {
    match result {
        Err(RunError::Feature { error, .. }) => error,
        other => panic!("expected a feature error, got {other:?}"),
    }
}

#[test]
fn points_keep_only_lines_tied_to_real_messages() {
    let kit = kit()
        .reply(
            "Here are the key points:\n\
             - Lunch moved to Friday [0, 1]\n\
             2. Bruno books Trattoria Roma [1, 1].\n\
             - Carol brings the cake [7]\n\
             - Everyone loves cats [2]\n\
             - Meeting at noon",
        )
        .build()
        .expect("loads");
    let response = kit.call(&conversation(&LUNCH, 0)).expect("key points");
    assert_eq!(response.feature, "key-points");
    assert_eq!(
        response.output,
        json!({"points": [
            {"text": "Lunch moved to Friday", "messages": [0, 1]},
            {"text": "Bruno books Trattoria Roma", "messages": [1]},
        ]}),
        "a citation of no message, a point sharing no word with its messages \
         and a point citing nothing are dropped"
    );

    let prompts = kit.prompts();
    assert_eq!(prompts.len(), 1, "one inference call");
    let user = prompts[0].text_of(Role::User);
    assert!(
        user.contains("[0] Alice: Lunch on Friday instead of Thursday?\n[1] Bruno:"),
        "{user}"
    );
    assert!(!prompts[0].text_of(Role::System).contains("Trattoria"));
    assert_eq!(
        prompts[0].0.params.max_tokens,
        5 * 40,
        "default of 5 points"
    );
    assert_eq!(
        kit.event_names(),
        [
            "request-started",
            "inference-completed",
            "output-repaired",
            "request-finished"
        ]
    );
}

#[test]
fn at_most_the_points_asked_for() {
    let kit = kit()
        .reply("- Lunch on Friday [0]\n- Friday works [1]\n- Noon it is [2]")
        .build()
        .expect("loads");
    let response = kit.call(&conversation(&LUNCH, 2)).expect("key points");
    assert_eq!(response.output["points"].as_array().map(Vec::len), Some(2));
    assert_eq!(kit.prompts()[0].0.params.max_tokens, 2 * 40);
}

#[test]
fn output_without_a_grounded_point_is_unusable() {
    for answer in [
        "I cannot help with that.",
        "- Cats [9]",
        "",
        "- Dogs bark [0]",
    ] {
        let kit = kit().reply(answer).build().expect("loads");
        assert_eq!(
            feature_error(kit.call(&conversation(&LUNCH, 0))),
            FeatureError::UnusableOutput,
            "{answer:?}"
        );
        assert!(
            !kit.event_names().contains(&"request-finished".to_owned()),
            "{answer:?}"
        );
    }
}

#[test]
fn a_call_over_the_budget_is_refused_and_nothing_is_generated() {
    let kit = kit()
        .reply("- Lunch on Friday [0]")
        .inference_grant(InferenceGrant {
            models: ["smollm2-135m-instruct".to_owned()].into(),
            max_tokens_per_call: 100,
            max_tokens_per_request: 100,
            max_calls_per_request: 1,
            max_prompt_bytes: 8192,
        })
        .build()
        .expect("loads");
    assert!(matches!(
        feature_error(kit.call(&conversation(&LUNCH, 0))),
        FeatureError::BudgetExceeded {
            budget: BudgetKind::TokensPerCall,
            limit: 100,
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
        feature_error(kit.call(&conversation(&[("A", "  ")], 0))),
        FeatureError::InvalidInput { .. }
    ));
    assert!(matches!(
        feature_error(kit.call(&conversation(&LUNCH, 11))),
        FeatureError::InvalidInput { .. }
    ));
    let many = vec![("A", "hi"); 201];
    assert!(matches!(
        feature_error(kit.call(&conversation(&many, 0))),
        FeatureError::InputTooLarge {
            limit: 200,
            actual: 201,
            ..
        }
    ));
    let long = "word ".repeat(1000);
    assert!(matches!(
        feature_error(kit.call(&conversation(&[("A", &long)], 0))),
        FeatureError::InputTooLarge { .. }
    ));
    assert!(kit.prompts().is_empty());
    assert_eq!(
        kit.event_names().last().map(String::as_str),
        Some("input-rejected")
    );
}
