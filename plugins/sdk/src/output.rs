//! Turning raw model text into an answer.

/// Labels small models like to put before their answer.
const LABELS: &[&str] = &[
    "summary:",
    "rewritten message:",
    "rewrite:",
    "rewritten:",
    "message:",
    "answer:",
    "here is",
];

/// Trims the answer, drops a leading label line or prefix, surrounding
/// quotes and chat-template tokens, and folds runs of spaces.
pub fn clean(raw: &str) -> String {
    let sanitised = crate::prompt::sanitise(raw);
    let mut text = sanitised.trim();
    while let Some(label) = LABELS
        .iter()
        .find(|label| starts_with_ignoring_ascii_case(text, label))
    {
        // "Here is the summary:\n..." — drop up to the end of the label line.
        let cut = if *label == "here is" {
            text.find([':', '\n']).map_or(text.len(), |i| i + 1)
        } else {
            label.len()
        };
        text = text[cut..].trim_start();
    }
    let text = text
        .trim_matches(|c| c == '"' || c == '\u{201c}' || c == '\u{201d}')
        .trim();
    // `text` is trimmed, so its first and last lines have words: no blank
    // line can lead or trail.
    let mut folded = String::with_capacity(text.len());
    for (index, line) in text.lines().enumerate() {
        if index > 0 {
            folded.push('\n');
        }
        crate::text::push_words(&mut folded, line);
    }
    folded
}

/// Whether `text` starts with the ASCII `prefix`, in any case. The matched
/// bytes are ASCII, so `prefix.len()` is a char boundary of `text`.
fn starts_with_ignoring_ascii_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The first paragraph of `text`.
pub fn first_paragraph(text: &str) -> &str {
    let end = crate::text::find_pair(text, b"\n\n").unwrap_or(text.len());
    text[..end].trim()
}

/// At most `max_words` words, ending at the last sentence end inside the
/// limit when there is one.
pub fn limit_words(text: &str, max_words: usize) -> String {
    if crate::text::count_words(text) <= max_words {
        return text.to_owned();
    }
    let cut = crate::text::words(text)
        .take(max_words)
        .collect::<Vec<_>>()
        .join(" ");
    match cut.rfind(['.', '!', '?']) {
        Some(end) if end > cut.len() / 2 => cut[..=end].to_owned(),
        _ => cut,
    }
}

/// Drops an unfinished last sentence (for answers cut by the token limit),
/// when a sentence ends in the second half of the text.
pub fn drop_unfinished_sentence(text: &str) -> &str {
    match text.rfind(['.', '!', '?']) {
        Some(end) if end + 1 < text.len() && end > text.len() / 2 => &text[..=end],
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_labels_quotes_and_tokens() {
        assert_eq!(
            clean("  Summary: \"Ann and Bo agree.\"<|im_end|>"),
            "Ann and Bo agree."
        );
        assert_eq!(clean("Here is the summary:\nThey   met."), "They met.");
        assert_eq!(clean("Rewritten message: See you at 5"), "See you at 5");
    }

    #[test]
    fn clean_drops_repeated_labels_in_any_case_and_keeps_paragraphs() {
        assert_eq!(
            clean("SUMMARY: answer:  Two\t words.\n\n  Next  line "),
            "Two words.\n\nNext line"
        );
        assert_eq!(clean("Summarÿ: kept"), "Summarÿ: kept");
        assert_eq!(clean("Summary:"), "");
        assert_eq!(clean("plain text"), "plain text");
    }

    #[test]
    fn limit_words_prefers_sentence_end() {
        assert_eq!(
            limit_words("One two three. Four five six seven", 5),
            "One two three."
        );
        assert_eq!(limit_words("a b c d e f", 3), "a b c");
        assert_eq!(limit_words("short", 3), "short");
    }

    #[test]
    fn unfinished_sentence_is_dropped_only_late_in_the_text() {
        assert_eq!(
            drop_unfinished_sentence("It is getting rather late today. I will be"),
            "It is getting rather late today."
        );
        assert_eq!(drop_unfinished_sentence("Done."), "Done.");
        assert_eq!(
            drop_unfinished_sentence("Ok. Then a long unfinished tail without any end"),
            "Ok. Then a long unfinished tail without any end"
        );
    }

    #[test]
    fn first_paragraph_stops_at_blank_line() {
        assert_eq!(first_paragraph("a\nb\n\nc"), "a\nb");
        assert_eq!(first_paragraph(" é\n"), "é");
        assert_eq!(first_paragraph("\n\nlater"), "");
    }
}
