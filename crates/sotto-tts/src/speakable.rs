//! What of a piece of text is said aloud: no markdown marks, backticks, emoji or URL
//! paths; list items said as steps ("First, ..."); links as their words.

/// `text` as it should be spoken: no markdown marks, backticks, emoji or URL paths, and
/// whitespace collapsed.
pub fn speakable(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.lines() {
        let mut line = line.trim_start();
        // Headings, quotes and bullets: the marks go, the words stay.
        line = line.trim_start_matches('#').trim_start();
        line = line.trim_start_matches('>').trim_start();
        for bullet in ["- ", "* ", "+ ", "• "] {
            if let Some(rest) = line.strip_prefix(bullet) {
                line = rest;
            }
        }
        if line
            .chars()
            .all(|c| matches!(c, '-' | '|' | ':' | ' ' | '=' | '*' | '_'))
        {
            // Table rules and horizontal rules.
            continue;
        }
        match list_item(line) {
            Some(said) => lines.push(said),
            None => lines.push(line.to_string()),
        }
    }
    let text = lines.join(" ");
    let text = links_to_text(&text);
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let word = speak_word(word);
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
    }
    // A mark left alone by a removed emoji joins the word before it: "idea 🎉!" -> "idea!".
    for mark in [" !", " ?", " .", " ,", " ;", " :"] {
        while out.contains(mark) {
            out = out.replace(mark, &mark[1..]);
        }
    }
    out.trim_start_matches([',', '.', ';', ':', ' '])
        .to_string()
}

/// A numbered list item said as a person says steps: "2. Mix the flour." -> "Second, mix
/// the flour." (None: `line` is not one).
fn list_item(line: &str) -> Option<String> {
    const ORDINALS: [&str; 10] = [
        "First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth",
        "Tenth",
    ];
    let digits = line.find(|c: char| !c.is_ascii_digit())?;
    let rest = line[digits..]
        .strip_prefix(". ")
        .or_else(|| line[digits..].strip_prefix(") "))?
        .trim_start();
    let number: usize = line[..digits].parse().ok().filter(|_| digits <= 2)?;
    if number == 0 || rest.is_empty() {
        return None;
    }
    let ordinal = ORDINALS.get(number - 1).copied().unwrap_or("Next");
    // "Press the key" -> "press the key"; names and "I" keep their capital.
    let first_word = rest.split_whitespace().next().unwrap_or("");
    let mut letters = first_word.chars();
    let lower = first_word != "I"
        && letters.next().is_some_and(char::is_uppercase)
        && letters.all(|c| c.is_lowercase() || !c.is_alphabetic());
    let rest = if lower {
        let mut chars = rest.chars();
        chars
            .next()
            .map(|c| c.to_lowercase().chain(chars).collect())
            .unwrap_or_default()
    } else {
        rest.to_string()
    };
    Some(format!("{ordinal}, {rest}"))
}

/// One whitespace-separated word made speakable.
fn speak_word(word: &str) -> String {
    let trimmed = word.trim_matches(|c: char| {
        matches!(c, '(' | ')' | '<' | '>' | ',' | '.' | ';' | ':' | '!' | '?')
    });
    if let Some(rest) = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
    {
        // A URL: say its site, not its path.
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.strip_prefix("www.").unwrap_or(host);
        let tail: String = word
            .chars()
            .rev()
            .take_while(|c| matches!(c, ',' | '.' | ';' | ':' | '!' | '?'))
            .collect();
        return format!("{host}{}", tail.chars().rev().collect::<String>());
    }
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        match c {
            '*' | '`' | '#' | '~' | '|' => {}
            '_' => {
                // Emphasis marks go; an underscore inside a name becomes a space.
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            '&' => out.push_str("and"),
            c if is_emoji(c) => {}
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// `[text](url)` becomes `text`.
fn links_to_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|e| close + e) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Pictographs, symbols and the joiners and modifiers that build emoji sequences.
fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE00..=0xFE0F | 0x200D
        | 0xE0020..=0xE007F | 0x2300..=0x23FF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_steps_are_said_with_ordinals_and_other_numbers_are_left_alone() {
        assert_eq!(speakable("10) Open Settings."), "Tenth, open Settings.");
        assert_eq!(speakable("12. Wait."), "Next, wait.");
        assert_eq!(speakable("3. I like it."), "Third, I like it.");
        assert_eq!(speakable("2. NASA says so."), "Second, NASA says so.");
        assert_eq!(speakable("1990. That year"), "1990. That year");
        assert_eq!(speakable("1.5 litres"), "1.5 litres");
        assert_eq!(speakable("0. Zero"), "0. Zero");
    }
}
