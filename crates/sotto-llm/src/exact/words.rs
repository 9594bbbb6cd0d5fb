//! The words of a spoken question, ready to parse: lower case, symbols said as words,
//! digits kept whole; numbers read from digits or words; numbers written back the way
//! an answer says them.

/// The question's words: lower case, punctuation gone, `%`, `+`, `×`, `÷` and a spaced
/// minus said as words, thousands separators dropped ("3,600" is "3600"), hyphens between
/// words split ("twenty-five" is "twenty five"). A dash or slash between two digits
/// ("9/11", "5-10", "555-1234") is a date, a range or a number of some other kind, not a
/// sum: it becomes a word no question is made of.
pub(crate) fn normalise(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let after = chars.get(i + 1).copied();
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        match c {
            ',' if digit(before) && digit(after) => {}
            '.' if digit(before) && digit(after) => out.push('.'),
            '.' if !digit(before) && digit(after) => out.push_str(" 0."),
            '%' => out.push_str(" percent "),
            '+' => out.push_str(" plus "),
            '×' | '*' => out.push_str(" times "),
            '-' | '/' | '–' if digit(before) && digit(after) => out.push_str(" \u{fffd} "),
            '÷' | '/' => out.push_str(" divided by "),
            '=' => out.push(' '),
            '-' | '−' | '–' => {
                let letter = |c: Option<char>| c.is_some_and(char::is_alphabetic);
                if letter(before) && letter(after) {
                    out.push(' ');
                } else {
                    out.push_str(" minus ");
                }
            }
            '\'' | '’' => {
                // "what's" -> "what is"; other apostrophes join their word.
                let word_ends = chars.get(i + 2).is_none_or(|c| !c.is_alphanumeric());
                if after == Some('s') && word_ends {
                    out.push_str(" i");
                }
            }
            c if c.is_alphanumeric() || c == '.' => {
                out.extend(c.to_lowercase());
            }
            _ => out.push(' '),
        }
    }
    out.split_whitespace()
        .map(|w| w.trim_matches('.').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// A number written in digits ("12", "0.75").
fn digits(word: &str) -> Option<f64> {
    let ok = word.chars().all(|c| c.is_ascii_digit() || c == '.')
        && word.chars().any(|c| c.is_ascii_digit())
        && word.matches('.').count() <= 1;
    if ok {
        word.parse().ok()
    } else {
        None
    }
}

/// "zero" to "nineteen" and the tens ("twenty" to "ninety").
fn small(word: &str) -> Option<f64> {
    const ONES: [&str; 20] = [
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
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(n) = ONES.iter().position(|w| *w == word) {
        return Some(n as f64);
    }
    TENS.iter()
        .position(|w| *w == word)
        .map(|n| (n as f64 + 2.0) * 10.0)
}

/// "hundred", "thousand", "million", "billion".
fn scale(word: &str) -> Option<f64> {
    match word {
        "hundred" => Some(100.0),
        "thousand" => Some(1_000.0),
        "million" => Some(1_000_000.0),
        "billion" => Some(1_000_000_000.0),
        _ => None,
    }
}

/// Reads a number at `words[at..]`: digits ("347", "0.75", "2 million") or words ("three",
/// "one hundred and eighty", "a thousand"). Returns it and the index after it.
pub(crate) fn number(words: &[String], at: usize) -> Option<(f64, usize)> {
    let word = |i: usize| words.get(i).map(String::as_str);
    let mut i = at;
    // Thousands and more already read, and the part below them.
    let mut total = 0.0;
    let mut current: Option<f64> = None;
    let mut read = false;
    // "a hundred", "a thousand": the article is the number one.
    if matches!(word(i), Some("a")) && word(i + 1).and_then(scale).is_some() {
        current = Some(1.0);
        i += 1;
    }
    while let Some(w) = word(i) {
        if let Some(n) = digits(w) {
            if read || current.is_some() {
                break;
            }
            current = Some(n);
        } else if let Some(n) = small(w) {
            current = match current {
                None => Some(n),
                // "hundred and five", "two hundred twelve", "twenty five", "one hundred
                // twenty five"
                Some(c) if c >= 100.0 && c % 100.0 == 0.0 => Some(c + n),
                Some(c) if c % 100.0 >= 20.0 && c % 10.0 == 0.0 && n < 10.0 => Some(c + n),
                Some(_) => break,
            };
        } else if let Some(s) = scale(w) {
            let c = current.take()?;
            if s >= 1_000.0 {
                total += c * s;
            } else {
                current = Some(c * s);
            }
        } else if w == "and"
            && current.is_some_and(|c| c >= 100.0)
            && word(i + 1).and_then(small).is_some()
        {
            // "one hundred and eighty"
        } else {
            break;
        }
        read = true;
        i += 1;
    }
    read.then(|| (total + current.unwrap_or(0.0), i))
}

/// `value` the way an answer says it: whole numbers as they are (thousands separated from
/// five digits on, "86,400"), others to two decimals, or to three significant digits
/// below one ("0.75", "12.5", "0.00062"). The flag is true when the value was rounded to
/// be said.
pub(crate) fn say(value: f64) -> (String, bool) {
    let magnitude = value.abs();
    // Decimals kept: two, or enough for three significant digits of a small number.
    let decimals = if magnitude > 0.0 && magnitude < 1.0 {
        let zeros = (-magnitude.log10()).floor() as i32;
        (zeros + 3).clamp(2, 12)
    } else {
        2
    };
    let scale = 10f64.powi(decimals);
    let rounded = (magnitude * scale).round() / scale;
    let approximate = (rounded - magnitude).abs() > 1e-9 * magnitude.max(1e-12);
    // Whole part and decimals as integers: no float digit can round up into the next unit.
    let mut whole = rounded.trunc();
    let mut fraction = ((rounded - whole) * scale).round();
    if fraction >= scale {
        whole += 1.0;
        fraction = 0.0;
    }
    let mut text = group(whole);
    if fraction > 0.0 {
        let digits = format!("{:0width$.0}", fraction, width = decimals as usize);
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    if value < 0.0 && text != "0" {
        text.insert_str(0, "minus ");
    }
    (text, approximate)
}

/// A whole number's digits, in groups of three from five digits on ("86,400"; "3600"
/// stays as it is, so that a voice does not read a four-digit number as a year).
fn group(whole: f64) -> String {
    let digits = format!("{whole:.0}");
    if digits.len() < 5 {
        return digits;
    }
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
