//! Does a transcript sound like the start of a sentence the user has not finished? "Can
//! you tell me ...", "What is the ...", "Remind me to ...": people stop to think in the
//! middle of a sentence, and an assistant that answers the first half is no use.
//!
//! The end-of-turn model (`sotto_audio::SmartTurn`) hears intonation; this reads the
//! words. A sentence that ends on a word English does not end on (an article, a
//! preposition, a conjunction, a filler), on a verb still missing its object ("tell me",
//! "find out", "to know"), or on an ellipsis, is unfinished. Hands-free, the orchestrator
//! then waits a moment for the rest before answering. English only, as the default
//! recogniser is. A false "unfinished" only delays the answer by the wait; a missed one
//! answers half a question, as before.

/// Words a sentence does not end on: articles and possessive determiners ("her" and
/// "each" are left out: "Call her.", "Two dollars each."), prepositions (not the ones
/// that end phrasal verbs: "turn it on", "look it up"), conjunctions and
/// complementisers, fillers; in that order.
#[rustfmt::skip]
const DANGLING: &[&str] = &[
    "a", "an", "the", "my", "your", "his", "our", "their", "every",
    "of", "to", "for", "with", "from", "at", "in", "into", "onto", "about", "by", "than",
    "between", "through", "during", "without", "towards", "toward", "per", "via",
    "and", "or", "but", "because", "if", "whether", "nor", "although", "though", "unless",
    "um", "uh", "er", "erm", "uhm", "hmm", "mm",
];

/// Two-word endings whose verb still wants its object or clause.
const WANTING: &[(&str, &str)] = &[
    ("tell", "me"),
    ("tell", "us"),
    ("show", "me"),
    ("show", "us"),
    ("give", "me"),
    ("remind", "me"),
    ("teach", "me"),
    ("let", "me"),
    ("to", "know"),
    ("find", "out"),
    ("figure", "out"),
    ("work", "out"),
    ("i'd", "like"),
    ("would", "like"),
    ("you", "explain"),
    ("was", "wondering"),
    ("i", "wonder"),
];

/// Verbs that take a person and then "to ...": "remind me to", "ask him to". Whisper
/// often writes that "to", left hanging, as "too" ("Remind me, too.").
const PERSON_TO: &[&str] = &[
    "remind", "tell", "ask", "want", "need", "told", "asked", "wanted", "teach", "help", "allow",
    "get", "let",
];

/// Questions that open with these may end on a preposition: "Where are you from?".
const WH: &[&str] = &[
    "what", "what's", "who", "who's", "whom", "where", "where's", "which", "whose",
];

/// The prepositions such a question ends on ("What is it for?", "Who did you go
/// with?"). "to", "in" and "of" are not among them: "What's the best way to ...", "How
/// many ounces are in ..." and "What is the capital of ..." are broken off far more
/// often than finished ("Who are you talking to?" waits a moment for nothing).
const STRANDED: &[&str] = &["for", "from", "about", "with", "at"];

/// Object pronouns, for [`PERSON_TO`].
const PERSON: &[&str] = &["me", "us", "him", "her", "them", "you"];

/// True when `text` (a final transcript) reads as a sentence broken off.
pub fn sounds_unfinished(text: &str) -> bool {
    let trimmed = text.trim_end();
    if trimmed.ends_with("...") || trimmed.ends_with('…') || trimmed.ends_with(',') {
        return true;
    }
    let words: Vec<String> = trimmed
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .replace('’', "'")
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let Some(last) = words.last() else {
        return false;
    };
    if DANGLING.contains(&last.as_str()) {
        let stranded = trimmed.ends_with('?')
            && STRANDED.contains(&last.as_str())
            && words.first().is_some_and(|w| WH.contains(&w.as_str()));
        return !stranded;
    }
    let back = |n: usize| words.len().checked_sub(n).and_then(|i| words.get(i));
    let (before, verb) = (back(2), back(3));
    let wanting = before.is_some_and(|b| WANTING.iter().any(|(x, y)| x == b && y == last));
    // "Remind me to", heard as "Remind me too" ("Me too." alone stays finished).
    let person_to = last == "too"
        && before.is_some_and(|p| PERSON.contains(&p.as_str()))
        && verb.is_some_and(|v| PERSON_TO.contains(&v.as_str()));
    wanting || person_to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_off_sentences_are_unfinished() {
        for text in [
            "Can you tell me?",
            "I was wondering if",
            "What is the...",
            "How many ounces are in",
            "Remind me to.",
            "What's the best way to",
            "Could you find out?",
            "I'd like to know.",
            "Set an alarm for",
            "Add eggs, milk and",
            "Play something by",
            "So, um",
            "Well,",
            "Could you explain",
            "I’d like",
            "Remind me, too.",
            "Ask them too",
            "What is the capital of",
            "Where can I find a",
            "Who should I talk to",
            "What's the best way to?",
        ] {
            assert!(sounds_unfinished(text), "{text:?}");
        }
    }

    #[test]
    fn whole_questions_and_commands_are_finished() {
        for text in [
            "What is the capital of Spain?",
            "What the capital of Spain is?",
            "Turn on the lights.",
            "Turn it on.",
            "Look it up.",
            "Tell me a joke.",
            "What time is it?",
            "Do you know?",
            "I don't know.",
            "What's the weather going to be like?",
            "Thank you.",
            "Me too.",
            "I love you too.",
            "What is it for?",
            "Where are you from?",
            "What's this about?",
            "Call her.",
            "Two dollars each.",
            "No.",
            "",
            "   ",
        ] {
            assert!(!sounds_unfinished(text), "{text:?}");
        }
    }
}
