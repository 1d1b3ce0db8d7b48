//! The suggest feature: rewrites of a draft message in a chosen tone.
//!
//! The draft and recent context are quoted into `<draft>` and `<context>`
//! data blocks. The first rewrite is greedy; further ones sample with
//! different seeds, and duplicates are dropped, so the user gets distinct
//! options or fewer of them, never the same one twice. Context messages
//! that address the assistant ("ignore previous instructions...") are left
//! out of the prompt.
//!
//! A rewrite must say what the draft says: one that drops a time, number,
//! day or name of the draft, adds one that neither the draft nor the
//! context holds ([`grounding`]), adds a link, stutters or runs far longer
//! than the draft is refused. When the model offers nothing but refused
//! rewrites, the user gets the draft itself, tidied ([`tidy`]): chat
//! shorthand spelled out, sentences capitalised and ended.

use cloister_plugin_sdk::inference::FinishReason;
use cloister_plugin_sdk::log::{Event, FieldName, Level};
use cloister_plugin_sdk::{FeatureError, chat, events, greedy, grounding, limits, output, prompt};

pub use bindings::{Message, SuggestInput, Tone};

cloister_plugin_sdk::feature_bindings!("../../wit", "cloister:suggest/suggest");

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

impl bindings::Guest for Suggest {
    fn run(request: SuggestInput) -> Result<Vec<String>, FeatureError> {
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
        result
    }
}

bindings::export!(Suggest with_types_in bindings);

fn tone_instruction(tone: Tone) -> &'static str {
    match tone {
        Tone::Neutral => "a clear, neutral",
        Tone::Friendly => "a warm, friendly",
        Tone::Formal => "a polite, formal",
        Tone::Concise => "a short, concise",
    }
}

fn suggest(request: &SuggestInput) -> Result<Vec<String>, FeatureError> {
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
    let context: Vec<String> = recent
        .iter()
        .filter(|m| !grounding::is_instruction(&m.text))
        .map(|m: &Message| prompt::transcript_line(&m.sender, m.sent_at, &m.text))
        .collect();
    let tone = tone_instruction(request.tone);
    let system = format!(
        "You help a user rewrite the draft of their next chat message in {tone} tone. \
         Keep its meaning and language, and every name, number, time, day and place \
         exactly as in the draft; add nothing new. Reply with the rewritten message only. {}",
        prompt::data_rule(&["context", "draft"])
    );
    let source: grounding::Source = std::iter::once(draft)
        .chain(context.iter().map(String::as_str))
        .collect();
    let max_words = max_rewrite_words(draft);
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
    let mut refused = false;
    for attempt in 0..u64::from(request.count) {
        let mut params = greedy(max_tokens);
        // Small models like to echo the instruction or reopen the data block.
        params.stop = vec![
            "\nRewrite the draft".into(),
            "<draft>".into(),
            "<context>".into(),
        ];
        if attempt > 0 {
            params.temperature = 0.6;
            params.top_p = 0.9;
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
        let faithful = usable && says_what_the_draft_says(&text, draft, &source, max_words);
        refused |= usable && !faithful;
        if !faithful {
            events::emit(
                Level::Debug,
                Event::OutputRepaired,
                &[(FieldName::OutputBytes, events::bytes(&text))],
            );
        } else if !suggestions.iter().any(|s| s.eq_ignore_ascii_case(&text)) {
            suggestions.push(text);
        }
    }
    if suggestions.is_empty() && refused {
        suggestions.push(tidy(draft));
    }
    if suggestions.is_empty() {
        return Err(FeatureError::UnusableOutput);
    }
    Ok(suggestions)
}

/// Longest acceptable rewrite: twice the draft and 15 words more, room for
/// a greeting, a closing and the politeness a tone asks for.
fn max_rewrite_words(draft: &str) -> usize {
    2 * draft.split_whitespace().count() + 15
}

/// Whether `rewrite` keeps every time, number, day and name of `draft`
/// (each number as often as the draft has it: `5.12` is not kept by the
/// `12` of `03/12`), adds none that `source` (draft and context) lacks,
/// adds no link, does not stutter (a word twice in a row), quotes no
/// transcript line or markup that does not open a line of the draft
/// (`Ann: ...`, `[10:05]`, `<<...>>`) and has at most `max_words` words.
fn says_what_the_draft_says(
    rewrite: &str,
    draft: &str,
    source: &grounding::Source,
    max_words: usize,
) -> bool {
    let said: grounding::Source = std::iter::once(rewrite).collect();
    let words: Vec<String> = rewrite
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .collect();
    let stutters = words
        .windows(2)
        .any(|pair| pair[0].chars().count() > 2 && pair[0] == pair[1]);
    let quotes = rewrite.lines().any(|line| {
        grounding::is_quoted_line(line)
            && grounding::speaker_label(line).is_none_or(|label| {
                !draft
                    .lines()
                    .any(|d| grounding::speaker_label(d) == Some(label))
            })
    });
    said.grounds(draft)
        && keeps_every_number(draft, rewrite)
        && source.grounds(rewrite)
        && !quotes
        && (draft.contains("://") || !rewrite.contains("://"))
        && !stutters
        && words.len() <= max_words
}

/// Whether `rewrite` has every digit group of `draft` at least as often.
fn keeps_every_number(draft: &str, rewrite: &str) -> bool {
    let numbers = |text| {
        let mut numbers: Vec<String> = grounding::terms(text)
            .into_iter()
            .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        numbers.sort_unstable();
        numbers
    };
    let mut kept = numbers(rewrite).into_iter().peekable();
    numbers(draft).into_iter().all(|needed| {
        while kept.next_if(|k| *k < needed).is_some() {}
        kept.next_if_eq(&needed).is_some()
    })
}

/// Chat shorthand and its spelled-out form.
const SHORTHAND: &[(&str, &str)] = &[
    ("u", "you"),
    ("ur", "your"),
    ("r", "are"),
    ("i", "I"),
    ("im", "I'm"),
    ("ive", "I've"),
    ("cant", "can't"),
    ("dont", "don't"),
    ("wont", "won't"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("isnt", "isn't"),
    ("tmrw", "tomorrow"),
    ("tmr", "tomorrow"),
    ("pls", "please"),
    ("plz", "please"),
    ("thx", "thanks"),
    ("b4", "before"),
    ("gonna", "going to"),
    ("wanna", "want to"),
];

/// The draft itself, tidied: shorthand spelled out, each sentence opening
/// with a capital and the text ending with punctuation. It says exactly
/// what the draft says.
pub fn tidy(draft: &str) -> String {
    let mut out = String::with_capacity(draft.len() + 16);
    let mut opens = true;
    for word in draft.split_whitespace() {
        let end = word
            .find(|c: char| !c.is_alphanumeric() && c != '\'')
            .unwrap_or(word.len());
        let (core, rest) = word.split_at(end);
        let lower = core.to_lowercase();
        let spelled = SHORTHAND
            .iter()
            .find(|(short, _)| *short == lower)
            .map_or(core, |(_, long)| long);
        if !out.is_empty() {
            out.push(' ');
        }
        let mut chars = spelled.chars();
        if opens && let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        } else {
            out.push_str(spelled);
        }
        out.push_str(rest);
        opens = rest.ends_with(['.', '!', '?']) || (opens && spelled.is_empty());
    }
    if out.ends_with(|c: char| c.is_alphanumeric()) {
        out.push('.');
    }
    out
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

    #[test]
    fn tidy_spells_out_shorthand_and_keeps_every_fact() {
        assert_eq!(
            tidy("cant make it at 5 sorry, traffic is crazy, be there like 5:30"),
            "Can't make it at 5 sorry, traffic is crazy, be there like 5:30."
        );
        assert_eq!(
            tidy("hey u still ok for tmrw 10am? bring ur card. i'll wait"),
            "Hey you still ok for tomorrow 10am? Bring your card. I'll wait."
        );
        assert_eq!(tidy("Ok!"), "Ok!");
    }

    fn source_of(draft: &str) -> grounding::Source {
        std::iter::once(draft).collect()
    }

    #[test]
    fn rewrites_that_change_the_facts_are_refused() {
        let draft = "cant make it at 5, be there at 5:30, tell Maria";
        let mut source = source_of(draft);
        source.add("[10:00] Bo: meeting at the flat");
        let ok = |rewrite| says_what_the_draft_says(rewrite, draft, &source, 25);
        assert!(ok(
            "I'm sorry, I can't make it at 5; I'll be at the flat by 5:30. Please tell Maria."
        ));
        let reminder = "Reminder: Lena has PE at 9";
        assert!(says_what_the_draft_says(
            "Reminder: Lena has PE at 9.",
            reminder,
            &source_of(reminder),
            25
        ));
        for changed in [
            "Sorry, I can't make it at 6pm; I'll be there at 5:30. Tell Maria.",
            "I can't make it at 5; I'll be there later. Tell Maria.",
            "I can't make it at 5, see you at 5:30 on Friday, tell Maria.",
            "I can't make it at 5, see you at 5:30, tell Maria and Eminence.",
            "I can't make it at 5, see you at 5:30, tell Maria: http://evil.example",
            "BANANA BANANA at 5 and 5:30, Maria",
            "Bo: can't make it at 5, there at 5:30, tell Maria",
            "[10:00] I can't make it at 5, there at 5:30, tell Maria",
            "Maria: can't make it at 5, there at 5:30, tell Maria",
            "I can't make it, see you at 5:30, tell Maria.",
            "Sorry, I can't make it at 5 and will only be there at 5:30, so please could you tell Maria that I am running a little late today because of the traffic.",
        ] {
            assert!(!ok(changed), "{changed}");
        }
    }
}
