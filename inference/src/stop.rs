//! Stop sequences over streamed text.

/// What [`StopMatcher::push`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Text that can safely be streamed now (possibly empty).
    Emit(String),
    /// A stop sequence was found; this is the text before it, still to stream.
    Stop(String),
}

/// Finds stop sequences in text that arrives in pieces, holding back any tail
/// that could be the start of a stop sequence, so that no part of a stop
/// sequence is ever streamed.
#[derive(Debug)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Takes the next piece of generated text.
    pub fn push(&mut self, piece: &str) -> Scan {
        self.held.push_str(piece);
        if let Some(cut) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.held.truncate(cut);
            return Scan::Stop(std::mem::take(&mut self.held));
        }
        let keep = self.longest_stop_prefix_suffix();
        let emit_to = self.held.len() - keep;
        let rest = self.held.split_off(emit_to);
        Scan::Emit(std::mem::replace(&mut self.held, rest))
    }

    /// Text held back when generation ended for another reason.
    pub fn finish(self) -> String {
        self.held
    }

    /// Length of the longest suffix of the held text that is a proper prefix
    /// of a stop sequence.
    fn longest_stop_prefix_suffix(&self) -> usize {
        self.held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .map_or(0, |i| self.held.len() - i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(stops: &[&str]) -> StopMatcher {
        StopMatcher::new(&stops.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn holds_back_a_possible_start_and_releases_it_when_it_diverges() {
        let mut m = matcher(&["\n\nUser:"]);
        assert_eq!(m.push("Hello\n"), Scan::Emit("Hello".into()));
        assert_eq!(m.push("\nUs"), Scan::Emit(String::new()));
        assert_eq!(m.push("ually"), Scan::Emit("\n\nUsually".into()));
    }

    #[test]
    fn stops_across_pieces_without_streaming_any_of_the_stop() {
        let mut m = matcher(&["END", "STOP"]);
        assert_eq!(m.push("one ST"), Scan::Emit("one ".into()));
        assert_eq!(m.push("OP two"), Scan::Stop("".into()));
        let mut m = matcher(&["END"]);
        assert_eq!(m.push("abcENDdef"), Scan::Stop("abc".into()));
    }

    #[test]
    fn earliest_stop_wins_and_multibyte_text_is_cut_on_char_boundaries() {
        let mut m = matcher(&["ü!", "b"]);
        assert_eq!(m.push("aü"), Scan::Emit("a".into()));
        assert_eq!(m.push("xb"), Scan::Stop("üx".into()));
        let mut m = matcher(&["zz"]);
        assert_eq!(m.push("héz"), Scan::Emit("hé".into()));
        assert_eq!(m.finish(), "z");
    }
}
