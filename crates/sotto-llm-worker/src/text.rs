//! Turning generated token bytes into text that is safe to send: whole UTF-8 characters
//! only, and nothing that might be the beginning of a stop string.

/// Collects token bytes and releases text once it can no longer change.
#[derive(Debug)]
pub struct TextStream {
    bytes: Vec<u8>,
    held: String,
    stop: Vec<String>,
}

/// What one step of the stream gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Text to send now (may be empty).
    Text(String),
    /// A stop string was reached: send this text, then end the answer.
    Stopped(String),
}

impl TextStream {
    /// A stream that ends at any of `stop` (empty strings are ignored).
    pub fn new(stop: &[String]) -> TextStream {
        TextStream {
            bytes: Vec::new(),
            held: String::new(),
            stop: stop.iter().filter(|s| !s.is_empty()).cloned().collect(),
        }
    }

    /// Adds the bytes of one token.
    pub fn push(&mut self, piece: &[u8]) -> Step {
        self.bytes.extend_from_slice(piece);
        // Move every complete character to `held`; keep an unfinished one for later.
        let valid = match std::str::from_utf8(&self.bytes) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Invalid bytes (not merely unfinished): replace them rather than stall.
            Err(_) => {
                let lossy = String::from_utf8_lossy(&self.bytes).into_owned();
                self.bytes.clear();
                self.held.push_str(&lossy);
                return self.release();
            }
        };
        let complete: Vec<u8> = self.bytes.drain(..valid).collect();
        self.held
            .push_str(std::str::from_utf8(&complete).unwrap_or_default());
        self.release()
    }

    /// The text still held back, once the answer is over.
    pub fn finish(mut self) -> String {
        if !self.bytes.is_empty() {
            let rest = String::from_utf8_lossy(&self.bytes).into_owned();
            self.held.push_str(&rest);
        }
        self.held
    }

    fn release(&mut self) -> Step {
        if let Some(at) = self
            .stop
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Step::Stopped(text);
        }
        // Hold back the longest tail that is the start of some stop string.
        let keep = self
            .stop
            .iter()
            .map(|s| longest_suffix_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_string();
        self.held.drain(..cut);
        Step::Text(text)
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of `stop`, at a
/// character boundary of `text`.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n)
                && stop.is_char_boundary(n)
                && text.ends_with(&stop[..n])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stop: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        let mut stream = TextStream::new(&stop);
        let mut out = String::new();
        for piece in pieces {
            match stream.push(piece) {
                Step::Text(t) => out.push_str(&t),
                Step::Stopped(t) => {
                    out.push_str(&t);
                    return (out, true);
                }
            }
        }
        out.push_str(&stream.finish());
        (out, false)
    }

    #[test]
    fn a_character_split_across_tokens_is_sent_whole() {
        let emoji = "👋".as_bytes();
        let mut stream = TextStream::new(&[]);
        assert_eq!(stream.push(b"hi "), Step::Text("hi ".into()));
        assert_eq!(stream.push(&emoji[..2]), Step::Text(String::new()));
        assert_eq!(stream.push(&emoji[2..]), Step::Text("👋".into()));
    }

    #[test]
    fn a_stop_string_across_tokens_ends_the_answer_without_being_sent() {
        assert_eq!(
            run(&["</s>"], &[b"Hello", b" world<", b"/", b"s> more"]),
            ("Hello world".into(), true)
        );
        // A false start is released once it cannot be a stop string any more.
        assert_eq!(
            run(&["User:"], &[b"Use", b"ful!", b" done"]),
            ("Useful! done".into(), false)
        );
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(run(&[], &[b"a\xff", b"b"]), ("a\u{fffd}b".into(), false));
    }
}
