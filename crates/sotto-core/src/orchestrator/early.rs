//! Answers that start early (issue #17). When the user goes quiet, the recogniser decodes
//! what they said (usually the final transcript itself); the language model is asked at
//! once, while the key is still held or the end of the turn is being decided. What it
//! streams is kept back, not shown nor spoken, until the final transcript is in: the same
//! words keep it, other words cancel it and the final is asked instead. Speech again
//! cancels it too, so the user is never answered a question they did not ask.

use sotto_llm::{CancellationToken, Chunk, LlmError};

/// Set in the turn id of an early answer's chunks, so chunks of a cancelled early answer
/// are never taken for those of the answer asked again under the same turn.
pub(super) const EARLY_BIT: u64 = 1 << 63;

/// One chunk of a streamed answer as the relay forwards it (`None`: the stream ended).
pub(super) type LlmItem = Option<Result<Chunk, LlmError>>;

/// An answer started on the words heard at the user's pause.
pub(super) struct Early {
    /// The turn it is for (the turn the utterance will open).
    pub(super) id: u64,
    /// The words it answers.
    pub(super) text: String,
    /// Stops it.
    pub(super) cancel: CancellationToken,
    /// What it streamed before the final transcript confirmed it.
    pub(super) buffered: Vec<LlmItem>,
    /// The final transcript said the same words: the turn's answer is this one.
    pub(super) adopted: bool,
    /// When the language model was asked (assistant clock, ms).
    pub(super) started_ms: f64,
}

impl Early {
    /// Whether `final_text` asks what this answer answers.
    pub(super) fn answers(&self, id: u64, final_text: &str) -> bool {
        self.id == id && !self.adopted && same_words(&self.text, final_text)
    }
}

/// The same words, whatever the case and punctuation ("what is it" = "What is it?").
pub(super) fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(|c| c.is_alphanumeric() || *c == '\'')
                    .flat_map(char::to_lowercase)
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (a, b) = (words(a), words(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_compared_without_case_or_punctuation() {
        assert!(same_words(
            "What is the capital of France?",
            "what is the capital of france"
        ));
        assert!(same_words("It's  fine.", "it's fine"));
        assert!(!same_words(
            "What is the capital of France?",
            "What is the capital of Spain?"
        ));
        assert!(!same_words(
            "What is the capital",
            "What is the capital of France?"
        ));
        assert!(!same_words("", ""));
    }
}
