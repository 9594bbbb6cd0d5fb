//! Anthropic's Messages API with streaming.

use serde_json::json;

use crate::http::{count, json, CloudConfig, HttpClient, Parsed, PostRequest, StreamParser};
use crate::sse::SseEvent;
use crate::{Answer, CancellationToken, ChatRequest, FinishReason, Llm, LlmError, Usage};

/// The API version Sotto speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Anthropic (base URL `https://api.anthropic.com`).
pub struct Anthropic {
    config: CloudConfig,
    http: HttpClient,
}

impl Anthropic {
    /// A provider for `config`.
    pub fn new(config: CloudConfig, http: HttpClient) -> Anthropic {
        Anthropic { config, http }
    }

    fn request(&self, request: &ChatRequest) -> PostRequest {
        let s = &request.sampling;
        let messages: Vec<_> = request
            .turns()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "stream": true,
        });
        if let Some(system) = request.system() {
            body["system"] = json!(system);
        }
        if !s.stop.is_empty() {
            body["stop_sequences"] = json!(s.stop);
        }
        PostRequest {
            provider: self.config.name.clone(),
            url: self.config.url("v1/messages"),
            // The key is there: `preflight` checked it.
            headers: std::iter::once(("anthropic-version", API_VERSION.to_string()))
                .chain(
                    self.config
                        .api_key
                        .iter()
                        .map(|key| ("x-api-key", key.expose().to_string())),
                )
                .collect(),
            body,
            cloud: true,
        }
    }
}

struct Parser {
    provider: String,
    usage: Usage,
}

impl StreamParser for Parser {
    fn parse(&mut self, event: &SseEvent) -> Result<Vec<Parsed>, LlmError> {
        let v = json(&self.provider, &event.data)?;
        let kind = v
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or(&event.event);
        Ok(match kind {
            "message_start" => {
                self.usage.prompt_tokens = count(v.pointer("/message/usage/input_tokens"));
                self.usage.cached_tokens =
                    count(v.pointer("/message/usage/cache_read_input_tokens"));
                vec![Parsed::Usage(self.usage)]
            }
            "content_block_delta" => v
                .pointer("/delta/text")
                .and_then(|t| t.as_str())
                .map(|t| vec![Parsed::Text(t.to_string())])
                .unwrap_or_default(),
            "message_delta" => {
                self.usage.completion_tokens = count(v.pointer("/usage/output_tokens"));
                let mut out = vec![Parsed::Usage(self.usage)];
                match v.pointer("/delta/stop_reason").and_then(|r| r.as_str()) {
                    Some("max_tokens") => out.push(Parsed::Finish(FinishReason::Length)),
                    Some(_) => out.push(Parsed::Finish(FinishReason::Stop)),
                    None => {}
                }
                out
            }
            "message_stop" => vec![Parsed::End],
            "error" => {
                let message = v
                    .pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("unknown error")
                    .to_string();
                return Err(match v.pointer("/error/type").and_then(|t| t.as_str()) {
                    Some("rate_limit_error") => LlmError::RateLimited {
                        provider: self.provider.clone(),
                        retry_after: None,
                    },
                    Some("overloaded_error") => LlmError::Server {
                        provider: self.provider.clone(),
                        status: 529,
                        message,
                    },
                    _ => LlmError::Server {
                        provider: self.provider.clone(),
                        status: 500,
                        message,
                    },
                });
            }
            // ping, content_block_start/stop, and event types added later.
            _ => Vec::new(),
        })
    }
}

impl Llm for Anthropic {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn is_cloud(&self) -> bool {
        true
    }

    fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Answer {
        if let Err(e) = self.http.preflight(&self.config, true) {
            return Answer::failed(e);
        }
        let post = self.request(&request);
        let parser = Box::new(Parser {
            provider: self.config.name.clone(),
            usage: Usage::default(),
        });
        self.http.start(post, parser, cancel)
    }
}
