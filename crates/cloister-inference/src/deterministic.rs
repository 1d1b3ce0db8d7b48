//! A development backend that needs no weights. Not a model.

use std::ops::ControlFlow;
use std::time::Instant;

use crate::{
    EngineIdentity, FinishReason, GenerateRequest, Generation, InferenceBackend, InferenceError,
    ModelInfo, Prompt, Role, Usage,
};

/// A **simulated** engine for development and CI: it "generates" by replaying
/// the words of the last user message (or of a text prompt), one word per
/// token, so output is reproducible and visibly derived from the input.
///
/// It honours the full contract — `max_tokens`, stop sequences, deadlines,
/// cancellation and token counts — so the host's budgets and the plugins'
/// handling of every [`FinishReason`] can be tested without a model.
#[derive(Debug, Clone)]
pub struct DeterministicBackend {
    model: String,
}

impl DeterministicBackend {
    /// The model name this backend answers to.
    pub const MODEL: &'static str = "deterministic-dev";

    /// A backend serving [`Self::MODEL`].
    pub fn new() -> Self {
        Self {
            model: Self::MODEL.to_owned(),
        }
    }

    /// A backend answering to another model name, for hosts whose manifests
    /// name a real model but run without weights.
    pub fn serving(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
        }
    }
}

impl Default for DeterministicBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// How many tokens pass between deadline checks.
const DEADLINE_CHECK_TOKENS: usize = 16;

/// ASCII whitespace as `char::is_whitespace` sees it: space and `\t` to
/// `\r` (which, unlike `u8::is_ascii_whitespace`, includes U+000B).
fn is_ascii_space(b: u8) -> bool {
    (b == b' ') | (b.wrapping_sub(b'\t') <= b'\r' - b'\t')
}

/// Words as `split_whitespace` counts them. On ASCII text (most prompts) by
/// counting the bytes that start a word, without branches: splitting costs
/// more than the rest of a short generation.
fn word_count(text: &str) -> u32 {
    let count = if text.is_ascii() {
        let bytes = text.as_bytes();
        let first = bytes.first().is_some_and(|&b| !is_ascii_space(b));
        let later: usize = bytes
            .iter()
            .zip(bytes.get(1..).unwrap_or_default())
            .map(|(&before, &at)| usize::from(is_ascii_space(before) & !is_ascii_space(at)))
            .sum();
        usize::from(first) + later
    } else {
        text.split_whitespace().count()
    };
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The words of `text`, exactly as `split_whitespace` yields them; split by
/// bytes when the text is ASCII without U+000B, the one character
/// `split_ascii_whitespace` keeps and `split_whitespace` splits at.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let by_bytes = text.bytes().all(|b| b.is_ascii() && b != 0x0B);
    let (ascii, unicode) = if by_bytes {
        (Some(text.split_ascii_whitespace()), None)
    } else {
        (None, Some(text.split_whitespace()))
    };
    ascii
        .into_iter()
        .flatten()
        .chain(unicode.into_iter().flatten())
}

impl InferenceBackend for DeterministicBackend {
    fn name(&self) -> &str {
        "deterministic (simulated)"
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn models(&self) -> Vec<ModelInfo> {
        vec![ModelInfo {
            name: self.model.clone(),
            context_tokens: 8192,
            embeddings: false,
        }]
    }

    fn identity(&self) -> EngineIdentity {
        EngineIdentity {
            weights: None,
            settings: format!("deterministic model={:?}", self.model),
        }
    }

    fn generate(
        &self,
        request: &GenerateRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, InferenceError> {
        if request.model != self.model {
            return Err(InferenceError::ModelUnavailable(request.model.clone()));
        }
        let (source, prompt_tokens) = match &request.prompt {
            Prompt::Text(text) => (text.as_str(), word_count(text)),
            Prompt::Chat(messages) => (
                messages
                    .iter()
                    .rev()
                    .find(|m| m.role == Role::User)
                    .map_or("", |m| m.content.as_str()),
                messages
                    .iter()
                    .map(|m| word_count(&m.content))
                    .fold(0, u32::saturating_add),
            ),
        };
        if source.trim().is_empty() {
            return Err(InferenceError::InvalidRequest(
                "prompt has no user text".into(),
            ));
        }

        // One buffer for the whole answer; each token is the slice it appended.
        let mut text = String::with_capacity(source.len());
        let mut generated_tokens = 0;
        let mut finish = FinishReason::EndOfSequence;
        // A stop sequence that appears must end in the newest token, so only
        // the last `longest_stop - 1` bytes before it need searching again.
        let stop_overlap = request
            .params
            .stop
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .saturating_sub(1);
        for (index, word) in words(source).enumerate() {
            // A clock read costs more than a word here: look every few tokens.
            if index % DEADLINE_CHECK_TOKENS == 0
                && request.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Err(InferenceError::DeadlineExceeded);
            }
            if generated_tokens >= request.params.max_tokens {
                finish = FinishReason::Length;
                break;
            }
            let start = text.len();
            if start > 0 {
                text.push(' ');
            }
            text.push_str(word);
            let from = text.floor_char_boundary(start.saturating_sub(stop_overlap));
            let found = request
                .params
                .stop
                .iter()
                .filter_map(|s| text[from..].find(s.as_str()))
                .min();
            if let Some(cut) = found.map(|at| from + at) {
                let tail = &text[start..cut.max(start)];
                if !tail.is_empty() {
                    // Control flow is irrelevant here: generation ends anyway.
                    let _ = on_token(tail);
                }
                text.truncate(cut);
                finish = FinishReason::StopSequence;
                break;
            }
            generated_tokens += 1;
            if on_token(&text[start..]).is_break() {
                finish = FinishReason::Cancelled;
                break;
            }
        }
        Ok(Generation {
            text,
            usage: Usage {
                prompt_tokens,
                generated_tokens,
            },
            finish,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChatMessage, SamplingParams};

    fn request(prompt: Prompt, params: SamplingParams) -> GenerateRequest {
        GenerateRequest {
            model: DeterministicBackend::MODEL.into(),
            prompt,
            params,
            deadline: None,
        }
    }

    fn chat(user: &str) -> Prompt {
        Prompt::Chat(vec![
            ChatMessage {
                role: Role::System,
                content: "be brief".into(),
            },
            ChatMessage {
                role: Role::User,
                content: user.into(),
            },
        ])
    }

    #[test]
    fn replays_user_words_up_to_max_tokens() {
        let params = SamplingParams {
            max_tokens: 3,
            ..Default::default()
        };
        let mut pieces = Vec::new();
        let out = DeterministicBackend::new()
            .generate(&request(chat("alpha beta gamma delta"), params), &mut |p| {
                pieces.push(p.to_owned());
                ControlFlow::Continue(())
            })
            .expect("generation");
        assert_eq!(out.text, "alpha beta gamma");
        assert_eq!(pieces.concat(), out.text);
        assert_eq!(out.finish, FinishReason::Length);
        assert_eq!(
            out.usage,
            Usage {
                prompt_tokens: 6,
                generated_tokens: 3
            }
        );
    }

    #[test]
    fn stops_before_stop_sequence() {
        let params = SamplingParams {
            stop: vec!["gam".into()],
            ..Default::default()
        };
        let mut streamed = String::new();
        let out = DeterministicBackend::new()
            .generate(
                &request(Prompt::Text("alpha beta gamma".into()), params),
                &mut |p| {
                    streamed.push_str(p);
                    ControlFlow::Continue(())
                },
            )
            .expect("generation");
        assert_eq!(out.text, "alpha beta ");
        assert_eq!(streamed, out.text);
        assert_eq!(out.finish, FinishReason::StopSequence);
    }

    #[test]
    fn finds_stop_sequences_across_tokens_late_in_a_long_answer() {
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        for (stop, kept) in [
            ("w150 w1", "w149 "),
            ("0 w151", "w149 w15"),
            ("w199", "w198 "),
        ] {
            let params = SamplingParams {
                max_tokens: 1000,
                stop: vec!["never".into(), stop.into()],
                ..Default::default()
            };
            let out = DeterministicBackend::new()
                .generate(&request(Prompt::Text(words.join(" ")), params), &mut |_| {
                    ControlFlow::Continue(())
                })
                .expect("generation");
            assert_eq!(out.finish, FinishReason::StopSequence, "{stop}");
            assert!(
                out.text.ends_with(kept) && !out.text.contains(stop),
                "{stop}: {}",
                out.text
            );
        }
    }

    #[test]
    fn counts_and_splits_words_as_split_whitespace_does() {
        let texts = [
            "",
            " ",
            "a",
            "  one\ttwo\u{b}three\r\nfour ",
            "\u{c}x\u{b}",
            "a\u{a0}b\u{2003}c é",
            "x\u{85}y",
        ];
        for text in texts {
            let expected: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(word_count(text) as usize, expected.len(), "{text:?}");
            assert_eq!(words(text).collect::<Vec<_>>(), expected, "{text:?}");
        }
    }

    #[test]
    fn callback_can_cancel() {
        let out = DeterministicBackend::new()
            .generate(
                &request(chat("one two three"), SamplingParams::default()),
                &mut |_| ControlFlow::Break(()),
            )
            .expect("generation");
        assert_eq!(out.text, "one");
        assert_eq!(out.finish, FinishReason::Cancelled);
    }

    #[test]
    fn rejects_unknown_model_empty_prompt_and_past_deadline() {
        let backend = DeterministicBackend::new();
        let mut sink = |_: &str| ControlFlow::Continue(());
        let mut req = request(chat("hi"), SamplingParams::default());
        req.model = "gpt-9".into();
        assert_eq!(
            backend.generate(&req, &mut sink),
            Err(InferenceError::ModelUnavailable("gpt-9".into()))
        );
        let req = request(chat("   "), SamplingParams::default());
        assert!(matches!(
            backend.generate(&req, &mut sink),
            Err(InferenceError::InvalidRequest(_))
        ));
        let mut req = request(chat("hi there"), SamplingParams::default());
        req.deadline = Some(Instant::now());
        assert_eq!(
            backend.generate(&req, &mut sink),
            Err(InferenceError::DeadlineExceeded)
        );
    }
}
