//! The summarise feature: a short summary of a conversation.
//!
//! The most recent messages that fit the prompt budget are quoted into a
//! `<conversation>` data block; the system message carries the only
//! instructions. The model's answer is cleaned and cut to the word limit.

use cloister_plugin_sdk::inference::FinishReason;
use cloister_plugin_sdk::log::{Event, FieldName, Level};
use cloister_plugin_sdk::{
    FeatureError, Guest, Message, Request, Response, SummariseRequest, Summary, chat, events,
    greedy, limits, output, prompt,
};

/// Most messages accepted in one request.
pub const MAX_MESSAGES: usize = 500;
/// Most bytes of one message.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Bytes of transcript put into the prompt; older messages are left out.
pub const TRANSCRIPT_BUDGET_BYTES: usize = 6 * 1024;
/// Summary length when the request does not say.
pub const DEFAULT_MAX_WORDS: u32 = 60;
/// Longest summary a request may ask for.
pub const MAX_WORDS: u32 = 200;

struct Summarise;

impl Guest for Summarise {
    fn run(request: Request) -> Result<Response, FeatureError> {
        let Request::Summarise(request) = request else {
            return Err(FeatureError::UnsupportedRequest);
        };
        events::emit(
            Level::Info,
            Event::RequestStarted,
            &[(FieldName::MessageCount, request.messages.len() as u64)],
        );
        let result = summarise(&request);
        match &result {
            Ok(summary) => events::emit(
                Level::Info,
                Event::RequestFinished,
                &[
                    (FieldName::OutputBytes, events::bytes(&summary.text)),
                    (FieldName::ItemCount, u64::from(summary.messages_covered)),
                ],
            ),
            Err(FeatureError::InputTooLarge(_) | FeatureError::InvalidInput(_)) => {
                events::emit(Level::Warn, Event::InputRejected, &[]);
            }
            Err(_) => events::emit(Level::Warn, Event::InferenceFailed, &[]),
        }
        result.map(Response::Summary)
    }
}

cloister_plugin_sdk::export_feature!(Summarise);

/// Validates the request, builds the prompt, asks the model, cleans the answer.
fn summarise(request: &SummariseRequest) -> Result<Summary, FeatureError> {
    let messages = &request.messages;
    if messages.iter().all(|m| m.text.trim().is_empty()) {
        return Err(FeatureError::InvalidInput(
            "the conversation has no text".into(),
        ));
    }
    limits::at_most("messages", messages.len(), MAX_MESSAGES)?;
    let longest = messages
        .iter()
        .map(|m| m.text.len() + m.sender.len())
        .max()
        .unwrap_or(0);
    limits::at_most("message-bytes", longest, MAX_MESSAGE_BYTES)?;
    if request.max_words > MAX_WORDS {
        return Err(FeatureError::InvalidInput(format!(
            "max-words must be at most {MAX_WORDS}"
        )));
    }
    let max_words = if request.max_words == 0 {
        DEFAULT_MAX_WORDS
    } else {
        request.max_words
    };

    let (transcript, covered) = recent_transcript(messages, TRANSCRIPT_BUDGET_BYTES);
    if covered < messages.len() {
        events::emit(
            Level::Info,
            Event::InputTruncated,
            &[(FieldName::MessageCount, covered as u64)],
        );
    }
    let words = max_words.to_string();
    let system = [
        "You summarise chat conversations for one of their participants. \
         Write a neutral summary of at most ",
        &words,
        " words in plain sentences: who said what, decisions, open questions. Do not add facts. ",
        &prompt::data_rule(&["conversation"]),
    ]
    .concat();
    let user = [
        &prompt::data_block("conversation", &transcript),
        "\n\nSummarise the conversation above in at most ",
        &words,
        " words.",
    ]
    .concat();
    // Tokens average well under one word each; leave room for the last sentence.
    let generation =
        chat(system, user, &greedy(max_words * 2 + 16)).map_err(FeatureError::Inference)?;
    events::emit(
        Level::Debug,
        Event::InferenceCompleted,
        &[
            (
                FieldName::PromptTokens,
                u64::from(generation.usage.prompt_tokens),
            ),
            (
                FieldName::GeneratedTokens,
                u64::from(generation.usage.generated_tokens),
            ),
        ],
    );
    let cleaned = output::clean(&generation.text);
    let mut text = output::first_paragraph(&cleaned);
    if generation.finish == FinishReason::Length {
        text = output::drop_unfinished_sentence(text);
    }
    let text = output::limit_words(text, max_words as usize);
    if text.is_empty() {
        return Err(FeatureError::UnusableOutput);
    }
    Ok(Summary {
        text,
        messages_covered: covered as u32,
    })
}

/// The transcript of the most recent messages that fit in `budget` bytes,
/// oldest first, and how many messages it covers. The newest message is
/// always included, cut to the budget if it alone is longer.
fn recent_transcript(messages: &[Message], budget: usize) -> (String, usize) {
    const CUT: &str = "…";
    let mut lines = Vec::new();
    let mut used = 0;
    for message in messages.iter().rev().filter(|m| !m.text.trim().is_empty()) {
        let mut line = prompt::transcript_line(message);
        if used + line.len() + 1 > budget {
            if !lines.is_empty() {
                break;
            }
            line.truncate(line.floor_char_boundary(budget.saturating_sub(CUT.len() + 1)));
            line.push_str(CUT);
        }
        used += line.len() + 1;
        lines.push(line);
    }
    let covered = lines.len();
    lines.reverse();
    (lines.join("\n"), covered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sender: &str, minute: u64, text: &str) -> Message {
        Message {
            sender: sender.into(),
            sent_at: minute * 60,
            text: text.into(),
        }
    }

    #[test]
    fn transcript_keeps_the_most_recent_messages_that_fit() {
        let messages: Vec<Message> = (0..10)
            .map(|i| message("Ann", i, &"x".repeat(40)))
            .collect();
        let (transcript, covered) = recent_transcript(&messages, 200);
        assert_eq!(covered, 3);
        assert_eq!(transcript.lines().count(), 3);
        assert!(transcript.starts_with("[00:07] Ann:"), "{transcript}");
    }

    #[test]
    fn transcript_skips_empty_messages_and_always_keeps_the_last() {
        let messages = vec![
            message("A", 1, "hello"),
            message("B", 2, "  "),
            message("C", 3, &"y".repeat(500)),
        ];
        let (transcript, covered) = recent_transcript(&messages, 100);
        assert_eq!(covered, 1);
        assert!(transcript.contains("C:"));
    }

    #[test]
    fn one_message_longer_than_the_budget_is_cut_to_it_on_a_char_boundary() {
        let messages = vec![message("C", 3, &"é".repeat(4000))];
        let (transcript, covered) = recent_transcript(&messages, 101);
        assert_eq!(covered, 1);
        assert!(transcript.len() < 101, "{}", transcript.len());
        assert!(
            transcript.starts_with("[00:03] C: é") && transcript.ends_with('…'),
            "{transcript}"
        );
    }
}
