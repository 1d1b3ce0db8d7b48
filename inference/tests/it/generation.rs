//! The backend contract on the real model: limits, stop sequences,
//! cancellation, deadlines, token counts.

use crate::common;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use cloister_inference::{FinishReason, InferenceBackend, InferenceError, Prompt};
use common::{backend_with, chat, request};

fn collect(
    backend: &dyn InferenceBackend,
    request: &cloister_inference::GenerateRequest,
) -> (
    Result<cloister_inference::Generation, InferenceError>,
    Vec<String>,
) {
    let mut pieces = Vec::new();
    let result = backend.generate(request, &mut |piece| {
        pieces.push(piece.to_owned());
        ControlFlow::Continue(())
    });
    (result, pieces)
}

#[test]
fn answers_sensibly_within_max_tokens_with_exact_counts() {
    let backend = backend_with(|_| ());
    // Asks for more than 12 tokens, so that the limit (not the model) ends it.
    let prompt = chat("What is the capital of France? Answer, then describe the city at length.");
    let (result, pieces) = collect(&backend, &request(prompt.clone(), 12));
    let generation = result.expect("generation");
    assert_eq!(generation.finish, FinishReason::Length);
    assert_eq!(generation.usage.generated_tokens, 12);
    let Prompt::Chat(messages) = &prompt else {
        unreachable!()
    };
    let prompt_ids = backend.codec().encode_chat(messages).expect("encode");
    assert_eq!(generation.usage.prompt_tokens as usize, prompt_ids.len());
    assert_eq!(pieces.concat(), generation.text);
    assert!(
        generation.text.contains("Paris"),
        "answer: {:?}",
        generation.text
    );
    // Token count matches the text: re-encoding the output gives as many tokens.
    let reencoded = backend
        .codec()
        .encode_literal(&generation.text)
        .expect("encode");
    assert_eq!(reencoded.len(), 12, "text {:?}", generation.text);
    assert_eq!(backend.stats().generated_tokens, 12);
}

#[test]
fn stop_sequence_ends_generation_and_is_never_streamed() {
    let backend = backend_with(|_| ());
    let prompt = chat("Write one sentence about the sea.");
    let (full, _) = collect(&backend, &request(prompt.clone(), 16));
    let full = full.expect("generation").text;
    // Stop at the fourth word of what the model says unprompted.
    let stop = full
        .split_whitespace()
        .nth(3)
        .expect("at least four words")
        .to_owned();
    let cut = full.find(&stop).expect("word in text");
    let mut stopping = request(prompt, 16);
    stopping.params.stop = vec!["never appears \u{1F600}".into(), stop.clone()];
    let (result, pieces) = collect(&backend, &stopping);
    let generation = result.expect("generation");
    assert_eq!(generation.finish, FinishReason::StopSequence);
    assert_eq!(generation.text, full[..cut], "stop {stop:?}");
    assert_eq!(pieces.concat(), generation.text);
    assert!(pieces.iter().all(|p| !p.contains(&stop)));
    assert!(generation.usage.generated_tokens < 16);
}

#[test]
fn callback_cancels_generation() {
    let backend = backend_with(|_| ());
    let mut calls = 0;
    let generation = backend
        .generate(&request(chat("Count from one to fifty."), 64), &mut |_| {
            calls += 1;
            if calls == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .expect("generation");
    assert_eq!(generation.finish, FinishReason::Cancelled);
    assert_eq!(calls, 3);
    assert!(generation.usage.generated_tokens >= 3 && generation.usage.generated_tokens < 64);
}

#[test]
fn deadline_is_enforced_before_and_during_generation() {
    let backend = backend_with(|_| ());
    let mut sink = |_: &str| ControlFlow::Continue(());
    let mut past = request(chat("Hello"), 8);
    past.deadline = Some(Instant::now());
    assert_eq!(
        backend.generate(&past, &mut sink),
        Err(InferenceError::DeadlineExceeded)
    );
    let mut soon = request(chat("Tell me a long story about a dragon."), 2000);
    soon.deadline = Some(Instant::now() + Duration::from_millis(300));
    assert_eq!(
        backend.generate(&soon, &mut sink),
        Err(InferenceError::DeadlineExceeded)
    );
    // The engine dropped that sequence and still serves the next request.
    let (result, _) = collect(&backend, &request(chat("Hello"), 2));
    assert_eq!(result.expect("generation").usage.generated_tokens, 2);
}

#[test]
fn rejects_unknown_model_bad_parameters_and_oversized_prompts() {
    let backend = backend_with(|c| c.context_tokens = 64);
    let mut sink = |_: &str| ControlFlow::Continue(());
    let mut unknown = request(chat("hi"), 4);
    unknown.model = "gpt-9".into();
    assert_eq!(
        backend.generate(&unknown, &mut sink),
        Err(InferenceError::ModelUnavailable("gpt-9".into()))
    );
    for tweak in [
        |r: &mut cloister_inference::GenerateRequest| r.params.temperature = f32::NAN,
        |r: &mut cloister_inference::GenerateRequest| r.params.top_p = 0.0,
        |r: &mut cloister_inference::GenerateRequest| r.params.repeat_penalty = -1.0,
    ] {
        let mut bad = request(chat("hi"), 4);
        tweak(&mut bad);
        assert!(matches!(
            backend.generate(&bad, &mut sink),
            Err(InferenceError::InvalidRequest(_))
        ));
    }
    let empty = request(Prompt::Text("  ".into()), 4);
    assert!(matches!(
        backend.generate(&empty, &mut sink),
        Err(InferenceError::InvalidRequest(_))
    ));
    let long = request(chat(&"word ".repeat(100)), 4);
    assert!(matches!(
        backend.generate(&long, &mut sink),
        Err(InferenceError::InvalidRequest(_))
    ));
    // A prompt that fits gets only the room left in the context.
    let fits = request(chat(&"word ".repeat(20)), 1000);
    let generation = backend.generate(&fits, &mut sink).expect("generation");
    assert!(generation.usage.prompt_tokens + generation.usage.generated_tokens <= 64);
}

#[test]
fn sampling_is_reproducible_per_seed() {
    let backend = backend_with(|_| ());
    let mut sampled = request(chat("Name a colour."), 8);
    sampled.params.temperature = 0.9;
    sampled.params.top_k = 40;
    sampled.params.top_p = 0.95;
    sampled.params.seed = 7;
    let (a, _) = collect(&backend, &sampled);
    let (b, _) = collect(&backend, &sampled);
    assert_eq!(a.expect("first").text, b.expect("second").text);
}
