//! A scripted inference backend that records what it was asked.

use std::fmt;
use std::ops::ControlFlow;
use std::sync::Mutex;

use cloister_inference::{
    DeterministicBackend, EmbedRequest, EngineIdentity, GenerateRequest, Generation,
    InferenceBackend, InferenceError, ModelInfo, Prompt, Role,
};

use crate::SCRIPTED_MODEL;

type Respond = dyn Fn(&GenerateRequest) -> Result<String, InferenceError> + Send + Sync;
pub(crate) type Embed = dyn Fn(&str) -> Vec<f32> + Send + Sync;

/// Width of [`bag_of_words`] vectors.
pub const BAG_OF_WORDS_WIDTH: usize = 64;

/// The scripted model's default embedding: each lower-cased word hashed
/// into one of [`BAG_OF_WORDS_WIDTH`] buckets, counted, and the counts
/// scaled to unit length. Deterministic, and texts sharing words score
/// closer, which is what a plugin's logic around `embed` needs to be tested.
pub fn bag_of_words(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; BAG_OF_WORDS_WIDTH];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        // FNV-1a: stable across runs and Rust versions.
        let hash = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        vector[(hash % BAG_OF_WORDS_WIDTH as u64) as usize] += 1.0;
    }
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|v| *v /= norm);
    }
    vector
}

/// One recorded inference request.
#[derive(Debug, Clone)]
pub struct Prompted(pub GenerateRequest);

impl Prompted {
    /// The text of the message with `role`, concatenated (or the raw text prompt).
    pub fn text_of(&self, role: Role) -> String {
        match &self.0.prompt {
            Prompt::Text(text) => text.clone(),
            Prompt::Chat(messages) => messages
                .iter()
                .filter(|m| m.role == role)
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

impl fmt::Display for Prompted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.prompt {
            Prompt::Text(text) => f.write_str(text),
            Prompt::Chat(messages) => {
                for m in messages {
                    writeln!(f, "{:?}: {}", m.role, m.content)?;
                }
                Ok(())
            }
        }
    }
}

/// Answers each request with text from a script, streamed word by word and
/// honouring `max_tokens`, stop sequences and cancellation exactly as the
/// development backend does (one word per token). Embeds each text with
/// [`bag_of_words`] unless told otherwise, and refuses a text with nothing
/// but whitespace, as the real engine does.
pub struct ScriptedBackend {
    respond: Box<Respond>,
    embed: Box<Embed>,
    requests: Mutex<Vec<Prompted>>,
    embeds: Mutex<Vec<EmbedRequest>>,
}

impl ScriptedBackend {
    /// A backend answering with `respond`.
    pub fn new(
        respond: impl Fn(&GenerateRequest) -> Result<String, InferenceError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            respond: Box::new(respond),
            embed: Box::new(bag_of_words),
            requests: Mutex::new(Vec::new()),
            embeds: Mutex::new(Vec::new()),
        }
    }

    /// Embeds each text with `embed` instead of [`bag_of_words`].
    pub fn embedding_with(
        mut self,
        embed: impl Fn(&str) -> Vec<f32> + Send + Sync + 'static,
    ) -> Self {
        self.embed = Box::new(embed);
        self
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<Prompted> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The embed requests seen so far.
    pub fn embed_requests(&self) -> Vec<EmbedRequest> {
        self.embeds.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl InferenceBackend for ScriptedBackend {
    fn name(&self) -> &str {
        "scripted (test kit)"
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn models(&self) -> Vec<ModelInfo> {
        vec![ModelInfo {
            name: SCRIPTED_MODEL.into(),
            context_tokens: 8192,
            embeddings: true,
        }]
    }

    fn identity(&self) -> EngineIdentity {
        EngineIdentity {
            weights: None,
            settings: format!("scripted model={SCRIPTED_MODEL:?}"),
        }
    }

    fn generate(
        &self,
        request: &GenerateRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, InferenceError> {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(Prompted(request.clone()));
        }
        let reply = (self.respond)(request)?;
        if reply.trim().is_empty() {
            return Ok(Generation {
                text: reply,
                usage: Default::default(),
                finish: cloister_inference::FinishReason::EndOfSequence,
            });
        }
        let replay = GenerateRequest {
            prompt: Prompt::Text(reply),
            ..request.clone()
        };
        let mut generation =
            DeterministicBackend::serving(request.model.clone()).generate(&replay, on_token)?;
        generation.usage.prompt_tokens = match &request.prompt {
            Prompt::Text(text) => word_count(text),
            Prompt::Chat(messages) => messages.iter().map(|m| word_count(&m.content)).sum(),
        };
        Ok(generation)
    }

    fn embed(&self, request: &EmbedRequest) -> Result<Vec<Vec<f32>>, InferenceError> {
        if let Ok(mut embeds) = self.embeds.lock() {
            embeds.push(request.clone());
        }
        if request.texts.iter().any(|text| text.trim().is_empty()) {
            return Err(InferenceError::InvalidRequest("a text has no words".into()));
        }
        Ok(request
            .texts
            .iter()
            .map(|text| (self.embed)(text))
            .collect())
    }
}

fn word_count(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embed(backend: &ScriptedBackend, texts: &[&str]) -> Result<Vec<Vec<f32>>, InferenceError> {
        backend.embed(&EmbedRequest {
            model: SCRIPTED_MODEL.into(),
            texts: texts.iter().map(|t| (*t).to_owned()).collect(),
            deadline: None,
        })
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn scripted_embeddings_are_unit_vectors_closer_for_shared_words() {
        let backend = ScriptedBackend::new(|_| Ok(String::new()));
        let vectors = embed(
            &backend,
            &[
                "Lunch on Friday at noon",
                "lunch friday noon",
                "the train leaves platform nine",
            ],
        )
        .expect("embed");
        for vector in &vectors {
            assert_eq!(vector.len(), BAG_OF_WORDS_WIDTH);
            assert!((cosine(vector, vector) - 1.0).abs() < 1e-6);
        }
        assert!(cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]));
        assert_eq!(
            embed(&backend, &["Lunch on Friday at noon"]).expect("again")[0],
            vectors[0]
        );
        assert!(matches!(
            embed(&backend, &["fine", " "]),
            Err(InferenceError::InvalidRequest(_))
        ));
        assert_eq!(backend.embed_requests().len(), 3, "every call is recorded");
    }

    #[test]
    fn a_script_can_replace_the_embedding() {
        let backend = ScriptedBackend::new(|_| Ok(String::new()))
            .embedding_with(|text| vec![text.len() as f32]);
        assert_eq!(embed(&backend, &["abc"]).expect("embed"), [[3.0]]);
    }
}
