//! A scripted inference backend that records what it was asked.

use std::fmt;
use std::ops::ControlFlow;
use std::sync::Mutex;

use cloister_inference::{
    DeterministicBackend, EngineIdentity, GenerateRequest, Generation, InferenceBackend,
    InferenceError, ModelInfo, Prompt, Role,
};

use crate::SCRIPTED_MODEL;

type Respond = dyn Fn(&GenerateRequest) -> Result<String, InferenceError> + Send + Sync;

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
/// development backend does (one word per token).
pub struct ScriptedBackend {
    respond: Box<Respond>,
    requests: Mutex<Vec<Prompted>>,
}

impl ScriptedBackend {
    /// A backend answering with `respond`.
    pub fn new(
        respond: impl Fn(&GenerateRequest) -> Result<String, InferenceError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            respond: Box::new(respond),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<Prompted> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
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
            embeddings: false,
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
}

fn word_count(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}
