//! Byte-level scans of text, the bulk of a short request's guest time.
//!
//! Inside the sandbox every byte-at-a-time loop costs several times what it
//! does natively, and a request runs a dozen of them over the same text. So
//! ASCII text (most of it) is read eight bytes at a time where a scan can
//! be, single bytes are found with `memchr`, and every result is exactly
//! what the `str` method it replaces would give (the tests compare them).

/// Eight copies of a byte.
const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The high bit of each byte of `chunk` that is zero, and no other bit.
fn zero_bytes(chunk: u64) -> u64 {
    const LOW7: u64 = splat(0x7F);
    !(((chunk & LOW7).wrapping_add(LOW7)) | chunk | LOW7)
}

/// The high bit of each byte of `chunk` that is below 0x20, and no other bit.
pub(crate) fn control_bytes(chunk: u64) -> u64 {
    // Only the low seven bits are added to, so no carry crosses a byte;
    // bytes >= 0x80 are masked out at the end.
    let low7 = chunk & splat(0x7F);
    let below = !(low7.wrapping_add(splat(0x80 - 0x20))) & splat(0x80);
    below & !chunk
}

/// The high bit of each byte of `chunk` equal to `byte`.
pub(crate) fn bytes_equal(chunk: u64, byte: u8) -> u64 {
    zero_bytes(chunk ^ splat(byte))
}

/// `bytes` as eight-byte chunks, each read as a little-endian `u64` (so byte
/// `i` of the chunk is byte `i` of the text), and the bytes left over.
pub(crate) fn u64_chunks(bytes: &[u8]) -> (impl Iterator<Item = u64> + '_, &[u8]) {
    let (chunks, rest) = bytes.as_chunks::<8>();
    (chunks.iter().map(|chunk| u64::from_le_bytes(*chunk)), rest)
}

/// Whitespace in ASCII text without U+000B, as `char::is_whitespace` sees
/// it: space and `\t` to `\r` (U+000B, in that range, is ruled out first).
fn is_ascii_space(b: u8) -> bool {
    (b == b' ') | (b.wrapping_sub(b'\t') <= b'\r' - b'\t')
}

/// The high bit of each byte of ASCII `chunk` that is whitespace (space or
/// `\t` to `\r`), and no other bit.
fn space_bytes(chunk: u64) -> u64 {
    // For an ASCII byte b, b + 0x77 and b + 0x72 carry into the high bit
    // exactly when b >= 0x09 and b >= 0x0E, and never into the next byte.
    let tab_to_return = chunk.wrapping_add(splat(0x77)) & !chunk.wrapping_add(splat(0x72));
    bytes_equal(chunk, b' ') | (tab_to_return & splat(0x80))
}

/// Whether `text` is ASCII without U+000B, the one character that
/// `split_whitespace` splits at and `u8::is_ascii_whitespace` does not.
fn splits_by_bytes(text: &str) -> bool {
    let (mut chunks, rest) = u64_chunks(text.as_bytes());
    chunks.all(|chunk| chunk & splat(0x80) == 0 && bytes_equal(chunk, 0x0B) == 0)
        && rest.iter().all(|&b| b.is_ascii() && b != 0x0B)
}

/// The words of `text`, exactly as [`str::split_whitespace`] yields them.
pub(crate) enum Words<'a> {
    /// ASCII text without U+000B, split by bytes. `at` is where the rest begins.
    Ascii {
        text: &'a str,
        at: usize,
    },
    Unicode(std::str::SplitWhitespace<'a>),
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            Words::Ascii { text, at } => {
                let rest = text.as_bytes().get(*at..)?;
                let start = *at + rest.iter().position(|&b| !is_ascii_space(b))?;
                let word = &text.as_bytes()[start..];
                let end = start
                    + word
                        .iter()
                        .position(|&b| is_ascii_space(b))
                        .unwrap_or(word.len());
                *at = end;
                // ASCII text: every byte index is a char boundary.
                text.get(start..end)
            }
            Words::Unicode(words) => words.next(),
        }
    }
}

pub(crate) fn words(text: &str) -> Words<'_> {
    words_split(text, splits_by_bytes(text))
}

/// [`words`] when the caller already knows whether `text` splits by bytes.
fn words_split(text: &str, by_bytes: bool) -> Words<'_> {
    if by_bytes {
        Words::Ascii { text, at: 0 }
    } else {
        Words::Unicode(text.split_whitespace())
    }
}

/// How many words `text` has, as `split_whitespace` counts them: on ASCII
/// text by counting the bytes that start a word, eight at a time.
pub(crate) fn count_words(text: &str) -> usize {
    if !splits_by_bytes(text) {
        return text.split_whitespace().count();
    }
    let (chunks, rest) = u64_chunks(text.as_bytes());
    // The high bit of byte 0 when the byte before the chunk is whitespace
    // (or there is none): then a word may start at byte 0.
    let mut space_before = 0x80;
    let mut count = 0;
    for chunk in chunks {
        let spaces = space_bytes(chunk);
        let starts = !spaces & ((spaces << 8) | space_before) & splat(0x80);
        count += starts.count_ones() as usize;
        space_before = (spaces >> 56) & 0x80;
    }
    let mut before = space_before != 0;
    for &b in rest {
        let space = is_ascii_space(b);
        count += usize::from(before & !space);
        before = space;
    }
    count
}

/// Where the two-byte `pair` (whose first byte is ASCII) first occurs in
/// `text`: `memchr` for the first byte, then a look at the next.
pub(crate) fn find_pair(text: &str, pair: &[u8; 2]) -> Option<usize> {
    debug_assert!(pair[0].is_ascii());
    let mut from = 0;
    loop {
        // `from` follows an ASCII byte, so it is a char boundary.
        let at = from + text.get(from..)?.find(char::from(pair[0]))?;
        if text.as_bytes().get(at + 1) == Some(&pair[1]) {
            return Some(at);
        }
        from = at + 1;
    }
}

/// Appends the words of `text` to `out`, one space between each: runs of
/// whitespace, newlines included, become one space.
pub(crate) fn push_words(out: &mut String, text: &str) {
    // Most messages already are single words between single spaces: then
    // one copy does, instead of one per word.
    let by_bytes = splits_by_bytes(text);
    if by_bytes && is_single_spaced(text.as_bytes()) {
        out.push_str(text);
        return;
    }
    for (index, word) in words_split(text, by_bytes).enumerate() {
        if index > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// Whether ASCII `text` (without U+000B) has no leading, trailing or repeated
/// whitespace and no whitespace but single spaces. Bytes below 0x20 other
/// than whitespace also say no (the caller then splits, which is exact).
fn is_single_spaced(text: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (text.first(), text.last()) else {
        return true;
    };
    if is_ascii_space(first) || is_ascii_space(last) {
        return false;
    }
    let (chunks, rest) = u64_chunks(text);
    // Whether the byte before the current chunk was a space.
    let mut space_before = false;
    for chunk in chunks {
        let spaces = bytes_equal(chunk, b' ');
        // A space whose next byte, in this chunk or the next, is a space.
        let doubled = spaces & (spaces >> 8) != 0 || (space_before && spaces & 0x80 != 0);
        if doubled || control_bytes(chunk) != 0 {
            return false;
        }
        space_before = spaces >> 63 != 0;
    }
    let mut before = space_before;
    rest.iter().all(|&b| {
        let space = b == b' ';
        let ok = b >= 0x20 && !(before && space);
        before = space;
        ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: &[&str] = &[
        "",
        "x",
        " a",
        "a ",
        "a  b",
        "one two",
        "a\nb",
        "a\u{c}b",
        "a\u{b}b",
        "  a\tb\n\nc  ",
        " \r\n ",
        "x\u{a0}y\u{2003}z é",
        "eight by tes ok  and a double space after the eighth byte",
        "1234567  9",
        "1234567 \t9",
        "Lunch moves to Friday at noon, says Ann; Bo agrees and asks who books.",
        "Lunch moves to Friday at noon, says Ann; Bo agrees and\u{7} asks who books.",
        "seven..\x0cdouble\r\nspace  at\tthe\x0bend  ",
        "seven..\x0cdouble\r\nspace  at\tthe\x0cend  ",
        "       x        ",
    ];

    #[test]
    fn words_counts_and_folding_are_those_of_split_whitespace() {
        for text in TEXTS {
            let expected: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(words(text).collect::<Vec<_>>(), expected, "{text:?}");
            assert_eq!(count_words(text), expected.len(), "{text:?}");
            let mut out = String::new();
            push_words(&mut out, text);
            assert_eq!(out, expected.join(" "), "{text:?}");
        }
    }

    #[test]
    fn single_spacing_is_recognised_at_every_offset() {
        for at in 0..20 {
            let mut text = "abcdefghijklmnopqrstuvw".to_owned();
            text.replace_range(at + 1..at + 2, " ");
            assert!(is_single_spaced(text.as_bytes()), "{text:?}");
            for second in [" ", "\n", "\u{1}"] {
                let mut bad = text.clone();
                bad.replace_range(at + 2..at + 3, second);
                assert!(!is_single_spaced(bad.as_bytes()), "{bad:?}");
            }
        }
    }

    #[test]
    fn byte_classes_are_exact_for_every_byte_at_every_position() {
        for byte in 0..=255u8 {
            for position in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[position] = byte;
                let chunk = u64::from_le_bytes(bytes);
                let bit = 0x80u64 << (8 * position);
                assert_eq!(
                    control_bytes(chunk),
                    if byte < 0x20 { bit } else { 0 },
                    "{byte:#x} at {position}"
                );
                assert_eq!(
                    bytes_equal(chunk, b'<'),
                    if byte == b'<' { bit } else { 0 },
                    "{byte:#x} at {position}"
                );
                if byte.is_ascii() {
                    assert_eq!(
                        space_bytes(chunk),
                        if is_ascii_space(byte) { bit } else { 0 },
                        "{byte:#x} at {position}"
                    );
                }
            }
        }
    }

    #[test]
    fn pairs_are_found_where_str_find_finds_them() {
        for (text, pair) in [
            ("a<b</c", b"</"),
            ("<<|x", b"<|"),
            ("x\n\ny", b"\n\n"),
            ("é<", b"<|"),
            ("", b"</"),
        ] {
            let expected = text.find(std::str::from_utf8(pair).expect("ascii"));
            assert_eq!(find_pair(text, pair), expected, "{text:?}");
        }
    }
}
