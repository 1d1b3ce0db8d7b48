//! Text to tokens and back: the GGUF tokenizer, the chat template and
//! incremental detokenisation.

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use cloister_inference::{ChatMessage, Role};
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

/// Why a tokenizer could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// The GGUF metadata does not describe a tokenizer we can rebuild.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The GGUF chat template is not one this engine knows how to apply.
    #[error("unsupported chat template (expected ChatML): {0}")]
    ChatTemplate(String),
}

fn tokenizer_error(e: impl std::fmt::Display) -> TextError {
    TextError::Tokenizer(e.to_string())
}

/// The chat formats this engine applies. Templates in GGUF files are Jinja
/// programs; rather than run untrusted template code, the engine recognises
/// the format and applies it natively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n`, as SmolLM2 and Qwen2 use.
    ChatMl {
        /// System message the template inserts when the prompt has none.
        default_system: Option<String>,
    },
}

impl ChatTemplate {
    fn from_gguf(content: &gguf_file::Content) -> Result<Self, TextError> {
        let source = content
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if !source.contains("<|im_start|>") {
            return Err(TextError::ChatTemplate(source.chars().take(80).collect()));
        }
        // SmolLM2's template: `{{ '<|im_start|>system\n<default><|im_end|>\n' }}`
        // when the first message is not a system message.
        let default_system = source
            .split_once("<|im_start|>system\\n")
            .or_else(|| source.split_once("<|im_start|>system\n"))
            .and_then(|(_, rest)| rest.split_once("<|im_end|>"))
            .map(|(text, _)| text.to_owned())
            .filter(|text| !text.contains(['{', '}', '\'', '+']));
        Ok(Self::ChatMl { default_system })
    }
}

/// The model's tokenizer plus its prompt format.
#[derive(Debug)]
pub struct TextCodec {
    /// Parses control tokens such as `<|im_start|>` in its input.
    control: Tokenizer,
    /// Treats every character of its input as text: used for message
    /// contents, so that a user cannot forge a turn by typing `<|im_end|>`.
    literal: Tokenizer,
    template: ChatTemplate,
    im_start: u32,
    im_end: u32,
    end_of_sequence: Vec<u32>,
}

/// The pre-tokenizer llama.cpp applies for a GGUF `tokenizer.ggml.pre` value,
/// where candle's GGUF builder falls back to GPT-2's (which prefixes every
/// chunk between special tokens with a space and groups digits). `None`
/// keeps candle's choice.
fn pre_tokenizer_for(pre: &str) -> Option<Sequence> {
    match pre {
        // llama.cpp's LLAMA_VOCAB_PRE_TYPE_SMOLLM (also starcoder, refact,
        // command-r, codeshell, exaone, minerva): `\p{N}` first, each digit
        // its own chunk, then the GPT-2 regex, no prefix space; the same as
        // SmolLM2's tokenizer.json (Digits(individual) + ByteLevel(no prefix)).
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            Some(Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ]))
        }
        // GPT-2 proper: the regex without a prefix space (llama.cpp never adds one for BPE).
        "gpt2" | "default" => Some(Sequence::new(vec![
            ByteLevel::new(false, true, true).into(),
        ])),
        _ => None,
    }
}

impl TextCodec {
    /// Builds the tokenizer and template from the GGUF metadata.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, TextError> {
        let mut control = Tokenizer::from_gguf(content).map_err(tokenizer_error)?;
        let pre = content
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map_or("gpt2", String::as_str);
        if let Some(pre_tokenizer) = pre_tokenizer_for(pre) {
            control.with_pre_tokenizer(Some(pre_tokenizer));
        }
        let mut literal = control.clone();
        literal.set_encode_special_tokens(true);
        let template = ChatTemplate::from_gguf(content)?;
        let id = |token: &str| {
            control
                .token_to_id(token)
                .ok_or_else(|| TextError::Tokenizer(format!("vocabulary lacks `{token}`")))
        };
        let im_start = id("<|im_start|>")?;
        let im_end = id("<|im_end|>")?;
        let mut end_of_sequence = vec![im_end];
        if let Some(eos) = content.metadata.get("tokenizer.ggml.eos_token_id") {
            end_of_sequence.push(eos.to_u32().map_err(tokenizer_error)?);
        }
        if let Some(eot) = control.token_to_id("<|endoftext|>") {
            end_of_sequence.push(eot);
        }
        end_of_sequence.sort_unstable();
        end_of_sequence.dedup();
        Ok(Self {
            control,
            literal,
            template,
            im_start,
            im_end,
            end_of_sequence,
        })
    }

    /// Tokens of `text`, every character taken literally (no control tokens),
    /// and no BOS: the GGUF says `add_bos_token = false` for SmolLM2, and
    /// llama.cpp honours that.
    pub fn encode_literal(&self, text: &str) -> Result<Vec<u32>, TextError> {
        Ok(self
            .literal
            .encode_fast(text, false)
            .map_err(tokenizer_error)?
            .get_ids()
            .to_vec())
    }

    /// Tokens of `text`, with control tokens such as `<|im_end|>` parsed as
    /// such: what llama.cpp's `llama_tokenize(..., parse_special = true)` does.
    pub fn encode_with_control(&self, text: &str) -> Result<Vec<u32>, TextError> {
        Ok(self
            .control
            .encode_fast(text, false)
            .map_err(tokenizer_error)?
            .get_ids()
            .to_vec())
    }

    /// The prompt for `messages` in the model's chat format, ending with the
    /// opening of the assistant's turn. Equal to tokenising the rendered
    /// template with control tokens parsed, except that control tokens typed
    /// inside a message stay text.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, TextError> {
        let ChatTemplate::ChatMl { default_system } = &self.template;
        let mut ids = Vec::new();
        let mut turn = |role: &str, content: &str| -> Result<(), TextError> {
            ids.push(self.im_start);
            ids.extend(self.encode_literal(&format!("{role}\n{content}"))?);
            ids.push(self.im_end);
            ids.extend(self.encode_literal("\n")?);
            Ok(())
        };
        if let (Some(system), Some(first)) = (default_system, messages.first())
            && first.role != Role::System
        {
            turn("system", system)?;
        }
        for message in messages {
            turn(role_name(message.role), &message.content)?;
        }
        ids.push(self.im_start);
        ids.extend(self.encode_literal("assistant\n")?);
        Ok(ids)
    }

    /// Whether `token` ends generation.
    pub fn is_end_of_sequence(&self, token: u32) -> bool {
        self.end_of_sequence.contains(&token)
    }

    /// Text of `ids`, control tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TextError> {
        self.control.decode(ids, true).map_err(tokenizer_error)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// Turns a stream of token ids into text pieces, holding back a token whose
/// bytes end inside a UTF-8 character until the character is complete.
#[derive(Debug, Default)]
pub struct Detokenizer {
    ids: Vec<u32>,
    /// Start of the window decoded for context (byte-level BPE needs none,
    /// but a tokenizer with a prefix-space decoder does).
    prefix: usize,
    /// First token whose text has not been emitted.
    read: usize,
}

impl Detokenizer {
    /// Adds `id` and returns the newly completed text (possibly empty).
    pub fn push(&mut self, codec: &TextCodec, id: u32) -> Result<String, TextError> {
        self.ids.push(id);
        let before = codec.decode(&self.ids[self.prefix..self.read])?;
        let after = codec.decode(&self.ids[self.prefix..])?;
        if after.len() > before.len() && !after.ends_with('\u{FFFD}') && after.starts_with(&before)
        {
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(after[before.len()..].to_owned())
        } else {
            Ok(String::new())
        }
    }
}
