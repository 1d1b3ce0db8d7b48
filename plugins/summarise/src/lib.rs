//! The summarise feature: a short summary of a conversation.
//!
//! The most recent messages that fit the prompt budget are quoted into a
//! `<conversation>` data block; the system message carries the only
//! instructions. Messages that address the assistant ("ignore previous
//! instructions...") are left out: they are not part of the conversation.
//!
//! The model's answer is cleaned and checked against the conversation
//! ([`grounding`]): a sentence with a time, number, day or name that the
//! conversation does not hold is dropped, and so are a question (a summary
//! states; a small model asks the conversation's questions again, as if its
//! own), a sentence in the first person (a message copied without its
//! sender) and a sentence written as a transcript line (`Ann: ...`,
//! `[10:05] ...`): a small model writes those when it retells a
//! conversation, with words nobody said. When what remains misses a number
//! or time of the conversation (the facts a reader acts on), the summary is
//! completed with the conversation's own sentences that carry the most of
//! its facts, in order and attributed, within the word limit.

use cloister_plugin_sdk::inference::FinishReason;
use cloister_plugin_sdk::log::{Event, FieldName, Level};
use cloister_plugin_sdk::{FeatureError, chat, events, greedy, grounding, limits, output, prompt};
use std::collections::BTreeSet;

pub use bindings::{Message, SummariseInput, Summary};

cloister_plugin_sdk::feature_bindings!("../../wit", "cloister:summarise/summarise");

/// Most messages accepted in one request.
pub const MAX_MESSAGES: usize = 500;
/// Most bytes of one message.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Fewest words of a sentence of the model kept beside the conversation's
/// own: shorter ones are fragments ("Dad", "Sure.").
const MIN_SENTENCE_WORDS: usize = 3;
/// Tokens of the model's context (SmolLM2: 2048): prompt and answer share it.
pub const CONTEXT_TOKENS: usize = 2048;
/// Tokens of the prompt besides the transcript (instructions, chat template).
const PROMPT_OVERHEAD_TOKENS: usize = 200;
/// Fewest bytes a token of a transcript spans: digits, symbols and
/// non-Latin text tokenise densely, so the byte budget assumes the worst.
const MIN_BYTES_PER_TOKEN: usize = 2;
/// Summary length when the request does not say.
pub const DEFAULT_MAX_WORDS: u32 = 60;
/// Longest summary a request may ask for.
pub const MAX_WORDS: u32 = 200;

struct Summarise;

impl bindings::Guest for Summarise {
    fn run(request: SummariseInput) -> Result<Summary, FeatureError> {
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
        result
    }
}

bindings::export!(Summarise with_types_in bindings);

/// Validates the request, builds the prompt, asks the model, cleans the answer.
fn summarise(request: &SummariseInput) -> Result<Summary, FeatureError> {
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

    // Tokens average well under one word each; leave room for the last sentence.
    let answer_tokens = max_words * 2 + 16;
    let budget = transcript_budget(answer_tokens as usize);
    let (transcript, covered) = recent_transcript(messages, budget);
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
        " words in plain sentences in the third person: decisions, times, places, \
         open questions. Give days, times, places and numbers exactly as written; \
         do not add anything that is not in the conversation. ",
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
    let generation = chat(system, user, &greedy(answer_tokens)).map_err(FeatureError::Inference)?;
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
    if text.is_empty() {
        return Err(FeatureError::UnusableOutput);
    }
    let window = recent_conversation(messages, covered);
    let text = checked_summary(text, &window, max_words as usize);
    if text.is_empty() {
        return Err(FeatureError::UnusableOutput);
    }
    Ok(Summary {
        text,
        messages_covered: covered as u32,
    })
}

/// Whether `sentence` speaks in the first person ("I'm in Leeds"): in a
/// summary that is a message copied without its sender.
fn speaks_for_itself(sentence: &str) -> bool {
    const FIRST_PERSON: &[&str] = &[
        "i", "i'm", "i'll", "i've", "i'd", "me", "my", "we", "we're", "we'll", "us", "our",
    ];
    sentence
        .split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '\u{2019}')
        .any(|w| FIRST_PERSON.contains(&w.replace('\u{2019}', "'").to_lowercase().as_str()))
}

/// Bytes of transcript that fit the model's context beside the instructions
/// and an answer of `answer_tokens`.
fn transcript_budget(answer_tokens: usize) -> usize {
    CONTEXT_TOKENS.saturating_sub(PROMPT_OVERHEAD_TOKENS + answer_tokens) * MIN_BYTES_PER_TOKEN
}

/// Whether a message belongs in the summary: it has text and does not
/// address the assistant.
fn is_conversation(message: &Message) -> bool {
    !message.text.trim().is_empty() && !grounding::is_instruction(&message.text)
}

/// The last `covered` messages of the conversation, oldest first.
fn recent_conversation(messages: &[Message], covered: usize) -> Vec<&Message> {
    let mut window: Vec<&Message> = messages
        .iter()
        .rev()
        .filter(|m| is_conversation(m))
        .take(covered)
        .collect();
    window.reverse();
    window
}

/// The model's `answer` without sentences that hold a fact the `window`
/// does not, completed from the window when it misses one of its numbers
/// or times, and cut to `max_words`.
fn checked_summary(answer: &str, window: &[&Message], max_words: usize) -> String {
    let lines: Vec<String> = window.iter().map(|m| transcript_line(m)).collect();
    let source: grounding::Source = lines.iter().map(String::as_str).collect();
    let grounded: Vec<&str> = grounding::sentences(answer)
        .into_iter()
        .filter(|s| {
            !grounding::is_quoted_line(s)
                && !s.ends_with('?')
                && !speaks_for_itself(s)
                && source.grounds(s)
        })
        .collect();
    if grounded.len() < grounding::sentences(answer).len() {
        events::emit(
            Level::Debug,
            Event::OutputRepaired,
            &[(FieldName::OutputBytes, events::bytes(answer))],
        );
    }
    let said: BTreeSet<String> = grounding::terms(&grounded.join(" ")).into_iter().collect();
    let misses_a_number = window
        .iter()
        .flat_map(|m| grounding::terms(&m.text))
        .any(|t| t.starts_with(|c: char| c.is_ascii_digit()) && !said.contains(&t));
    if !grounded.is_empty() && !misses_a_number {
        return output::limit_words(&grounded.join(" "), max_words);
    }
    // The model's sentences, fragments left out, keep a third of the words;
    // the conversation's own sentences carry the facts in the rest.
    let mut summary = String::new();
    for sentence in grounded
        .iter()
        .filter(|s| count_words(s) >= MIN_SENTENCE_WORDS)
    {
        if count_words(&summary) + count_words(sentence) > max_words / 3 {
            break;
        }
        push_sentence(&mut summary, sentence);
    }
    let left = max_words.saturating_sub(count_words(&summary));
    let key = key_sentences(window, &summary, left);
    push_sentence(&mut summary, &key);
    output::limit_words(&summary, max_words)
}

/// The lowercased words of `text` of four letters or more: short words
/// are mostly function words.
fn content_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .collect()
}

fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Appends `sentence` to `text`, ending what `text` holds with a full stop
/// unless it ends a sentence or opens one with a label (`Ann:`).
fn push_sentence(text: &mut String, sentence: &str) {
    if sentence.is_empty() {
        return;
    }
    if !text.is_empty() {
        if !text.ends_with(['.', '!', '?', ':']) {
            text.push('.');
        }
        text.push(' ');
    }
    text.push_str(sentence);
}

/// The window's sentences that carry the most of its facts (terms) not in
/// `summary`, then the most words not yet in it (items of lists,
/// what is brought, where), chosen greedily (a later sentence wins a tie:
/// plans settle late in a thread), at most `max_words` words with their
/// senders, in conversation order as `Sender: sentence sentence.`.
fn key_sentences(window: &[&Message], summary: &str, max_words: usize) -> String {
    struct Unit<'a> {
        message: usize,
        text: &'a str,
        terms: BTreeSet<String>,
        words: BTreeSet<String>,
    }
    let units: Vec<Unit<'_>> = window
        .iter()
        .enumerate()
        .flat_map(|(message, m)| {
            grounding::sentences(&m.text)
                .into_iter()
                .map(move |text| Unit {
                    message,
                    text,
                    terms: grounding::terms(text).into_iter().collect(),
                    words: content_words(text),
                })
        })
        .collect();
    let mut known: BTreeSet<String> = grounding::terms(summary).into_iter().collect();
    let mut known_words = content_words(summary);
    let mut chosen = vec![false; units.len()];
    let mut senders = BTreeSet::new();
    let mut used = 0;
    loop {
        let cost = |u: &Unit<'_>| {
            let sender = if senders.contains(&u.message) {
                0
            } else {
                count_words(&window[u.message].sender) + 1
            };
            count_words(u.text) + sender
        };
        let best = units
            .iter()
            .enumerate()
            .filter(|(i, u)| !chosen[*i] && used + cost(u) <= max_words)
            .map(|(i, u)| {
                let new_terms = u.terms.difference(&known).count();
                let new_words = u.words.difference(&known_words).count();
                ((new_terms, new_words), i)
            })
            .filter(|(new, _)| *new != (0, 0))
            .max();
        let Some((_, i)) = best else { break };
        known_words.extend(units[i].words.iter().cloned());
        used += cost(&units[i]);
        chosen[i] = true;
        senders.insert(units[i].message);
        known.extend(units[i].terms.iter().cloned());
    }
    let mut out = String::new();
    let mut last_message = None;
    for (unit, _) in units.iter().zip(&chosen).filter(|(_, c)| **c) {
        if last_message != Some(unit.message) {
            push_sentence(&mut out, window[unit.message].sender.trim());
            out.push(':');
            last_message = Some(unit.message);
        }
        push_sentence(&mut out, unit.text);
    }
    if !out.is_empty() && !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The transcript of the most recent messages that fit in `budget` bytes,
/// oldest first, and how many messages it covers. The newest message is
/// always included, cut to the budget if it alone is longer.
fn recent_transcript(messages: &[Message], budget: usize) -> (String, usize) {
    const CUT: &str = "…";
    let mut lines = Vec::new();
    let mut used = 0;
    for message in messages.iter().rev().filter(|m| is_conversation(m)) {
        let mut line = transcript_line(message);
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

/// A message as the prompt's transcript shows it.
fn transcript_line(message: &Message) -> String {
    prompt::transcript_line(&message.sender, message.sent_at, &message.text)
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
    fn first_person_sentences_are_recognised() {
        assert!(speaks_for_itself("I'm in Leeds Tuesday."));
        assert!(speaks_for_itself("Then we\u{2019}ll book it."));
        assert!(!speaks_for_itself("Ines brings the stove; Bastian drives."));
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
