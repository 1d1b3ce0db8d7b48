//! `embed`: mean-pooled, final-normed hidden states of the served model.

use crate::common;

use cloister_inference::{EmbedRequest, InferenceBackend, InferenceError};
use cloister_inference_candle::{CandleBackend, CandleConfig};
use common::backend_with;

/// Width of SmolLM2-135M's residual stream.
const HIDDEN: usize = 576;

fn embed(backend: &CandleBackend, texts: &[&str]) -> Result<Vec<Vec<f32>>, InferenceError> {
    backend.embed(&EmbedRequest {
        model: CandleConfig::DEFAULT_MODEL_NAME.into(),
        texts: texts.iter().map(|t| (*t).to_owned()).collect(),
        deadline: None,
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn similar_texts_embed_closer_than_unrelated_ones() {
    let backend = backend_with(|_| {});
    // (a, paraphrase of a, unrelated to both)
    let triples = [
        (
            "The team meeting has been moved to Friday afternoon.",
            "We rescheduled the team meeting for Friday afternoon.",
            "Penguins live in the cold waters around Antarctica.",
        ),
        (
            "I am running late, I will be there at half past five.",
            "Sorry, I'm late: I'll arrive at 5:30.",
            "The recipe needs two cups of flour and three eggs.",
        ),
        (
            "Can you book a table for six at the Italian restaurant?",
            "Please reserve a table for six people at the Italian place.",
            "The train to Berlin leaves from platform nine.",
        ),
    ];
    for (a, paraphrase, unrelated) in triples {
        let vectors = embed(&backend, &[a, paraphrase, unrelated]).expect("embed");
        assert_eq!(vectors.len(), 3);
        for vector in &vectors {
            assert_eq!(vector.len(), HIDDEN, "one value per hidden dimension");
            let norm = cosine(vector, vector).sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "unit length, not {norm}");
        }
        let close = cosine(&vectors[0], &vectors[1]);
        let far = cosine(&vectors[0], &vectors[2]).max(cosine(&vectors[1], &vectors[2]));
        eprintln!("{a:?}: paraphrase {close:.4}, unrelated {far:.4}");
        assert!(
            close > far + MARGIN,
            "paraphrases at {close:.4} are not closer than unrelated texts at {far:.4} by {MARGIN}"
        );
    }
}

/// How much closer paraphrases must be than unrelated texts.
const MARGIN: f32 = 0.1;

const TEXTS: [&str; 3] = [
    "Lunch moves to Friday at 12:45 at Trattoria Roma.",
    "Chen is free after 12:30.",
    "Dana from design might join us, she will confirm tomorrow morning.",
];

/// The largest difference between two vectors' components.
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn embeddings_are_deterministic_and_independent_of_the_batch() {
    let backend = backend_with(|_| {});
    let batch = embed(&backend, &TEXTS).expect("batch");
    let again = embed(&backend, &TEXTS).expect("batch again");
    assert_eq!(batch, again, "the same texts give identical vectors");
    for (text, batched) in TEXTS.iter().zip(&batch) {
        let alone = embed(&backend, &[text]).expect("alone");
        let difference = max_difference(&alone[0], batched);
        eprintln!("{text:?}: batched and alone differ by {difference}");
        assert!(
            difference < 1e-4,
            "{text:?}: batched and alone differ by {difference}"
        );
    }
    assert_eq!(backend.stats().embedded_texts, 9);
    assert_eq!(
        embed(&backend, &[]).expect("nothing to embed"),
        Vec::<Vec<f32>>::new()
    );
}

#[test]
fn texts_split_over_prefill_chunks_are_pooled_whole() {
    let whole = embed(&backend_with(|_| {}), &TEXTS).expect("whole");
    // Chunks of 7 tokens: every text takes several passes, and shares some
    // with the next one.
    let chunked = backend_with(|c| c.prefill_chunk = 7);
    let split = embed(&chunked, &TEXTS).expect("split");
    assert!(chunked.stats().forward_passes >= 5);
    for ((text, whole), split) in TEXTS.iter().zip(&whole).zip(&split) {
        // Attention over the cache rather than within one pass sums in
        // another order, and the activations' 8-bit rounding can amplify that.
        let similarity = cosine(whole, split);
        eprintln!(
            "{text:?}: whole and split differ by {}, cosine {similarity}",
            max_difference(whole, split)
        );
        assert!(similarity > 0.999, "{text:?}: cosine {similarity}");
    }
}

#[test]
fn texts_the_model_cannot_embed_are_refused() {
    let backend = backend_with(|c| c.context_tokens = 16);
    assert!(matches!(
        embed(&backend, &["fine", "  "]),
        Err(InferenceError::InvalidRequest(_))
    ));
    assert!(matches!(
        embed(
            &backend,
            &["word "; 40].concat().as_str().lines().collect::<Vec<_>>()
        ),
        Err(InferenceError::InvalidRequest(_))
    ));
    assert!(matches!(
        backend.embed(&EmbedRequest {
            model: "other".into(),
            texts: vec!["hello".into()],
            deadline: None,
        }),
        Err(InferenceError::ModelUnavailable(_))
    ));
    assert_eq!(backend.stats().embedded_texts, 0, "nothing was computed");
}
