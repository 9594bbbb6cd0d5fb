//! A decoder for Server-Sent Events (the WHATWG `text/event-stream` format) that accepts
//! the bytes however the network splits them.

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (empty means "message").
    pub event: String,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// Turns a byte stream into [`SseEvent`]s.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The last byte was a CR, so an LF right after it belongs to the same line break.
    after_cr: bool,
    event: String,
    data: Vec<String>,
    has_data: bool,
}

impl SseDecoder {
    /// Feeds bytes; returns the events they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.end_line(&line) {
                        events.push(event);
                    }
                }
                _ => self.line.push(b),
            }
        }
        events
    }

    /// True if the stream stopped in the middle of an event.
    pub fn is_mid_event(&self) -> bool {
        !self.line.is_empty() || self.has_data || !self.event.is_empty()
    }

    fn end_line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            if !self.has_data {
                self.event.clear();
                return None;
            }
            let event = SseEvent {
                event: std::mem::take(&mut self.event),
                data: std::mem::take(&mut self.data).join("\n"),
            };
            self.has_data = false;
            return Some(event);
        }
        if line[0] == b':' {
            return None; // A comment (keep-alive).
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.find(':') {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                self.data.push(value.to_string());
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields do not matter here.
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": keep-alive\r\n\
        event: message_start\r\n\
        data: {\"a\":1}\r\n\
        \r\n\
        data: first line\n\
        data:second line\n\
        id: 7\n\
        \n\
        event: ping\n\n\
        data: caf\u{e9} \u{1f30d}\r\r\
        data: [DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent {
                event: "message_start".into(),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                event: String::new(),
                data: "first line\nsecond line".into(),
            },
            SseEvent {
                event: String::new(),
                data: "caf\u{e9} \u{1f30d}".into(),
            },
            SseEvent {
                event: String::new(),
                data: "[DONE]".into(),
            },
        ]
    }

    #[test]
    fn a_stream_split_at_every_byte_gives_the_same_events() {
        let bytes = STREAM.as_bytes();
        for split in 0..=bytes.len() {
            let mut decoder = SseDecoder::default();
            let mut events = decoder.feed(&bytes[..split]);
            events.extend(decoder.feed(&bytes[split..]));
            assert_eq!(events, expected(), "split at {split}");
            assert!(!decoder.is_mid_event());
        }
        let mut decoder = SseDecoder::default();
        let one_by_one: Vec<SseEvent> = bytes
            .iter()
            .flat_map(|b| decoder.feed(std::slice::from_ref(b)))
            .collect();
        assert_eq!(one_by_one, expected());
    }

    #[test]
    fn a_truncated_stream_is_noticed() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.feed(b"data: {\"half\":").is_empty());
        assert!(decoder.is_mid_event());
    }
}
