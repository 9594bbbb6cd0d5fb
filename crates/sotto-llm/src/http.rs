//! What every cloud provider shares: one HTTP client with connect, first-token and idle
//! timeouts, retries with backoff where a retry is safe, the offline switch, and the loop
//! that reads an SSE answer into [`Chunk`]s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::sse::{SseDecoder, SseEvent};
use crate::{
    Answer, AnswerSender, CancellationToken, Chunk, Finish, FinishReason, LlmError, Usage,
};

/// Timeouts and retries for cloud requests.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// Opening the connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// From sending the request to the first text of the answer.
    pub first_token_timeout: Duration,
    /// Between two pieces of the stream once it flows.
    pub idle_timeout: Duration,
    /// Extra attempts after a 429, a 5xx or a failed connection (nothing was answered yet,
    /// so a retry cannot duplicate anything).
    pub retries: u32,
    /// The first backoff; each retry doubles it.
    pub backoff: Duration,
    /// The longest wait Sotto accepts, from backoff or a `Retry-After` header. A voice
    /// assistant that waits longer has lost the user anyway.
    pub max_wait: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            first_token_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(20),
            retries: 2,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(5),
        }
    }
}

/// Offline mode, shared by every provider: while on, no cloud request is made.
#[derive(Debug, Clone, Default)]
pub struct OfflineSwitch(Arc<AtomicBool>);

impl OfflineSwitch {
    /// Turns offline mode on or off.
    pub fn set(&self, offline: bool) {
        self.0.store(offline, Ordering::SeqCst);
    }

    /// True while offline.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// An API key. Its `Debug` never shows it, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key itself, for a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Where a cloud provider is and who we are to it.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// The name the user sees ("OpenAI", "Groq", "My LM Studio").
    pub name: String,
    /// The API's base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The model to ask.
    pub model: String,
    /// The API key (from the keychain); local servers need none.
    pub api_key: Option<ApiKey>,
}

impl CloudConfig {
    /// The API key, or the error that says to add one.
    pub fn require_key(&self) -> Result<&ApiKey, LlmError> {
        self.api_key.as_ref().ok_or_else(|| LlmError::MissingKey {
            provider: self.name.clone(),
        })
    }

    /// `path` appended to the base URL.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

/// The shared HTTP client.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    config: HttpConfig,
    offline: OfflineSwitch,
}

/// What a provider's stream parser makes of one SSE event.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Answer text.
    Text(String),
    /// Token counts (may come more than once; the last wins, fields merge).
    Usage(Usage),
    /// The provider said why the answer ended.
    Finish(FinishReason),
    /// The provider's explicit end of stream.
    End,
}

/// A provider's reading of its own SSE events.
pub trait StreamParser: Send {
    /// Parses one event.
    fn parse(&mut self, event: &SseEvent) -> Result<Vec<Parsed>, LlmError>;

    /// True if the stream may simply close after a finish reason (no explicit end event).
    fn ends_at_close(&self) -> bool {
        false
    }
}

/// One POST request, ready to send.
pub struct PostRequest {
    /// The provider's name, for messages.
    pub provider: String,
    /// Full URL.
    pub url: String,
    /// Extra headers (auth, versions).
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: serde_json::Value,
    /// True if the request leaves this machine (offline mode refuses it).
    pub cloud: bool,
}

impl HttpClient {
    /// A client with these timeouts, obeying `offline`.
    pub fn new(config: HttpConfig, offline: OfflineSwitch) -> Result<HttpClient, LlmError> {
        // rustls needs a process-wide crypto provider; ring is the one we build with.
        let _ = rustls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            // Requests carry API keys in headers a redirect would forward to wherever it
            // points (reqwest strips only the standard ones): a redirect is an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sotto/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Connect {
                provider: "HTTP".into(),
                reason: e.to_string(),
            })?;
        Ok(HttpClient {
            client,
            config,
            offline,
        })
    }

    /// The timeouts in force.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The offline switch.
    pub fn offline(&self) -> &OfflineSwitch {
        &self.offline
    }

    /// Whether `config`'s provider may be asked at all: a cloud provider is refused while
    /// offline (said first: it is the user's explicit choice) and needs its API key.
    pub fn preflight(&self, config: &CloudConfig, cloud: bool) -> Result<(), LlmError> {
        if !cloud {
            return Ok(());
        }
        if self.offline.is_on() {
            return Err(LlmError::Offline {
                provider: config.name.clone(),
            });
        }
        config.require_key().map(|_| ())
    }

    /// Sends `request` on a new task and returns its streaming answer.
    pub fn start(
        &self,
        request: PostRequest,
        parser: Box<dyn StreamParser>,
        cancel: CancellationToken,
    ) -> Answer {
        let (tx, answer) = Answer::channel();
        let http = self.clone();
        tokio::spawn(async move { http.stream(request, parser, cancel, tx).await });
        answer
    }

    /// Sends `request` and streams its SSE answer into `tx`, parsed by `parser`. Always
    /// ends the answer: with `Done` or one error.
    pub async fn stream(
        &self,
        request: PostRequest,
        mut parser: Box<dyn StreamParser>,
        cancel: CancellationToken,
        tx: AnswerSender,
    ) {
        let provider = request.provider.clone();
        let started = Instant::now();
        let response = tokio::select! {
            response = self.send_with_retries(&request) => response,
            _ = cancel.cancelled() => {
                let _ = tx.send(Ok(Chunk::Done(Finish {
                    reason: FinishReason::Cancelled,
                    usage: None,
                    provider,
                }))).await;
                return;
            }
        };
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let result = self
            .read_stream(&provider, response, parser.as_mut(), started, &cancel, &tx)
            .await;
        let _ = match result {
            Ok(finish) => tx.send(Ok(Chunk::Done(finish))).await,
            Err(e) => tx.send(Err(e)).await,
        };
    }

    async fn read_stream(
        &self,
        provider: &str,
        response: reqwest::Response,
        parser: &mut dyn StreamParser,
        started: Instant,
        cancel: &CancellationToken,
        tx: &AnswerSender,
    ) -> Result<Finish, LlmError> {
        let mut body = response.bytes_stream();
        let mut decoder = SseDecoder::default();
        let mut usage: Option<Usage> = None;
        let mut reason: Option<FinishReason> = None;
        let mut said_anything = false;
        let mut last_activity = Instant::now();
        let finish = |reason, usage| Finish {
            reason,
            usage,
            provider: provider.to_string(),
        };
        loop {
            let (deadline, stage, limit) = if said_anything {
                let limit = self.config.idle_timeout;
                (last_activity + limit, "next token", limit)
            } else {
                let limit = self.config.first_token_timeout;
                (started + limit, "first token", limit)
            };
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, body.next()) => next,
                _ = cancel.cancelled() => return Ok(finish(FinishReason::Cancelled, usage)),
            };
            let bytes = match next {
                Err(_) => {
                    return Err(LlmError::Timeout {
                        provider: provider.to_string(),
                        stage,
                        after: limit,
                    })
                }
                Ok(None) => {
                    return match reason {
                        Some(r) if parser.ends_at_close() && !decoder.is_mid_event() => {
                            Ok(finish(r, usage))
                        }
                        _ => Err(LlmError::Malformed {
                            provider: provider.to_string(),
                            reason: "the stream ended before the answer was complete".into(),
                        }),
                    };
                }
                Ok(Some(Err(e))) => {
                    return Err(LlmError::Connect {
                        provider: provider.to_string(),
                        reason: format!("the connection broke mid-answer ({e})"),
                    })
                }
                Ok(Some(Ok(bytes))) => bytes,
            };
            last_activity = Instant::now();
            for event in decoder.feed(&bytes) {
                for parsed in parser.parse(&event)? {
                    match parsed {
                        Parsed::Text(text) if text.is_empty() => {}
                        Parsed::Text(text) => {
                            said_anything = true;
                            if tx.send(Ok(Chunk::Text(text))).await.is_err() {
                                // Nobody is listening: stop reading.
                                return Ok(finish(FinishReason::Cancelled, usage));
                            }
                        }
                        Parsed::Usage(u) => usage = Some(merge_usage(usage, u)),
                        Parsed::Finish(r) => reason = Some(r),
                        Parsed::End => {
                            return Ok(finish(reason.unwrap_or(FinishReason::Stop), usage))
                        }
                    }
                }
            }
        }
    }

    async fn send_with_retries(
        &self,
        request: &PostRequest,
    ) -> Result<reqwest::Response, LlmError> {
        let provider = &request.provider;
        let mut attempt = 0;
        loop {
            if request.cloud && self.offline.is_on() {
                return Err(LlmError::Offline {
                    provider: provider.clone(),
                });
            }
            let mut builder = self.client.post(&request.url).json(&request.body);
            for (name, value) in &request.headers {
                builder = builder.header(*name, value);
            }
            let backoff = self.config.backoff * 2u32.saturating_pow(attempt);
            let can_retry = attempt < self.config.retries;
            attempt += 1;
            // A server that takes the request and never answers is not retried: the
            // question may already be in its hands.
            let limit = self.config.first_token_timeout;
            let Ok(sent) = tokio::time::timeout(limit, builder.send()).await else {
                return Err(LlmError::Timeout {
                    provider: provider.clone(),
                    stage: "response",
                    after: limit,
                });
            };
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    let error = LlmError::Connect {
                        provider: provider.clone(),
                        reason: root_cause(&e),
                    };
                    if can_retry {
                        tracing::warn!(%provider, "request failed, retrying: {error}");
                        tokio::time::sleep(backoff.min(self.config.max_wait)).await;
                        continue;
                    }
                    return Err(error);
                }
            };
            let status = response.status().as_u16();
            if response.status().is_success() {
                return Ok(response);
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Providers may quote the key back ("Incorrect API key provided: sk-..."):
            // it must not reach the user's screen or the logs.
            let message = redact_keys(error_message(response).await, &request.headers);
            let error = match status {
                300..=399 => {
                    return Err(LlmError::Refused {
                        provider: provider.clone(),
                        status,
                        message: "it redirects elsewhere, and Sotto does not send your key on \
                                  to another address. Use the address it redirects to"
                            .into(),
                    })
                }
                401 | 403 => {
                    return Err(LlmError::Unauthorized {
                        provider: provider.clone(),
                        status,
                    })
                }
                429 => LlmError::RateLimited {
                    provider: provider.clone(),
                    retry_after,
                },
                500..=599 => LlmError::Server {
                    provider: provider.clone(),
                    status,
                    message,
                },
                _ => {
                    return Err(LlmError::Refused {
                        provider: provider.clone(),
                        status,
                        message,
                    })
                }
            };
            let wait = retry_after.unwrap_or(backoff);
            if !can_retry || wait > self.config.max_wait {
                return Err(error);
            }
            tracing::warn!(%provider, "{error}; retrying in {} ms", wait.as_millis());
            tokio::time::sleep(wait).await;
        }
    }
}

fn merge_usage(old: Option<Usage>, new: Usage) -> Usage {
    let old = old.unwrap_or_default();
    Usage {
        prompt_tokens: new.prompt_tokens.max(old.prompt_tokens),
        cached_tokens: new.cached_tokens.max(old.cached_tokens),
        completion_tokens: new.completion_tokens.max(old.completion_tokens),
    }
}

/// The provider's own error message from an error response (`error.message` in the
/// OpenAI, Anthropic and Gemini formats), or the start of the body.
async fn error_message(response: reqwest::Response) -> String {
    let body = tokio::time::timeout(Duration::from_secs(2), response.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(String::from))
        .unwrap_or_else(|| {
            body.chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_string()
        })
}

/// Headers whose values are secrets.
const SECRET_HEADERS: [&str; 3] = ["authorization", "x-api-key", "x-goog-api-key"];

/// `text` with every secret header value (and a bearer token inside one) replaced.
fn redact_keys(mut text: String, headers: &[(&'static str, String)]) -> String {
    for (name, value) in headers {
        if !SECRET_HEADERS.contains(name) {
            continue;
        }
        let secret = value.strip_prefix("Bearer ").unwrap_or(value);
        if !secret.is_empty() {
            text = text.replace(secret, "***");
        }
    }
    text
}

/// The innermost cause of a reqwest error ("Connection refused" rather than "error
/// sending request").
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// Installs ring as rustls' crypto provider, once per process.
fn rustls_provider() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        rustls::crypto::ring::default_provider()
            .install_default()
            .is_ok()
    })
}

/// Parses `data` as JSON, or says the stream is malformed.
pub fn json(provider: &str, data: &str) -> Result<serde_json::Value, LlmError> {
    serde_json::from_str(data).map_err(|e| LlmError::Malformed {
        provider: provider.to_string(),
        reason: format!(
            "an event is not valid JSON ({e}): {}",
            data.chars().take(120).collect::<String>()
        ),
    })
}

/// A JSON number as a token count.
pub fn count(value: Option<&serde_json::Value>) -> u32 {
    value.and_then(serde_json::Value::as_u64).unwrap_or(0) as u32
}
