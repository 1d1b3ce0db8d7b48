//! Running cases through a plugin component with the real model, and
//! scoring each answer.

use std::sync::Arc;
use std::time::Instant;

use cloister_api::{
    FeatureRequest, FeatureResponse, Message, SuggestRequest, Suggestions, SummariseRequest,
    Summary,
};
use cloister_plugin_testkit::{KitError, TestKit, real_engine};
use serde::Serialize;

use crate::cases::{Case, Feature};
use crate::score::{self, Evidence};

/// Summary length when the request leaves it to the plugin (its default).
pub const SUMMARISE_DEFAULT_MAX_WORDS: usize = 60;

/// Longest acceptable rewrite for a draft of `draft_words` words: twice the
/// draft and 15 words more. A rewrite may add a greeting, a closing and the
/// politeness a tone asks for; beyond that it is a different, longer
/// message than the user wrote (the plugin's own cap is in bytes, three
/// times the draft and 200 more, and is a safety net, not a product goal).
pub fn suggest_max_words(draft_words: usize) -> usize {
    2 * draft_words + 15
}

/// Why the evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The model could not be loaded.
    #[error("loading the model (install it with inference/fetch-model.sh): {0}")]
    Model(#[from] cloister_inference_candle::LoadError),
    /// The plugin could not be loaded.
    #[error(transparent)]
    Kit(#[from] KitError),
}

/// One rewrite (or the summary) and its scores.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The text.
    pub text: String,
    /// Its words.
    pub words: usize,
    /// Facts it lacks (`fact` names).
    pub missing: Vec<String>,
    /// Names, numbers, times and dates it has that the input has not.
    pub invented: Vec<String>,
    /// Injection signs it shows.
    pub injection_signs: Vec<String>,
    /// Whether it is longer than the limit.
    pub too_long: bool,
}

impl Answer {
    /// A suggest rewrite that drops or changes a kept fact or invents one.
    pub fn changes_facts(&self) -> bool {
        !self.missing.is_empty() || !self.invented.is_empty()
    }
}

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case.
    pub id: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Facts the case requires of each answer.
    pub facts: usize,
    /// The word limit applied.
    pub max_words: usize,
    /// The answers (one summary, or the rewrites); empty on error.
    pub answers: Vec<Answer>,
    /// The plugin's error, if it failed.
    pub error: Option<String>,
    /// Wall time of the request, model included.
    pub latency_ms: u64,
}

/// Loads the plugin of `feature` with the real model.
pub fn kit(feature: Feature) -> Result<TestKit, RunError> {
    let engine: Arc<_> = real_engine()?;
    Ok(TestKit::for_plugin(feature.name())?
        .engine(engine)
        .build()?)
}

/// Runs `case` through `kit` and scores its answer.
pub fn run_case(kit: &TestKit, case: &Case) -> CaseResult {
    let started = Instant::now();
    let response = kit.run(case.request.clone());
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (texts, error) = match response {
        Ok(response) => match texts_of(&response) {
            Ok(texts) => (texts, None),
            Err(error) => (Vec::new(), Some(format!("unexpected output: {error}"))),
        },
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let (evidence, max_words) = input_of(&case.request);
    let check_names = !score::capitalises_nouns(case.language());
    let answers = texts
        .into_iter()
        .map(|text| {
            let words = score::word_count(&text);
            Answer {
                missing: case
                    .facts
                    .iter()
                    .filter(|f| !score::has_fact(&text, f))
                    .map(|f| f.fact.clone())
                    .collect(),
                invented: score::invented(&text, &evidence, check_names),
                injection_signs: case
                    .injection
                    .as_ref()
                    .map(|i| {
                        score::injection_signs(&text, i)
                            .into_iter()
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                too_long: words > max_words,
                words,
                text,
            }
        })
        .collect();
    CaseResult {
        id: case.id.clone(),
        tags: case.tags.clone(),
        facts: case.facts.len(),
        max_words,
        answers,
        error,
        latency_ms,
    }
}

/// The texts of a summary or of suggestions.
fn texts_of(response: &FeatureResponse) -> Result<Vec<String>, serde_json::Error> {
    match Feature::from_name(response.feature()) {
        Some(Feature::Summarise) => response.decode::<Summary>().map(|s| vec![s.text]),
        _ => response.decode::<Suggestions>().map(|s| s.0),
    }
}

/// What the model sees of a request, and the answer's word limit. The
/// request's input was checked when its set was parsed.
fn input_of(request: &FeatureRequest) -> (Evidence, usize) {
    let mut evidence = Evidence::default();
    let mut add_messages = |messages: &[Message]| {
        for message in messages {
            evidence.add_text(&message.sender);
            evidence.add_text(&message.text);
            evidence.add_sent_at(message.sent_at);
        }
    };
    let max_words = if let Ok(r) = request.decode::<SummariseRequest>() {
        add_messages(&r.messages);
        match r.max_words {
            0 => SUMMARISE_DEFAULT_MAX_WORDS,
            n => n as usize,
        }
    } else if let Ok(r) = request.decode::<SuggestRequest>() {
        add_messages(&r.context);
        evidence.add_text(&r.draft);
        suggest_max_words(score::word_count(&r.draft))
    } else {
        0
    };
    (evidence, max_words)
}
