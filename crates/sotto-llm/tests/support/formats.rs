//! Each cloud provider's streaming wire format, as its API documents and sends it, so the
//! scripted server can answer like the real thing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sotto_llm::anthropic::Anthropic;
use sotto_llm::gemini::Gemini;
use sotto_llm::http::{ApiKey, CloudConfig, HttpClient, HttpConfig, OfflineSwitch};
use sotto_llm::openai::OpenAiCompatible;
use sotto_llm::Llm;

/// The API key the tests configure; it must never show up anywhere but its header.
pub const KEY: &str = "sk-test-0123456789abcdef";

/// The three wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI Chat Completions (and every compatible server).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `streamGenerateContent?alt=sse`.
    Gemini,
}

/// All of them, for tests that must hold for each.
pub const ALL: [Format; 3] = [Format::OpenAi, Format::Anthropic, Format::Gemini];

/// Short timeouts so failure tests finish quickly.
pub fn test_http_config() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        first_token_timeout: Duration::from_millis(1500),
        idle_timeout: Duration::from_millis(700),
        retries: 2,
        backoff: Duration::from_millis(50),
        max_wait: Duration::from_secs(3),
    }
}

impl Format {
    /// The provider, pointed at `base_url`, with a key and cloud rules (offline mode
    /// applies even though the test server is on this machine).
    pub fn provider(
        self,
        base_url: &str,
        key: Option<&str>,
        config: HttpConfig,
        offline: OfflineSwitch,
    ) -> Arc<dyn Llm> {
        let http = HttpClient::new(config, offline).expect("http client");
        let cloud = CloudConfig {
            name: self.name().to_string(),
            base_url: base_url.to_string(),
            model: self.model().to_string(),
            api_key: key.map(ApiKey::new),
        };
        match self {
            Format::OpenAi => Arc::new(OpenAiCompatible::new(cloud, http).with_cloud(true)),
            Format::Anthropic => Arc::new(Anthropic::new(cloud, http)),
            Format::Gemini => Arc::new(Gemini::new(cloud, http)),
        }
    }

    /// The provider's display name.
    pub fn name(self) -> &'static str {
        match self {
            Format::OpenAi => "OpenAI",
            Format::Anthropic => "Anthropic",
            Format::Gemini => "Gemini",
        }
    }

    fn model(self) -> &'static str {
        match self {
            Format::OpenAi => "gpt-4o-mini",
            Format::Anthropic => "claude-3-5-haiku-latest",
            Format::Gemini => "gemini-2.0-flash",
        }
    }

    /// The request line the provider must send.
    pub fn request_line(self) -> String {
        match self {
            Format::OpenAi => "POST /v1/chat/completions".into(),
            Format::Anthropic => "POST /v1/messages".into(),
            Format::Gemini => {
                "POST /v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse".into()
            }
        }
    }

    /// The base URL to configure for a server at `server_url`.
    pub fn base_url(self, server_url: &str) -> String {
        match self {
            Format::OpenAi => format!("{server_url}/v1"),
            Format::Anthropic | Format::Gemini => server_url.to_string(),
        }
    }

    /// The header carrying the key, and its expected value.
    pub fn auth_header(self) -> (&'static str, String) {
        match self {
            Format::OpenAi => ("authorization", format!("Bearer {KEY}")),
            Format::Anthropic => ("x-api-key", KEY.to_string()),
            Format::Gemini => ("x-goog-api-key", KEY.to_string()),
        }
    }

    /// A complete streamed answer made of `pieces`, reporting 12 prompt tokens and one
    /// completion token per piece.
    pub fn answer(self, pieces: &[&str]) -> Vec<String> {
        let mut events = self.opening();
        events.extend(pieces.iter().map(|p| self.text_event(p)));
        events.extend(self.closing(pieces.len() as u32));
        events
    }

    /// What the provider sends before any text.
    pub fn opening(self) -> Vec<String> {
        match self {
            Format::OpenAi => vec![openai_chunk(
                json!({"role": "assistant", "content": ""}),
                None,
            )],
            Format::Anthropic => vec![
                anthropic(
                    "message_start",
                    json!({"type": "message_start", "message": {"id": "msg_01", "type": "message",
                        "role": "assistant", "content": [], "model": "claude-3-5-haiku-latest",
                        "stop_reason": null, "stop_sequence": null,
                        "usage": {"input_tokens": 12, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
                ),
                anthropic(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}}),
                ),
                anthropic("ping", json!({"type": "ping"})),
            ],
            Format::Gemini => Vec::new(),
        }
    }

    /// One piece of answer text.
    pub fn text_event(self, text: &str) -> String {
        match self {
            Format::OpenAi => openai_chunk(json!({"content": text}), None),
            Format::Anthropic => anthropic(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": text}}),
            ),
            Format::Gemini => gemini(json!({
                "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
                "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
                "modelVersion": "gemini-2.0-flash"
            })),
        }
    }

    /// What the provider sends after the text: finish reason, usage, end of stream.
    pub fn closing(self, completion_tokens: u32) -> Vec<String> {
        match self {
            Format::OpenAi => vec![
                openai_chunk(json!({}), Some("stop")),
                sse(
                    &json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                    "created": 1_700_000_000, "model": "gpt-4o-mini", "choices": [],
                    "usage": {"prompt_tokens": 12, "completion_tokens": completion_tokens,
                        "total_tokens": 12 + completion_tokens,
                        "prompt_tokens_details": {"cached_tokens": 0}}})
                    .to_string(),
                ),
                "data: [DONE]\n\n".to_string(),
            ],
            Format::Anthropic => vec![
                anthropic(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                anthropic(
                    "message_delta",
                    json!({"type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                        "usage": {"output_tokens": completion_tokens}}),
                ),
                anthropic("message_stop", json!({"type": "message_stop"})),
            ],
            Format::Gemini => vec![gemini(json!({
                "candidates": [{"content": {"parts": [{"text": ""}], "role": "model"},
                    "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": completion_tokens,
                    "totalTokenCount": 12 + completion_tokens},
                "modelVersion": "gemini-2.0-flash"
            }))],
        }
    }
}

fn sse(data: &str) -> String {
    format!("data: {data}\n\n")
}

fn openai_chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
    sse(
        &json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        .to_string(),
    )
}

fn anthropic(event: &str, data: serde_json::Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Gemini separates events with CRLF pairs.
fn gemini(data: serde_json::Value) -> String {
    format!("data: {data}\r\n\r\n")
}
