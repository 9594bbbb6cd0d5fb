//! The protocol between Sotto and `sotto-llm-worker`, the process that runs llama.cpp.
//!
//! One JSON object per line (NDJSON). Sotto writes [`Request`]s to the worker's stdin;
//! the worker writes [`Event`]s to its stdout: first [`Event::Ready`], then for each chat
//! a stream of [`Event::Token`]s closed by [`Event::Done`] or [`Event::Error`]. Both sides
//! share these types, so the protocol cannot drift between them.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that shape the assistant (persona, rules).
    System,
    /// The person speaking to Sotto.
    User,
    /// Sotto's earlier answers.
    Assistant,
}

impl Role {
    /// The role's name as chat templates spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl Message {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// How to sample an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sampling {
    /// Randomness; 0 picks the most likely token every time.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this.
    pub top_p: f32,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Generation stops before any of these strings; they are not sent.
    pub stop: Vec<String>,
    /// Random seed (`None`: a different answer each time at temperature > 0).
    pub seed: Option<u32>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.7,
            top_p: 0.9,
            max_tokens: 256,
            stop: Vec::new(),
            seed: None,
        }
    }
}

/// A chat request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Chosen by the caller; every event of this answer carries it.
    pub id: String,
    /// The conversation so far, ending with the user's turn.
    pub messages: Vec<Message>,
    /// Sampling settings.
    #[serde(default, flatten)]
    pub sampling: Sampling,
    /// Reuse the KV cache of the longest prompt prefix the worker has already read
    /// (default). Off only to measure what the reuse saves.
    #[serde(default = "yes")]
    pub reuse_prefix: bool,
    /// Prompt tokens per batch (the worker's own when absent). Small batches let a cancel
    /// stop the reading soon: a read-ahead of a question still being spoken asks for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_batch: Option<u32>,
}

fn yes() -> bool {
    true
}

/// What Sotto sends to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Answer a conversation.
    Chat(ChatRequest),
    /// Stop the answer `id` now (it ends with `done`, finish reason `cancelled`).
    Cancel {
        /// The chat to stop.
        id: String,
    },
}

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its answer (or hit a stop string).
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
    /// The caller cancelled it.
    Cancelled,
}

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u32,
    /// Of those, tokens whose KV cache was reused from an earlier request.
    pub cached_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}

/// Where the time of one answer went, in milliseconds from the worker reading the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerTimings {
    /// Reading the prompt (the tokens not reused from the cache).
    pub prompt_ms: f64,
    /// Until the first token was sent.
    pub first_token_ms: f64,
    /// Until the answer ended.
    pub total_ms: f64,
    /// Generation speed after the first token.
    pub tokens_per_s: f64,
}

/// What the worker sends back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The model is loaded; requests are welcome.
    Ready {
        /// The model file's name.
        model: String,
        /// The context window in tokens.
        n_ctx: u32,
        /// Milliseconds loading took.
        load_ms: f64,
    },
    /// A piece of the answer `id` (whole UTF-8 characters).
    Token {
        /// The chat it belongs to.
        id: String,
        /// The text.
        text: String,
    },
    /// The answer `id` is complete.
    Done {
        /// The chat.
        id: String,
        /// Why it ended.
        finish_reason: FinishReason,
        /// Token counts.
        usage: Usage,
        /// Timings.
        timings: WorkerTimings,
    },
    /// A request failed (the worker keeps running), or the worker cannot start.
    Error {
        /// The chat it concerns, if any.
        id: Option<String>,
        /// What went wrong, for a person.
        message: String,
    },
}

/// Encodes one message as a line (with its newline).
pub fn encode_line<T: Serialize>(message: &T) -> String {
    // Serialising these plain types cannot fail: no maps with non-string keys, no
    // foreign Serialize impls.
    let mut line = serde_json::to_string(message).unwrap_or_default();
    line.push('\n');
    line
}

/// Splits a byte stream into lines and decodes each as a `T`, however the bytes arrive.
#[derive(Debug)]
pub struct LineDecoder<T> {
    pending: Vec<u8>,
    _decodes: std::marker::PhantomData<fn() -> T>,
}

impl<T> Default for LineDecoder<T> {
    fn default() -> Self {
        LineDecoder {
            pending: Vec::new(),
            _decodes: std::marker::PhantomData,
        }
    }
}

/// A line that was not valid protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The line, lossily decoded and cut to 200 characters.
    pub line: String,
    /// Why it was refused.
    pub reason: String,
}

impl<T: DeserializeOwned> LineDecoder<T> {
    /// Feeds bytes; returns every message completed by them, in order. Blank lines are
    /// skipped; a line that is not a valid message becomes an `Err` and decoding goes on.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<T, BadLine>> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            out.push(decode_line(line));
        }
        out
    }

    /// Bytes of an unfinished line (non-empty when the stream ended mid-line).
    pub fn unfinished(&self) -> &[u8] {
        &self.pending
    }
}

/// Decodes one line (without its newline).
pub fn decode_line<T: DeserializeOwned>(line: &[u8]) -> Result<T, BadLine> {
    serde_json::from_slice(line).map_err(|e| BadLine {
        line: String::from_utf8_lossy(line).chars().take(200).collect(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_stream() -> (String, Vec<Event>) {
        let events = vec![
            Event::Ready {
                model: "m.gguf".into(),
                n_ctx: 2048,
                load_ms: 12.5,
            },
            Event::Token {
                id: "a".into(),
                text: "Héllo 👋\n".into(),
            },
            Event::Done {
                id: "a".into(),
                finish_reason: FinishReason::Stop,
                usage: Usage {
                    prompt_tokens: 10,
                    cached_tokens: 4,
                    completion_tokens: 2,
                },
                timings: WorkerTimings::default(),
            },
            Event::Error {
                id: None,
                message: "bad".into(),
            },
        ];
        (events.iter().map(encode_line).collect(), events)
    }

    #[test]
    fn a_stream_split_at_every_byte_decodes_to_the_same_events() {
        let (text, events) = sample_stream();
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let mut decoder = LineDecoder::<Event>::default();
            let mut got = decoder.feed(&bytes[..split]);
            got.extend(decoder.feed(&bytes[split..]));
            let got: Vec<Event> = got.into_iter().map(|r| r.expect("valid")).collect();
            assert_eq!(got, events, "split at {split}");
            assert!(decoder.unfinished().is_empty());
        }
        // And one byte at a time.
        let mut decoder = LineDecoder::<Event>::default();
        let got: Vec<Event> = bytes
            .iter()
            .flat_map(|b| decoder.feed(std::slice::from_ref(b)))
            .map(|r| r.expect("valid"))
            .collect();
        assert_eq!(got, events);
    }

    #[test]
    fn a_bad_line_is_reported_and_decoding_goes_on() {
        let mut decoder = LineDecoder::<Request>::default();
        let got = decoder.feed(b"{\"type\":\"cancel\",\"id\":\"x\"}\nnot json\n\n{\"type\":\"nope\"}\n{\"type\":\"cancel\",\"id\":\"y\"}\n{\"type\"");
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Ok(Request::Cancel { id: "x".into() }));
        assert!(got[1].as_ref().is_err_and(|e| e.line == "not json"));
        assert!(got[2].is_err());
        assert_eq!(got[3], Ok(Request::Cancel { id: "y".into() }));
        assert_eq!(decoder.unfinished(), b"{\"type\"");
    }

    #[test]
    fn a_chat_request_fills_in_default_sampling() {
        let request: Request = decode_line(
            br#"{"type":"chat","id":"1","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#,
        )
        .expect("valid");
        let Request::Chat(chat) = request else {
            panic!("not a chat")
        };
        assert_eq!(chat.sampling.max_tokens, 5);
        assert_eq!(chat.sampling.temperature, Sampling::default().temperature);
        assert!(chat.reuse_prefix);
        assert_eq!(chat.messages, vec![Message::new(Role::User, "hi")]);
        // And it survives a round trip.
        let again: Request =
            decode_line(encode_line(&Request::Chat(chat.clone())).trim().as_bytes())
                .expect("round trip");
        assert_eq!(again, Request::Chat(chat));
    }
}
