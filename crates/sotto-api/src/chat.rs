//! `POST /v1/chat/completions`: the assistant's language model (local, cloud or the
//! fallback pair, with its offline switch), whole or streamed as server-sent events.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use sotto_llm::{
    Answer, CancellationToken, ChatRequest, Chunk, FinishReason, LlmError, Message, Role, Sampling,
};

use crate::screen::{self, strip_controls};
use crate::{ApiError, AppState};

/// The longest answer a request may ask for, tokens.
const MAX_TOKENS: u32 = 4_096;

/// The answer's length when the request does not say.
const DEFAULT_MAX_TOKENS: u32 = 512;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The body, as OpenAI's clients send it (fields Sotto does not use are ignored).
#[derive(Deserialize)]
pub(crate) struct ChatBody {
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: bool,
    temperature: Option<f32>,
    top_p: Option<f32>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stop: Option<Stop>,
    /// OpenAI's clients send any integer.
    seed: Option<i64>,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// `POST /v1/chat/completions`.
pub(crate) async fn completions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<ChatBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::from_json(&e, state.config.limits.max_json_bytes))?;
    let client = client_name(peer, &headers);
    let (messages, warning) = conversation(&body.messages, &state, &client)?;
    let max_tokens = body
        .max_completion_tokens
        .or(body.max_tokens)
        .unwrap_or(DEFAULT_MAX_TOKENS)
        .clamp(1, MAX_TOKENS);
    let request = ChatRequest {
        messages,
        sampling: Sampling {
            temperature: body.temperature.unwrap_or(0.7).clamp(0.0, 2.0),
            top_p: body.top_p.unwrap_or(0.9).clamp(0.0, 1.0),
            max_tokens,
            stop: match body.stop {
                Some(Stop::One(s)) => vec![s],
                Some(Stop::Many(v)) => v.into_iter().take(4).collect(),
                None => Vec::new(),
            },
            // Only its low bits seed the sampler.
            seed: body.seed.map(|s| s as u32),
        },
    };
    let cancel = CancellationToken::new();
    let engines = state.engines()?;
    let answer = engines.llm.chat(request, cancel.clone());
    let model = engines.llm_model;
    let mut response = if body.stream {
        streamed(answer, cancel, model, &state).into_response()
    } else {
        whole(answer, cancel, &model).await?.into_response()
    };
    if let Some(why) = warning {
        if let Ok(value) = HeaderValue::from_str(&format!("screened: the text {why}")) {
            response.headers_mut().insert("x-sotto-warning", value);
        }
    }
    Ok(response)
}

/// Who sent a request, for the log.
fn client_name(peer: SocketAddr, headers: &HeaderMap) -> String {
    let agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no user agent");
    format!("{peer} ({agent})")
}

/// The conversation for the model: roles mapped, text cleaned and screened, the
/// assistant's persona first when the client brings no system prompt. Also returns what
/// the screen found when the policy lets it through.
fn conversation(
    messages: &[InMessage],
    state: &AppState,
    client: &str,
) -> Result<(Vec<Message>, Option<&'static str>), ApiError> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    let mut warning = None;
    for m in messages {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(ApiError::bad_request(
                    "unsupported_role",
                    &format!(
                    "Messages with role {other:?} are not supported: use system, user or assistant"
                ),
                ))
            }
        };
        let text = match &m.content {
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                if parts.iter().any(|p| p.kind != "text") {
                    return Err(ApiError::bad_request(
                        "unsupported_content",
                        "Only text content is supported (no images or audio parts)",
                    ));
                }
                parts
                    .iter()
                    .filter_map(|p| p.text.as_deref())
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            None => String::new(),
        };
        let content = strip_controls(&text);
        if role == Role::User {
            match screen::check(&content, state.config.screen, client) {
                Ok(found) => warning = found.or(warning),
                Err(refused) => return Err(ApiError::bad_request("screened", &refused)),
            }
        }
        out.push(Message { role, content });
    }
    if !out.iter().any(|m| m.role == Role::User) {
        return Err(ApiError::bad_request(
            "no_question",
            "`messages` holds no user message: nothing to answer",
        ));
    }
    if !out.iter().any(|m| m.role == Role::System) {
        if let Some(persona) = &state.config.persona {
            out.insert(
                0,
                Message {
                    role: Role::System,
                    content: persona.clone(),
                },
            );
        }
    }
    Ok((out, warning))
}

fn llm_error(e: &LlmError) -> ApiError {
    let status = match e {
        LlmError::RateLimited { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::engine(status, &e.to_string())
}

fn finish_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::Stop | FinishReason::Cancelled => "stop",
    }
}

fn id_and_time() -> (String, u64) {
    let id = format!("chatcmpl-sotto-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (id, created)
}

/// The whole answer in one response.
async fn whole(
    answer: Answer,
    cancel: CancellationToken,
    model: &str,
) -> Result<Json<Value>, ApiError> {
    // The client going away drops this future: the model stops.
    let _stop = cancel.drop_guard();
    let (text, finish) = answer.collect().await.map_err(|e| llm_error(&e))?;
    let (id, created) = id_and_time();
    let usage = finish.usage.map(|u| {
        json!({
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens,
        })
    });
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text, "refusal": null },
            "logprobs": null,
            "finish_reason": finish_reason(&finish.reason),
        }],
        "usage": usage,
    })))
}

/// Where a streamed answer is.
struct Streaming {
    answer: Answer,
    /// Cancels the model when the stream is dropped (the client went away).
    _stop: tokio_util::sync::DropGuard,
    id: String,
    created: u64,
    model: String,
    /// The role went out in the first chunk.
    started: bool,
    /// `[DONE]` went out: nothing follows.
    done: bool,
}

impl Streaming {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Event {
        let body = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        });
        Event::default().data(body.to_string())
    }

    /// The next events of the stream (several when the answer ends).
    async fn next_events(&mut self) -> Option<Vec<Event>> {
        if self.done {
            return None;
        }
        let mut events = Vec::new();
        if !self.started {
            self.started = true;
            events.push(self.chunk(json!({ "role": "assistant", "content": "" }), None));
        }
        loop {
            match self.answer.next().await {
                Some(Ok(Chunk::Text(text))) => {
                    events.push(self.chunk(json!({ "content": text }), None));
                    return Some(events);
                }
                Some(Ok(Chunk::FellBack { from, to, reason })) => {
                    tracing::info!("API chat: {from} failed ({reason}); {to} answers");
                }
                Some(Ok(Chunk::Done(finish))) => {
                    events.push(self.chunk(json!({}), Some(finish_reason(&finish.reason))));
                    events.push(Event::default().data("[DONE]"));
                    self.done = true;
                    return Some(events);
                }
                Some(Err(e)) => {
                    // OpenAI's clients raise an error on a chunk carrying `error`.
                    events.push(Event::default().data(llm_error(&e).body().to_string()));
                    self.done = true;
                    return Some(events);
                }
                None => {
                    let e = LlmError::Worker("the answer stream ended without finishing".into());
                    events.push(Event::default().data(llm_error(&e).body().to_string()));
                    self.done = true;
                    return Some(events);
                }
            }
        }
    }
}

/// The answer as server-sent events, chunk by chunk, ending with `[DONE]`.
fn streamed(
    answer: Answer,
    cancel: CancellationToken,
    model: String,
    state: &AppState,
) -> impl IntoResponse {
    let (id, created) = id_and_time();
    let streaming = Streaming {
        answer,
        _stop: cancel.drop_guard(),
        id,
        created,
        model,
        started: false,
        done: false,
    };
    let events = futures_util::stream::unfold(streaming, |mut s| async move {
        s.next_events().await.map(|events| (events, s))
    })
    .flat_map(|events| {
        futures_util::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>))
    })
    // A server that stops ends open streams (else it would wait for them).
    .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(events).keep_alive(KeepAlive::default())
}
