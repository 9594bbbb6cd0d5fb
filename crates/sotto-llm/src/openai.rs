//! OpenAI's Chat Completions API with streaming, which OpenAI, OpenRouter, DeepSeek, Groq,
//! Ollama, LM Studio and vLLM all speak: only the base URL, model and key differ.

use serde_json::json;

use crate::http::{count, json, CloudConfig, HttpClient, Parsed, PostRequest, StreamParser};
use crate::sse::SseEvent;
use crate::{Answer, CancellationToken, ChatRequest, FinishReason, Llm, LlmError, Usage};

/// A provider speaking the OpenAI Chat Completions protocol.
pub struct OpenAiCompatible {
    config: CloudConfig,
    http: HttpClient,
    cloud: bool,
}

impl OpenAiCompatible {
    /// A provider at `config.base_url` (e.g. `https://api.openai.com/v1`, or
    /// `http://localhost:11434/v1` for Ollama).
    pub fn new(config: CloudConfig, http: HttpClient) -> OpenAiCompatible {
        // A server on this machine (Ollama, LM Studio) is not "the cloud".
        let cloud = !is_loopback(&config.base_url);
        OpenAiCompatible {
            config,
            http,
            cloud,
        }
    }

    /// Overrides whether this server counts as the cloud: a proxy on this machine that
    /// relays to a cloud service (LiteLLM, an SSH tunnel) must obey offline mode too.
    pub fn with_cloud(mut self, cloud: bool) -> OpenAiCompatible {
        self.cloud = cloud;
        self
    }

    fn request(&self, request: &ChatRequest) -> PostRequest {
        let s = &request.sampling;
        let messages: Vec<_> = request
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        });
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
        }
        let headers = self
            .config
            .api_key
            .as_ref()
            .map(|key| vec![("authorization", format!("Bearer {}", key.expose()))])
            .unwrap_or_default();
        PostRequest {
            provider: self.config.name.clone(),
            url: self.config.url("chat/completions"),
            headers,
            body,
            cloud: self.cloud,
        }
    }
}

/// True for URLs of this machine.
pub(crate) fn is_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    matches!(host, "localhost" | "127.0.0.1" | "[" | "::1") || url.contains("://[::1]")
}

struct Parser {
    provider: String,
}

impl StreamParser for Parser {
    fn parse(&mut self, event: &SseEvent) -> Result<Vec<Parsed>, LlmError> {
        if event.data.trim() == "[DONE]" {
            return Ok(vec![Parsed::End]);
        }
        let v = json(&self.provider, &event.data)?;
        if let Some(message) = v.pointer("/error/message").and_then(|m| m.as_str()) {
            return Err(LlmError::Server {
                provider: self.provider.clone(),
                status: 500,
                message: message.to_string(),
            });
        }
        let mut out = Vec::new();
        if let Some(choice) = v.pointer("/choices/0") {
            if let Some(text) = choice.pointer("/delta/content").and_then(|c| c.as_str()) {
                out.push(Parsed::Text(text.to_string()));
            }
            match choice.get("finish_reason").and_then(|r| r.as_str()) {
                Some("length") => out.push(Parsed::Finish(FinishReason::Length)),
                Some(_) => out.push(Parsed::Finish(FinishReason::Stop)),
                None => {}
            }
        } else if v.get("usage").is_none() {
            return Err(LlmError::Malformed {
                provider: self.provider.clone(),
                reason: "an event has neither choices nor usage".into(),
            });
        }
        if let Some(usage) = v.get("usage").filter(|u| u.is_object()) {
            out.push(Parsed::Usage(Usage {
                prompt_tokens: count(usage.get("prompt_tokens")),
                cached_tokens: count(usage.pointer("/prompt_tokens_details/cached_tokens")),
                completion_tokens: count(usage.get("completion_tokens")),
            }));
        }
        Ok(out)
    }

    fn ends_at_close(&self) -> bool {
        // Some compatible servers close after the finish reason without `[DONE]`.
        true
    }
}

impl Llm for OpenAiCompatible {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn is_cloud(&self) -> bool {
        self.cloud
    }

    fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Answer {
        if let Err(e) = self.http.preflight(&self.config, self.cloud) {
            return Answer::failed(e);
        }
        let post = self.request(&request);
        let parser = Box::new(Parser {
            provider: self.config.name.clone(),
        });
        self.http.start(post, parser, cancel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_on_this_machine_are_not_the_cloud() {
        assert!(is_loopback("http://localhost:11434/v1"));
        assert!(is_loopback("http://127.0.0.1:1234/v1"));
        assert!(is_loopback("http://[::1]:8000/v1"));
        assert!(!is_loopback("https://api.openai.com/v1"));
        assert!(!is_loopback("https://localhost.example.com/v1"));
    }
}
