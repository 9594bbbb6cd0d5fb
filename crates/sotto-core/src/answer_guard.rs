//! What of a streamed answer is worth saying. Pieces pass until the answer repeats itself
//! or grows past what a listener takes in; then the rest is dropped and the model can be
//! stopped. A small model at a low temperature sometimes falls into a loop ("They are also
//! known for their intelligence ..." four times over) or never stops; spoken aloud, that is
//! worse than a short answer.

use std::collections::HashMap;

/// Words in a row that, said three times in one answer, make a loop.
const LOOP_WORDS: usize = 4;
/// How many times the same words in a row may come before the answer is a loop.
const LOOP_TIMES: usize = 3;
/// The fewest words of a piece that, said again word for word, make a repetition.
const SAID_BEFORE_WORDS: usize = 5;
/// How many times longer an answer may be when the question asks for more.
const MORE_FACTOR: usize = 4;

/// Cues in a question that ask for a longer answer than a spoken reply usually is.
const ASKS_FOR_MORE: &[&str] = &[
    "story",
    "poem",
    "in detail",
    "detailed",
    "tell me more",
    "more about",
    "step by step",
    "a long",
    "explain in",
];

/// Why the rest of an answer was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// It said a sentence again, or the same words over and over.
    Repeated,
    /// It went past the answer's word budget.
    TooLong,
    /// The model ran out of tokens mid-sentence: the half sentence is not said.
    Unfinished,
}

impl Cut {
    /// For the log.
    pub fn describe(self) -> &'static str {
        match self {
            Cut::Repeated => "the answer started repeating itself",
            Cut::TooLong => "the answer reached its length for speech",
            Cut::Unfinished => "the model stopped mid-sentence",
        }
    }
}

/// Decides which pieces of one answer are said (see the module's documentation).
#[derive(Debug, Clone)]
pub struct AnswerGuard {
    /// The most words said (0: no limit); the first piece is always said.
    max_words: usize,
    /// The words said so far, lower case, without punctuation.
    words: Vec<String>,
    /// The pieces said so far, as word lists.
    pieces: Vec<Vec<String>>,
    /// Set once the rest is dropped.
    cut: Option<Cut>,
}

impl AnswerGuard {
    /// A guard for the answer to `question`: at most `max_words` words (0: no limit), or
    /// several times that when the question asks for more (a story, details).
    pub fn for_question(question: &str, max_words: usize) -> AnswerGuard {
        let asked = question.to_lowercase();
        let more = ASKS_FOR_MORE.iter().any(|cue| asked.contains(cue));
        AnswerGuard::new(if more {
            max_words.saturating_mul(MORE_FACTOR)
        } else {
            max_words
        })
    }

    /// A guard allowing at most `max_words` words (0: no limit).
    pub fn new(max_words: usize) -> AnswerGuard {
        AnswerGuard {
            max_words,
            words: Vec::new(),
            pieces: Vec::new(),
            cut: None,
        }
    }

    /// Why the rest was dropped, once it was.
    pub fn cut(&self) -> Option<Cut> {
        self.cut
    }

    /// The pieces of `pieces` to say; none once the answer was cut.
    pub fn admit(&mut self, pieces: Vec<String>) -> Vec<String> {
        let mut said = Vec::new();
        for piece in pieces {
            if self.cut.is_some() {
                break;
            }
            let words = words_of(&piece);
            if words.is_empty() {
                said.push(piece);
                continue;
            }
            if self.pieces.contains(&words) || self.said_before(&words) || self.loops_with(&words) {
                self.cut = Some(Cut::Repeated);
                break;
            }
            if self.max_words > 0
                && !self.words.is_empty()
                && self.words.len() + words.len() > self.max_words
            {
                self.cut = Some(Cut::TooLong);
                break;
            }
            self.words.extend(words.iter().cloned());
            self.pieces.push(words);
            said.push(piece);
        }
        said
    }

    /// The last pieces of the answer (what the splitter held back). When the model stopped
    /// at its token limit, a last piece that does not end a sentence is dropped, unless
    /// nothing was said yet.
    pub fn finish(&mut self, mut pieces: Vec<String>, at_token_limit: bool) -> Vec<String> {
        let unfinished = pieces.last().is_some_and(|p| !ends_sentence(p));
        let something_before = !self.words.is_empty() || pieces.len() > 1;
        if at_token_limit && unfinished && something_before && self.cut.is_none() {
            pieces.pop();
            let said = self.admit(pieces);
            self.cut.get_or_insert(Cut::Unfinished);
            return said;
        }
        self.admit(pieces)
    }

    /// Whether `next` (of at least [`SAID_BEFORE_WORDS`] words) was already said word for
    /// word, whatever the pieces it came in ("The Mona Lisa is by Leonardo," "but ..."
    /// then the whole sentence again in one piece).
    fn said_before(&self, next: &[String]) -> bool {
        next.len() >= SAID_BEFORE_WORDS && self.words.windows(next.len()).any(|w| w == next)
    }

    /// Whether saying `next` would repeat the same words in a row too often.
    fn loops_with(&self, next: &[String]) -> bool {
        let all: Vec<&str> = self.words.iter().chain(next).map(String::as_str).collect();
        let mut seen: HashMap<&[&str], usize> = HashMap::new();
        for window in all.windows(LOOP_WORDS) {
            let count = seen.entry(window).or_insert(0);
            *count += 1;
            if *count >= LOOP_TIMES {
                return true;
            }
        }
        false
    }
}

/// The words of `text`, lower case, letters and digits only.
fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether `piece` ends a sentence (closing quotes and brackets aside).
fn ends_sentence(piece: &str) -> bool {
    piece
        .trim_end()
        .trim_end_matches(['"', '\'', ')', '”', '’'])
        .ends_with(['.', '!', '?', '…'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(pieces: &[&str]) -> Vec<String> {
        pieces.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_plain_answer_passes_whole() {
        let mut guard = AnswerGuard::new(60);
        let all = texts(&["The capital of France is Paris.", "It is on the Seine."]);
        assert_eq!(guard.admit(all.clone()), all);
        assert_eq!(guard.finish(Vec::new(), false), Vec::<String>::new());
        assert_eq!(guard.cut(), None);
    }

    #[test]
    fn a_sentence_said_again_in_other_pieces_ends_the_answer() {
        let mut guard = AnswerGuard::new(0);
        let said = guard.admit(texts(&[
            "The Mona Lisa is attributed to Leonardo da Vinci,",
            "but it may have been painted by another artist.",
            "Its attribution is often disputed.",
            "The Mona Lisa is attributed to Leonardo da Vinci, but it may have been painted by another artist.",
        ]));
        assert_eq!(said.len(), 3);
        assert_eq!(guard.cut(), Some(Cut::Repeated));
        // Words said again inside a piece are not a repetition of it.
        let mut guard = AnswerGuard::new(0);
        let said = guard.admit(texts(&[
            "Paris is the capital.",
            "It is big and it is old.",
        ]));
        assert_eq!((said.len(), guard.cut()), (2, None));
    }

    #[test]
    fn a_sentence_said_again_ends_the_answer_before_it() {
        // The octopus answer the default model once gave, cut where it repeats.
        let mut guard = AnswerGuard::new(0);
        let first = guard.admit(texts(&[
            "They are also known for their intelligence and can even learn to play a musical instrument.",
            "They are very good at hiding.",
        ]));
        assert_eq!(first.len(), 2);
        let again = guard.admit(texts(&[
            "They are also known for their intelligence and can even learn to play a musical instrument.",
            "Octopuses have three hearts.",
        ]));
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(guard.cut(), Some(Cut::Repeated));
        // Nothing more is said after the cut, even at the end.
        assert!(guard.finish(texts(&["More."]), false).is_empty());
    }

    #[test]
    fn the_same_words_over_and_over_are_a_loop_even_without_a_full_stop() {
        let mut guard = AnswerGuard::new(0);
        let said = guard.admit(texts(&[
            "La lumière de l'amour,",
            "la lumière de lésés, la lumière de lésés, est la lumière de lésés, la lumière de lésés",
        ]));
        assert_eq!(said, texts(&["La lumière de l'amour,"]));
        assert_eq!(guard.cut(), Some(Cut::Repeated));
    }

    #[test]
    fn an_answer_stops_at_the_sentence_that_would_pass_the_word_budget() {
        let mut guard = AnswerGuard::new(12);
        let said = guard.admit(texts(&[
            "Sleep at the same time every night.",
            "Avoid coffee after noon.",
            "Keep the bedroom dark and cool.",
        ]));
        assert_eq!(
            said,
            texts(&[
                "Sleep at the same time every night.",
                "Avoid coffee after noon."
            ])
        );
        assert_eq!(guard.cut(), Some(Cut::TooLong));
    }

    #[test]
    fn a_first_sentence_longer_than_the_budget_is_still_said() {
        let mut guard = AnswerGuard::new(3);
        let said = guard.admit(texts(&["Paris is the capital and largest city of France."]));
        assert_eq!(said.len(), 1);
        assert_eq!(guard.cut(), None);
    }

    #[test]
    fn a_story_gets_more_words() {
        let long: String = (0..100).map(|i| format!("word{i} ")).collect();
        let mut story = AnswerGuard::for_question("Tell me a story about a dragon", 60);
        assert_eq!(story.admit(texts(&["Once.", &long])).len(), 2);
        let mut fact = AnswerGuard::for_question("What is the capital of France?", 60);
        assert_eq!(fact.admit(texts(&["Paris.", &long])).len(), 1);
    }

    #[test]
    fn a_half_sentence_at_the_token_limit_is_not_said() {
        let mut guard = AnswerGuard::new(0);
        guard.admit(texts(&["Tea needs boiling water."]));
        let said = guard.finish(texts(&["Then you add the"]), true);
        assert!(said.is_empty(), "{said:?}");
        assert_eq!(guard.cut(), Some(Cut::Unfinished));
        // A model that stopped on its own keeps its last words, and so does an answer
        // that is nothing but one half sentence.
        let mut own = AnswerGuard::new(0);
        assert_eq!(own.finish(texts(&["Sure thing"]), false).len(), 1);
        let mut only = AnswerGuard::new(0);
        assert_eq!(only.finish(texts(&["Paris, of course"]), true).len(), 1);
    }
}
