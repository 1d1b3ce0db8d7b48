//! The suggest feature: rewrites of a draft message in a chosen tone.
//!
//! The draft and recent context are quoted into `<draft>` and `<context>`
//! data blocks. The first rewrite is greedy; further ones sample with
//! different seeds, and duplicates are dropped, so the user gets distinct
//! options or fewer of them, never the same one twice.

use cloister_plugin_sdk::inference::FinishReason;
use cloister_plugin_sdk::log::{Event, FieldName, Level};
use cloister_plugin_sdk::{
    FeatureError, Guest, Request, Response, SuggestRequest, Tone, chat, events, greedy, limits,
    output, prompt,
};

/// Most bytes of a draft.
pub const MAX_DRAFT_BYTES: usize = 2 * 1024;
/// Most context messages accepted.
pub const MAX_CONTEXT_MESSAGES: usize = 50;
/// Context messages quoted into the prompt (the most recent).
pub const PROMPT_CONTEXT_MESSAGES: usize = 6;
/// Most bytes of one context message.
pub const MAX_CONTEXT_MESSAGE_BYTES: usize = 4 * 1024;
/// Most rewrites in one request.
pub const MAX_SUGGESTIONS: u8 = 5;

struct Suggest;

impl Guest for Suggest {
    fn run(request: Request) -> Result<Response, FeatureError> {
        let Request::Suggest(request) = request else {
            return Err(FeatureError::UnsupportedRequest);
        };
        events::emit(
            Level::Info,
            Event::RequestStarted,
            &[(FieldName::InputBytes, events::bytes(&request.draft))],
        );
        let result = suggest(&request);
        match &result {
            Ok(items) => events::emit(
                Level::Info,
                Event::RequestFinished,
                &[(FieldName::ItemCount, items.len() as u64)],
            ),
            Err(FeatureError::InputTooLarge(_) | FeatureError::InvalidInput(_)) => {
                events::emit(Level::Warn, Event::InputRejected, &[]);
            }
            Err(_) => events::emit(Level::Warn, Event::InferenceFailed, &[]),
        }
        result.map(Response::Suggestions)
    }
}

cloister_plugin_sdk::export_feature!(Suggest);

fn tone_instruction(tone: Tone) -> &'static str {
    match tone {
        Tone::Neutral => "a clear, neutral",
        Tone::Friendly => "a warm, friendly",
        Tone::Formal => "a polite, formal",
        Tone::Concise => "a short, concise",
    }
}

fn suggest(request: &SuggestRequest) -> Result<Vec<String>, FeatureError> {
    let draft = request.draft.trim();
    if draft.is_empty() {
        return Err(FeatureError::InvalidInput("the draft is empty".into()));
    }
    if request.count == 0 || request.count > MAX_SUGGESTIONS {
        return Err(FeatureError::InvalidInput(format!(
            "count must be 1 to {MAX_SUGGESTIONS}"
        )));
    }
    limits::at_most("draft-bytes", draft.len(), MAX_DRAFT_BYTES)?;
    limits::at_most(
        "context-messages",
        request.context.len(),
        MAX_CONTEXT_MESSAGES,
    )?;
    let longest = request
        .context
        .iter()
        .map(|m| m.text.len() + m.sender.len())
        .max()
        .unwrap_or(0);
    limits::at_most("context-message-bytes", longest, MAX_CONTEXT_MESSAGE_BYTES)?;

    let recent = &request.context[request
        .context
        .len()
        .saturating_sub(PROMPT_CONTEXT_MESSAGES)..];
    let context: Vec<String> = recent.iter().map(prompt::transcript_line).collect();
    let tone = tone_instruction(request.tone);
    let system = format!(
        "You help a user rewrite the draft of their next chat message in {tone} tone. \
         Keep its meaning and language; reply with the rewritten message only. {}",
        prompt::data_rule(&["context", "draft"])
    );
    let mut user = String::new();
    if !context.is_empty() {
        user.push_str(&prompt::data_block("context", &context.join("\n")));
        user.push_str("\n\n");
    }
    user.push_str(&prompt::data_block("draft", draft));
    user.push_str(&format!("\n\nRewrite the draft in {tone} tone."));

    // Roughly one token per 3 bytes of English, with room to grow the text.
    let max_tokens = u32::try_from(draft.len() / 2 + 48).unwrap_or(u32::MAX);
    let max_bytes = draft.len() * 3 + 200;
    let mut suggestions: Vec<String> = Vec::new();
    for attempt in 0..u64::from(request.count) {
        let mut params = greedy(max_tokens);
        // Small models like to echo the instruction or reopen the data block.
        params.stop = vec![
            "\nRewrite the draft".into(),
            "<draft>".into(),
            "<context>".into(),
        ];
        if attempt > 0 {
            params.temperature = 0.8;
            params.top_p = 0.95;
            params.seed = attempt;
        }
        let generation =
            chat(system.clone(), user.clone(), &params).map_err(FeatureError::Inference)?;
        // A chat message may open with a greeting line: keep every paragraph,
        // without the blank lines between them.
        let mut cleaned = output::clean(&generation.text);
        if generation.finish == FinishReason::Length {
            cleaned = output::drop_unfinished_sentence(&cleaned).to_owned();
        }
        let text = cleaned
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let usable = !text.is_empty() && text.len() <= max_bytes;
        if !usable {
            events::emit(
                Level::Debug,
                Event::OutputRepaired,
                &[(FieldName::OutputBytes, events::bytes(&text))],
            );
        } else if !suggestions.iter().any(|s| s.eq_ignore_ascii_case(&text)) {
            suggestions.push(text);
        }
    }
    if suggestions.is_empty() {
        return Err(FeatureError::UnusableOutput);
    }
    Ok(suggestions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tone_has_its_own_instruction() {
        let tones = [Tone::Neutral, Tone::Friendly, Tone::Formal, Tone::Concise];
        let mut texts: Vec<&str> = tones.iter().map(|t| tone_instruction(*t)).collect();
        texts.dedup();
        assert_eq!(texts.len(), tones.len());
    }
}
