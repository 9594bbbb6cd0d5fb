//! What the user heard of an interrupted answer: the pieces played through, and the words
//! of the piece cut off in proportion to how much of it played.

/// The text heard when playback stopped at output sample `played`, given each piece's
/// text and output sample range.
pub fn played_text(pieces: &[(String, u64, u64)], played: u64) -> String {
    let mut heard: Vec<String> = Vec::new();
    for (text, start, end) in pieces {
        if played >= *end {
            heard.push(text.clone());
        } else if played > *start {
            let fraction = (played - start) as f64 / (end - start).max(1) as f64;
            let words: Vec<&str> = text.split_whitespace().collect();
            // Round down: a word half heard was not heard.
            let count = (words.len() as f64 * fraction).floor() as usize;
            if count > 0 {
                heard.push(words[..count].join(" "));
            }
        }
    }
    heard.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces() -> Vec<(String, u64, u64)> {
        vec![
            ("The capital of France is Paris.".into(), 1000, 3000),
            ("It lies on the Seine river.".into(), 3000, 5000),
        ]
    }

    #[test]
    fn nothing_played_nothing_heard() {
        assert_eq!(played_text(&pieces(), 1000), "");
        assert_eq!(played_text(&pieces(), 0), "");
    }

    #[test]
    fn a_cut_piece_keeps_the_words_played_through() {
        assert_eq!(played_text(&pieces(), 2000), "The capital of");
        assert_eq!(
            played_text(&pieces(), 4000),
            "The capital of France is Paris. It lies on"
        );
    }

    #[test]
    fn everything_played_is_everything_heard() {
        assert_eq!(
            played_text(&pieces(), 9000),
            "The capital of France is Paris. It lies on the Seine river."
        );
    }
}
