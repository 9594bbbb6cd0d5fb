//! From streamed LLM text to speakable pieces.
//!
//! [`SentenceSplitter`] takes text deltas as they arrive and hands back pieces to speak:
//! whole sentences, except that the first piece may be released at a clause (a comma
//! after a few words), or before a word that opens a phrase ("and", "with", "because")
//! in a long first sentence without one, so the voice can start sooner. It knows
//! abbreviations, initials, decimals, numbered lists and code fences; each piece goes
//! through [`crate::speakable::speakable`] before it is spoken.

use crate::speakable::speakable;

/// How eagerly to release pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitConfig {
    /// The first piece may end at a comma, semicolon, colon or dash once it has this many
    /// words (0: only at sentence ends).
    pub first_clause_words: usize,
    /// A first piece with no clause or sentence end yet may end before a word that opens
    /// a phrase ([`PHRASE_OPENERS`]) once it has this many words (0: never).
    pub first_phrase_words: usize,
    /// A piece without any boundary is cut at a space after this many bytes.
    pub max_len: usize,
}

/// One sentence as long as a piece split by `config` can be (`max_len` bytes, no
/// boundary before its end), for measuring the voice's memory at its largest.
pub fn longest_piece(config: &SplitConfig) -> String {
    const WORDS: [&str; 9] = [
        "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog",
    ];
    let mut text = String::new();
    for word in WORDS.iter().cycle() {
        if text.len() + word.len() + 2 > config.max_len {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
    }
    text.push('.');
    text
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            first_clause_words: 4,
            first_phrase_words: 6,
            max_len: 280,
        }
    }
}

/// Words after which a period does not end the sentence.
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "gen", "lt", "col", "capt", "rev",
    "hon",
];

/// Abbreviations that end a sentence only when a capitalised word follows.
const ABBREVIATIONS: &[&str] = &[
    "etc", "vs", "approx", "no", "fig", "inc", "ltd", "co", "corp", "dept", "est", "min", "max",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "e.g",
    "i.e", "a.m", "p.m", "u.s", "u.k", "cf", "al",
];

/// Words before which a long first sentence may be cut when it has no comma: they open
/// a phrase, so a pause before them sounds like a speaker drawing breath. Not "of",
/// "than" or "like", which bind to the word before ("one | of the largest").
pub const PHRASE_OPENERS: &[&str] = &[
    "and", "but", "or", "so", "because", "which", "that", "who", "where", "when", "while", "with",
    "from", "for", "to", "in", "on", "at", "by", "about", "after", "before", "if", "since",
    "until", "during", "into", "around",
];

/// Splits streamed text into speakable pieces.
#[derive(Debug, Clone, Default)]
pub struct SentenceSplitter {
    config: SplitConfig,
    buffer: String,
    in_code: bool,
    released: usize,
}

impl SentenceSplitter {
    /// A splitter with these settings.
    pub fn new(config: SplitConfig) -> SentenceSplitter {
        SentenceSplitter {
            config,
            ..SentenceSplitter::default()
        }
    }

    /// Adds a delta of streamed text; returns the pieces it completed, cleaned for speech.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buffer.push_str(delta);
        self.drain(false)
    }

    /// The text is complete: returns what is left.
    pub fn finish(&mut self) -> Vec<String> {
        let pieces = self.drain(true);
        self.in_code = false;
        pieces
    }

    /// Forgets everything buffered (the answer was interrupted).
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.in_code = false;
        self.released = 0;
    }

    fn drain(&mut self, at_end: bool) -> Vec<String> {
        let mut pieces = Vec::new();
        loop {
            if self.in_code {
                match self.buffer.find("```") {
                    Some(end) => {
                        // Drop the code and the rest of the closing fence's line.
                        let after = end + 3;
                        let line_end = self.buffer[after..]
                            .find('\n')
                            .map_or(self.buffer.len(), |i| after + i + 1);
                        self.buffer.drain(..line_end);
                        self.in_code = false;
                        continue;
                    }
                    None => {
                        // Keep a possible partial fence ("`" or "``") for the next delta.
                        let keep = self.buffer.len().saturating_sub(2);
                        let keep = (0..=keep)
                            .rev()
                            .find(|&i| self.buffer.is_char_boundary(i))
                            .unwrap_or(0);
                        self.buffer.drain(..keep);
                        if at_end {
                            self.buffer.clear();
                        }
                        break;
                    }
                }
            }
            let fence = self.buffer.find("```");
            let limit = fence.unwrap_or(self.buffer.len());
            let first = self.released == 0;
            let cut = find_boundary(
                &self.buffer[..limit],
                first,
                fence.is_some() || at_end,
                self.config,
            );
            if let Some(cut) = cut {
                let raw: String = self.buffer.drain(..cut).collect();
                self.emit(&raw, &mut pieces);
                continue;
            }
            if let Some(start) = fence {
                let raw: String = self.buffer.drain(..start + 3).collect();
                self.emit(&raw[..start], &mut pieces);
                self.in_code = true;
                continue;
            }
            if at_end {
                let raw = std::mem::take(&mut self.buffer);
                self.emit(&raw, &mut pieces);
            }
            break;
        }
        pieces
    }

    fn emit(&mut self, raw: &str, pieces: &mut Vec<String>) {
        let piece = speakable(raw);
        if piece.chars().any(char::is_alphanumeric) {
            self.released += 1;
            pieces.push(piece);
        }
    }
}

/// The byte index just past the first boundary in `text`, if it has one. `complete` says
/// that nothing more will be appended to `text` (so a final `.` needs no lookahead).
fn find_boundary(text: &str, first: bool, complete: bool, config: SplitConfig) -> Option<usize> {
    let marked = punctuation_boundary(text, first, complete, config);
    let phrase = if first {
        phrase_boundary(text, config.first_phrase_words)
    } else {
        None
    };
    // The earlier of the two, so the pieces do not depend on how the text was streamed
    // (a punctuation boundary still waiting for its next word is always after `phrase`).
    match (marked, phrase) {
        (Some(m), Some(p)) => Some(m.min(p)),
        (m, p) => m.or(p),
    }
}

/// The byte index of the first word in `text` that opens a phrase, is complete
/// (whitespace follows it) and has at least `min_words` words before it.
fn phrase_boundary(text: &str, min_words: usize) -> Option<usize> {
    if min_words == 0 {
        return None;
    }
    let mut words_before = 0;
    let mut rest = text;
    loop {
        let start = rest.find(|c: char| !c.is_whitespace())?;
        let len = rest[start..].find(char::is_whitespace)?;
        let word = &rest[start..start + len];
        if words_before >= min_words && PHRASE_OPENERS.contains(&word.to_lowercase().as_str()) {
            return Some(text.len() - rest.len() + start);
        }
        words_before += 1;
        rest = &rest[start + len..];
    }
}

/// The byte index just past the first sentence end, line end, first clause (when `first`)
/// or forced cut in `text`, if it has one.
fn punctuation_boundary(
    text: &str,
    first: bool,
    complete: bool,
    config: SplitConfig,
) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            '\n' if text[..at].trim().chars().any(char::is_alphanumeric) => {
                return Some(at + 1);
            }
            '.' | '!' | '?' | '…' => {
                // Take the whole run of terminators and closing quotes: `?!`, `..."`.
                let mut j = i + 1;
                while j < chars.len()
                    && matches!(
                        chars[j].1,
                        '.' | '!' | '?' | '…' | '"' | '\'' | ')' | ']' | '”' | '’'
                    )
                {
                    j += 1;
                }
                let next = chars.get(j).map(|&(_, n)| n);
                let ends = match next {
                    None => complete,
                    Some(n) => n.is_whitespace(),
                };
                let single_period = c == '.' && j == i + 1;
                if ends && single_period && !complete && needs_next_word(text, at, &chars, j) {
                    // "etc. " ends a sentence only if a capital follows: wait for it.
                    return None;
                }
                if ends && !(single_period && period_continues(text, at, &chars, j)) {
                    let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
                    return Some(end);
                }
                i = j;
                continue;
            }
            ',' | ';' | ':' | '—' if first && config.first_clause_words > 0 => {
                let next_is_space = chars.get(i + 1).is_some_and(|&(_, n)| n.is_whitespace());
                if next_is_space
                    && text[..at].split_whitespace().count() >= config.first_clause_words
                {
                    return Some(chars[i + 1].0);
                }
            }
            _ => {}
        }
        i += 1;
    }
    if text.len() > config.max_len {
        // No boundary in a long run: cut at the last space before the limit.
        let limit = (0..=config.max_len)
            .rev()
            .find(|&b| text.is_char_boundary(b))?;
        return text[..limit].rfind(' ').map(|s| s + 1);
    }
    None
}

/// The word before the period at byte `at`.
fn word_before(text: &str, at: usize) -> &str {
    text[..at]
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"')
        .next()
        .unwrap_or("")
}

/// True if the period at byte `at` follows an abbreviation and nothing but whitespace
/// is known after it, so whether it ends the sentence depends on the next word.
fn needs_next_word(text: &str, at: usize, chars: &[(usize, char)], after: usize) -> bool {
    let lower = word_before(text, at).to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
        && chars[after..].iter().all(|&(_, c)| c.is_whitespace())
}

/// True if the period at byte `at` does not end a sentence: after a title, an
/// abbreviation followed by a lowercase word, an initial, or a list number.
fn period_continues(text: &str, at: usize, chars: &[(usize, char)], after: usize) -> bool {
    let before = &text[..at];
    let word = word_before(text, at);
    let lower = word.to_lowercase();
    let next_word_lower = chars[after..]
        .iter()
        .map(|&(_, c)| c)
        .find(|c| !c.is_whitespace())
        .is_some_and(|c| c.is_lowercase() || c.is_ascii_digit());
    if TITLES.contains(&lower.as_str()) {
        return true;
    }
    if ABBREVIATIONS.contains(&lower.as_str()) && next_word_lower {
        return true;
    }
    // An initial: "J. R. R. Tolkien".
    let mut letters = word.chars();
    if let (Some(l), None) = (letters.next(), letters.next()) {
        if l.is_uppercase() {
            return true;
        }
    }
    // A numbered list item at the start of a line: "2. Preheat the oven".
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let line = before[line_start..].trim();
    !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()) && line.len() <= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(deltas: &[&str]) -> Vec<String> {
        let mut s = SentenceSplitter::new(SplitConfig::default());
        let mut out = Vec::new();
        for d in deltas {
            out.extend(s.push(d));
        }
        out.extend(s.finish());
        out
    }

    /// Every way of cutting `text` into two deltas gives the same pieces.
    fn same_at_every_split(text: &str) -> Vec<String> {
        let whole = split_all(&[text]);
        for (i, _) in text.char_indices().skip(1) {
            assert_eq!(split_all(&[&text[..i], &text[i..]]), whole, "split at {i}");
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(split_all(&refs), whole, "one char at a time");
        whole
    }

    #[test]
    fn the_longest_piece_is_one_piece_as_long_as_the_splitter_allows() {
        let config = SplitConfig::default();
        let text = longest_piece(&config);
        assert!(text.len() <= config.max_len, "{} bytes", text.len());
        assert!(text.len() + 8 > config.max_len, "only {} bytes", text.len());
        assert_eq!(split_all(&[&text]), [text.as_str()]);
        // A sentence one word longer would be cut.
        let longer = format!("{} fox.", text.trim_end_matches('.'));
        assert_eq!(split_all(&[&longer]).len(), 2);
    }

    #[test]
    fn sentences_come_out_as_soon_as_they_end() {
        let mut s = SentenceSplitter::new(SplitConfig {
            first_clause_words: 0,
            ..SplitConfig::default()
        });
        assert!(s.push("The sky is blue").is_empty());
        assert!(s.push(".").is_empty(), "a period needs the next character");
        assert_eq!(s.push(" It is"), ["The sky is blue."]);
        assert_eq!(s.push(" late! Go"), ["It is late!"]);
        assert_eq!(s.finish(), ["Go"]);
    }

    #[test]
    fn the_first_piece_may_end_at_a_clause_later_ones_do_not() {
        let pieces = same_at_every_split(
            "Well, the capital of France is Paris, a city on the Seine. It is large, old, and busy.",
        );
        assert_eq!(
            pieces,
            [
                "Well, the capital of France is Paris,",
                "a city on the Seine.",
                "It is large, old, and busy."
            ]
        );
    }

    #[test]
    fn a_long_first_sentence_without_a_comma_is_cut_before_a_phrase() {
        let pieces = same_at_every_split(
            "The Moon is about three hundred thousand kilometers from Earth on average and it moves away slowly. Light takes a second and a bit to get there.",
        );
        assert_eq!(
            pieces,
            [
                "The Moon is about three hundred thousand kilometers",
                "from Earth on average and it moves away slowly.",
                "Light takes a second and a bit to get there."
            ]
        );
        // A comma before the phrase word wins, and a short sentence stays whole.
        assert_eq!(
            same_at_every_split("Octopuses have three hearts, and blue blood with copper in it."),
            [
                "Octopuses have three hearts,",
                "and blue blood with copper in it."
            ]
        );
        assert_eq!(
            same_at_every_split("It is sunny and warm in Paris today."),
            ["It is sunny and warm in Paris today."]
        );
        // Words that bind to the word before are not cut at, nor is a word still growing.
        assert_eq!(
            same_at_every_split("Tokyo is one of the largest cities of the whole world."),
            ["Tokyo is one of the largest cities of the whole world."]
        );
        let mut s = SentenceSplitter::new(SplitConfig::default());
        assert!(
            s.push("Our team plays the final game on").is_empty(),
            "on or only?"
        );
        assert_eq!(s.push(" Sunday"), ["Our team plays the final game"]);
        let mut off = SentenceSplitter::new(SplitConfig {
            first_phrase_words: 0,
            ..SplitConfig::default()
        });
        assert!(off
            .push("Our team plays the final game on Sunday")
            .is_empty());
    }

    #[test]
    fn abbreviations_initials_and_decimals_do_not_end_sentences() {
        // After a first piece, so that no piece is cut before a phrase.
        let pieces = same_at_every_split(
            "Yes. Dr. Smith met J. R. R. Tolkien at 3.30 p.m. on the U.S. coast. Pi is 3.14159. Apples, pears, etc. are fruit. I like fruit etc. Next one.",
        );
        assert_eq!(
            pieces,
            [
                "Yes.",
                "Dr. Smith met J. R. R. Tolkien at 3.30 p.m. on the U.S. coast.",
                "Pi is 3.14159.",
                "Apples, pears, etc. are fruit.",
                "I like fruit etc.",
                "Next one."
            ]
        );
    }

    #[test]
    fn numbered_and_bulleted_lists_are_one_piece_per_item_said_as_steps() {
        let pieces = same_at_every_split(
            "Here is the plan:\n1. Preheat the oven to 200 degrees.\n2. Mix 1,500 grams of flour.\n- Stir well\n* Bake for 20 minutes\n",
        );
        assert_eq!(
            pieces,
            [
                "Here is the plan:",
                "First, preheat the oven to 200 degrees.",
                "Second, mix 1,500 grams of flour.",
                "Stir well",
                "Bake for 20 minutes"
            ]
        );
    }

    #[test]
    fn markdown_marks_and_code_are_never_read_aloud() {
        let pieces = same_at_every_split(
            "## Result\nUse **bold** ideas and `cargo build` here. ```rust\nfn main() { println!(\"hi. there\"); }\n```\nThat is *all*.",
        );
        assert_eq!(
            pieces,
            [
                "Result",
                "Use bold ideas and cargo build here.",
                "That is all."
            ]
        );
        for p in &pieces {
            assert!(
                !p.contains('*') && !p.contains('`') && !p.contains('#'),
                "{p}"
            );
        }
    }

    #[test]
    fn an_unfinished_code_block_says_nothing() {
        assert_eq!(split_all(&["Look: ```python\nprint('a. b')\n"]), ["Look:"]);
    }

    #[test]
    fn emoji_urls_and_links_are_spoken_sensibly() {
        let pieces = same_at_every_split(
            "Great idea 🎉👍🏽! See https://www.example.com/docs/page?x=1 or [the guide](https://a.io/g). Tom & Jerry 🇫🇷.",
        );
        assert_eq!(
            pieces,
            [
                "Great idea!",
                "See example.com or the guide.",
                "Tom and Jerry."
            ]
        );
    }

    #[test]
    fn questions_exclamations_and_quotes_end_with_their_marks() {
        let pieces = same_at_every_split("Really?! She said \"stop.\" Then... nothing. Done");
        assert_eq!(
            pieces,
            [
                "Really?!",
                "She said \"stop.\"",
                "Then...",
                "nothing.",
                "Done"
            ]
        );
    }

    #[test]
    fn a_long_run_without_punctuation_is_cut_at_a_space() {
        let text = "word ".repeat(100);
        let pieces = split_all(&[&text]);
        assert!(pieces.len() >= 2, "{pieces:?}");
        assert!(pieces.iter().all(|p| p.len() <= 280));
        assert_eq!(pieces.concat().replace(' ', ""), text.replace(' ', ""));
    }

    #[test]
    fn nothing_speakable_gives_no_piece() {
        assert!(split_all(&["🎉 --- ** ``` code ```"]).is_empty());
        assert!(split_all(&[""]).is_empty());
    }
}
