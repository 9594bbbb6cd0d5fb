//! Grading of spoken answers: is it right (the key facts are in it), and is it fit to be
//! heard (short, no sentence said twice, nothing that only makes sense on a screen).

use serde::Deserialize;

/// What a right answer to one question must contain.
#[derive(Debug, Clone, Deserialize)]
pub struct Expect {
    /// Groups of accepted alternatives: each group must be matched by one of its own.
    /// Empty: any answer that says something is right.
    pub expect: Vec<Vec<String>>,
    /// Wrong answers that must not appear.
    #[serde(default)]
    pub reject: Vec<String>,
}

/// The most words a spoken answer has (about 25 s at a talking pace).
pub const FIT_WORDS: usize = 60;
/// Words per second of a talking pace (150 a minute), for the spoken length.
pub const WORDS_PER_S: f64 = 2.5;

/// Lower case, hyphens as spaces, thousands separators dropped ("3,600" -> "3600"),
/// single spaces.
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let digit_at = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(char::is_ascii_digit)
        };
        match c {
            ',' if digit_at(i.checked_sub(1)) && digit_at(Some(i + 1)) => {}
            '-' | '\u{2010}' | '\u{2011}' | '\u{2013}' => out.push(' '),
            '\u{2019}' => out.push('\''),
            c => out.extend(c.to_lowercase()),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The number words a spoken number is made of.
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "and",
    "a",
    "point",
];

/// Whether `phrase` (normalized) is a number: digits, or number words only.
fn is_number(phrase: &str) -> bool {
    phrase.chars().any(|c| c.is_ascii_digit())
        || phrase.split(' ').all(|w| NUMBER_WORDS.contains(&w))
}

/// Whether `needle` occurs in `hay` (both normalized) as words: it starts at a word's
/// start; a number must also end where a word ends ("12" is not in "12.5" nor "eight" in
/// "eighteen"), other words may go on ("breath" in "breathing").
pub fn contains(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let number = is_number(needle);
    let bytes = hay.as_bytes();
    let mut from = 0;
    while let Some(at) = hay[from..].find(needle) {
        let start = from + at;
        let end = start + needle.len();
        let before_ok = start == 0
            || !hay[..start]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
        let after_ok = !number || {
            let rest = &hay[end..];
            let mut next = rest.chars();
            match next.next() {
                None => true,
                Some(c) if c.is_alphanumeric() => false,
                // "12.5" or "3.75": the number goes on after the point.
                Some('.' | ',') => !next.next().is_some_and(|c| c.is_ascii_digit()),
                Some(_) => true,
            }
        };
        if before_ok && after_ok {
            return true;
        }
        // The next char boundary after `start`.
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
        if from >= bytes.len() {
            break;
        }
    }
    false
}

/// Whether `answer` is right by `expect`.
pub fn is_right(answer: &str, expect: &Expect) -> bool {
    let hay = normalize(answer);
    if hay.is_empty() {
        return false;
    }
    let has = |alt: &String| contains(&hay, &normalize(alt));
    expect.expect.iter().all(|group| group.iter().any(has)) && !expect.reject.iter().any(has)
}

/// Why a spoken answer is not fit to be heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Unfit {
    /// Nothing was said.
    Empty,
    /// More than [`FIT_WORDS`] words.
    TooLong,
    /// A sentence said twice.
    Repeated,
    /// Markdown, a list, or an emoji: made for a screen.
    Written,
}

/// The words of `text`.
pub fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The sentences of `text`, normalized, without their end marks.
fn sentences(text: &str) -> Vec<String> {
    text.split(['.', '!', '?', '\n'])
        .map(|s| {
            normalize(s)
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_string()
        })
        .filter(|s| words(s) >= 3)
        .collect()
}

/// Whether `text` holds something only a screen shows well.
fn written(text: &str) -> bool {
    let markdown = [
        "**", "__", "`", "# ", "](", "|---", "\\[", "\\(", "\\text", "\\boxed",
    ]
    .iter()
    .any(|m| text.contains(m));
    // The voice says pieces joined by spaces: a list number read out alone reads
    // "Steps: 1. Boil ..." (steps said as "First, ..." are speech).
    let numbered = list_number_read_out(text);
    let list = text.lines().filter(|line| {
        let line = line.trim_start();
        line.starts_with("- ")
            || line.starts_with("* ")
            || line.starts_with("• ")
            || line
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    });
    let emoji = text
        .chars()
        .any(|c| matches!(u32::from(c), 0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x1F000..=0x1F2FF));
    markdown || numbered || list.count() >= 2 || emoji
}

/// A list number said on its own: a number of one or two digits and a full stop, at the
/// start or after a sentence or a colon, before a capitalised word ("Steps: 1. Boil").
fn list_number_read_out(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    words.iter().enumerate().any(|(i, word)| {
        let Some(number) = word.strip_suffix('.') else {
            return false;
        };
        let is_marker =
            !number.is_empty() && number.len() <= 2 && number.chars().all(|c| c.is_ascii_digit());
        let after_boundary = i == 0 || words[i - 1].ends_with(['.', ':', '!', '?']);
        let before_word = words
            .get(i + 1)
            .and_then(|w| w.chars().next())
            .is_some_and(char::is_uppercase);
        is_marker && after_boundary && before_word
    })
}

/// The first reason `text` is not fit to be heard, if any.
pub fn unfit(text: &str, max_words: usize) -> Option<Unfit> {
    if words(text) == 0 {
        return Some(Unfit::Empty);
    }
    if words(text) > max_words {
        return Some(Unfit::TooLong);
    }
    let said = sentences(text);
    if said.iter().enumerate().any(|(i, s)| said[..i].contains(s)) {
        return Some(Unfit::Repeated);
    }
    if written(text) {
        return Some(Unfit::Written);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(groups: &[&[&str]], reject: &[&str]) -> Expect {
        Expect {
            expect: groups
                .iter()
                .map(|g| g.iter().map(|s| s.to_string()).collect())
                .collect(),
            reject: reject.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn numbers_match_whole_and_in_any_spelling() {
        let sixty = expect(&[&["60", "sixty"]], &[]);
        assert!(is_right("15 times 4 is 60.", &sixty));
        assert!(is_right("It's sixty.", &sixty));
        assert!(!is_right("It is 600.", &sixty));
        assert!(!is_right("It is 160.", &sixty));
        let twelve = expect(&[&["12", "twelve"]], &[]);
        assert!(!is_right("The square root of 144 is 12.5.", &twelve));
        assert!(is_right("The square root of 144 is 12.", &twelve));
        let hour = expect(&[&["3600", "thirty-six hundred"]], &[]);
        assert!(is_right("There are 3,600 seconds in an hour.", &hour));
        assert!(is_right("Thirty six hundred.", &hour));
        let eight = expect(&[&["8", "eight"]], &[]);
        assert!(!is_right("There are eighteen.", &eight));
    }

    #[test]
    fn words_match_at_their_start_and_every_group_counts() {
        let tea = expect(&[&["water"], &["boil", "kettle"]], &[]);
        assert!(is_right("Boiling water, then steep the bag.", &tea));
        assert!(!is_right("Put the bag in a cup of water.", &tea));
        let breath = expect(&[&["breath"]], &[]);
        assert!(is_right("Try breathing slowly.", &breath));
        assert!(!is_right("Try a rebreather.", &breath));
        let canberra = expect(&[&["canberra"]], &["sydney"]);
        assert!(is_right("Canberra.", &canberra));
        assert!(!is_right("Sydney, not Canberra.", &canberra));
        assert!(is_right("Hello there.", &expect(&[], &[])));
        assert!(!is_right("  ", &expect(&[], &[])));
    }

    #[test]
    fn unfit_answers_are_named() {
        assert_eq!(unfit("Paris is the capital of France.", 60), None);
        assert_eq!(unfit("", 60), Some(Unfit::Empty));
        assert_eq!(unfit(&"word ".repeat(61), 60), Some(Unfit::TooLong));
        assert_eq!(
            unfit(
                "They can open jars. They are clever. They can open jars!",
                60
            ),
            Some(Unfit::Repeated)
        );
        assert_eq!(unfit("It is **Paris**.", 60), Some(Unfit::Written));
        assert_eq!(
            unfit("Steps:\n1. Boil water.\n2. Add the egg.", 60),
            Some(Unfit::Written)
        );
        assert_eq!(unfit("Good morning! ☀️", 60), Some(Unfit::Written));
        assert_eq!(
            unfit(
                "Follow these steps: 1. Boil water. Second, add the egg.",
                60
            ),
            Some(Unfit::Written)
        );
        assert_eq!(unfit("First, boil water. Second, add the egg.", 60), None);
        assert_eq!(unfit("He came in at number 2. Then he left.", 60), None);
        assert_eq!(unfit("It was 1990. Then it rained.", 60), None);
        assert_eq!(
            unfit("Follow these steps: 1. Boil water. 2. Add the egg.", 60),
            Some(Unfit::Written)
        );
        assert_eq!(unfit("It is \\(\\boxed{300}\\).", 60), Some(Unfit::Written));
        assert_eq!(unfit("It costs 1. Or 2 at most.", 60), None);
        // A short sentence may come back ("Yes. ... Yes."): not a loop.
        assert_eq!(unfit("Yes. It is. Yes.", 60), None);
    }
}
