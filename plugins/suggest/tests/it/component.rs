//! The built suggest component under the test kit: real manifest, real
//! allow-list, scripted model.

use cloister_api::{
    FeatureError, FeatureRequest, FeatureResponse, Message, SuggestRequest, Suggestions, Tone,
};
use cloister_host::RunError;
use cloister_inference::Role;
use cloister_plugin_testkit::TestKit;

fn draft(text: &str, tone: Tone, count: u8) -> FeatureRequest {
    FeatureRequest::of(&SuggestRequest {
        draft: text.into(),
        context: (0..8)
            .map(|i| Message {
                sender: "Maria".into(),
                sent_at: i * 60,
                text: format!("context {i}"),
            })
            .collect(),
        tone,
        count,
    })
}

fn items(response: FeatureResponse) -> Vec<String> {
    assert_eq!(response.feature(), "suggest");
    match response.decode::<Suggestions>() {
        Ok(Suggestions(items)) => items,
        Err(error) => panic!("not suggestions: {error}: {response:?}"),
    }
}

#[test]
fn distinct_rewrites_one_call_each_with_tone_and_quoted_draft() {
    let kit = TestKit::for_plugin("suggest")
        .expect("kit")
        .respond_with(|request| {
            let option = ["first", "second", "third"][request.params.seed as usize % 3];
            Ok(format!("\"I cannot make it at 5 ({option}).\""))
        })
        .build()
        .expect("loads");
    let got = items(
        kit.run(draft("cant make it at 5", Tone::Formal, 3))
            .expect("suggestions"),
    );
    assert_eq!(
        got,
        [
            "I cannot make it at 5 (first).",
            "I cannot make it at 5 (second).",
            "I cannot make it at 5 (third)."
        ]
    );

    let prompts = kit.prompts();
    assert_eq!(prompts.len(), 3);
    assert_eq!(
        prompts[0].0.params.temperature, 0.0,
        "the first rewrite is greedy"
    );
    assert!(prompts[1].0.params.temperature > 0.0);
    let system = prompts[0].text_of(Role::System);
    let user = prompts[0].text_of(Role::User);
    assert!(system.contains("formal"), "{system}");
    assert!(
        user.contains("<draft>\ncant make it at 5\n</draft>"),
        "{user}"
    );
    assert!(
        user.contains("context 7") && !user.contains("context 1"),
        "only recent context: {user}"
    );
}

#[test]
fn identical_answers_collapse_to_one() {
    let kit = TestKit::for_plugin("suggest")
        .expect("kit")
        .reply("Sorry, I'll be late.")
        .build()
        .expect("loads");
    let got = items(
        kit.run(draft("late", Tone::Friendly, 4))
            .expect("suggestions"),
    );
    assert_eq!(got, ["Sorry, I'll be late."]);
    assert_eq!(
        kit.event_names().last().map(String::as_str),
        Some("request-finished")
    );
}

#[test]
fn bad_input_gets_typed_errors_before_any_inference() {
    let kit = TestKit::for_plugin("suggest")
        .expect("kit")
        .reply("x")
        .build()
        .expect("loads");
    let feature_error = |request| match kit.run(request) {
        Err(RunError::Feature { error, .. }) => error,
        other => panic!("expected a feature error, got {other:?}"),
    };
    assert!(matches!(
        feature_error(draft("   ", Tone::Neutral, 1)),
        FeatureError::InvalidInput { .. }
    ));
    assert!(matches!(
        feature_error(draft("hi", Tone::Neutral, 0)),
        FeatureError::InvalidInput { .. }
    ));
    assert!(matches!(
        feature_error(draft("hi", Tone::Neutral, 6)),
        FeatureError::InvalidInput { .. }
    ));
    let long = "z".repeat(2049);
    assert!(matches!(
        feature_error(draft(&long, Tone::Neutral, 1)),
        FeatureError::InputTooLarge { limit: 2048, .. }
    ));
    assert!(kit.prompts().is_empty());
}

#[test]
fn unusable_answers_are_not_suggested() {
    let kit = TestKit::for_plugin("suggest")
        .expect("kit")
        .reply("Rewritten message:")
        .build()
        .expect("loads");
    assert!(matches!(
        kit.run(draft("hi", Tone::Concise, 2)),
        Err(RunError::Feature {
            error: FeatureError::UnusableOutput,
            ..
        })
    ));
}
