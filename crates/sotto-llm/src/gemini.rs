//! Google Gemini's `streamGenerateContent` API with server-sent events.

use serde_json::json;

use crate::http::{count, json, CloudConfig, HttpClient, Parsed, PostRequest, StreamParser};
use crate::sse::SseEvent;
use crate::{Answer, CancellationToken, ChatRequest, FinishReason, Llm, LlmError, Role, Usage};

/// Gemini (base URL `https://generativelanguage.googleapis.com`).
pub struct Gemini {
    config: CloudConfig,
    http: HttpClient,
}

impl Gemini {
    /// A provider for `config`.
    pub fn new(config: CloudConfig, http: HttpClient) -> Gemini {
        Gemini { config, http }
    }

    fn request(&self, request: &ChatRequest) -> PostRequest {
        let s = &request.sampling;
        let contents: Vec<_> = request
            .turns()
            .map(|m| {
                let role = if m.role == Role::Assistant {
                    "model"
                } else {
                    "user"
                };
                json!({"role": role, "parts": [{"text": m.content}]})
            })
            .collect();
        let mut config = json!({
            "temperature": s.temperature,
            "topP": s.top_p,
            "maxOutputTokens": s.max_tokens,
        });
        if !s.stop.is_empty() {
            config["stopSequences"] = json!(s.stop);
        }
        let mut body = json!({"contents": contents, "generationConfig": config});
        if let Some(system) = request.system() {
            body["systemInstruction"] = json!({"parts": [{"text": system}]});
        }
        PostRequest {
            provider: self.config.name.clone(),
            url: self.config.url(&format!(
                "v1beta/models/{}:streamGenerateContent?alt=sse",
                self.config.model
            )),
            // The key is there: `preflight` checked it.
            headers: self
                .config
                .api_key
                .iter()
                .map(|key| ("x-goog-api-key", key.expose().to_string()))
                .collect(),
            body,
            cloud: true,
        }
    }
}

struct Parser {
    provider: String,
}

impl StreamParser for Parser {
    fn parse(&mut self, event: &SseEvent) -> Result<Vec<Parsed>, LlmError> {
        let v = json(&self.provider, &event.data)?;
        if let Some(message) = v.pointer("/error/message").and_then(|m| m.as_str()) {
            return Err(LlmError::Server {
                provider: self.provider.clone(),
                status: count(v.pointer("/error/code")).try_into().unwrap_or(500),
                message: message.to_string(),
            });
        }
        let mut out = Vec::new();
        let Some(candidate) = v.pointer("/candidates/0") else {
            return Err(LlmError::Malformed {
                provider: self.provider.clone(),
                reason: "an event has no candidates".into(),
            });
        };
        if let Some(parts) = candidate
            .pointer("/content/parts")
            .and_then(|p| p.as_array())
        {
            for part in parts {
                if let Some(text) = part.get("text").and_then(|t| t.as_str()) {
                    out.push(Parsed::Text(text.to_string()));
                }
            }
        }
        if let Some(usage) = v.get("usageMetadata") {
            out.push(Parsed::Usage(Usage {
                prompt_tokens: count(usage.get("promptTokenCount")),
                cached_tokens: count(usage.get("cachedContentTokenCount")),
                completion_tokens: count(usage.get("candidatesTokenCount")),
            }));
        }
        match candidate.get("finishReason").and_then(|r| r.as_str()) {
            Some("MAX_TOKENS") => out.push(Parsed::Finish(FinishReason::Length)),
            Some(_) => out.push(Parsed::Finish(FinishReason::Stop)),
            None => {}
        }
        Ok(out)
    }

    fn ends_at_close(&self) -> bool {
        // Gemini has no end event: the stream closes after the finish reason.
        true
    }
}

impl Llm for Gemini {
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
        });
        self.http.start(post, parser, cancel)
    }
}
