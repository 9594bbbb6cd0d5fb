//! Sotto's local API: the models the user already has, for other programs on the same
//! machine, in the shape of OpenAI's API so that existing clients work unchanged.
//!
//! - `GET /v1/models`, `POST /v1/chat/completions` (streamed as server-sent events or
//!   whole), `POST /v1/audio/transcriptions` (a WAV upload, any rate), `POST
//!   /v1/audio/speech` (text to WAV or raw PCM, streamed as it is made).
//! - `GET /v1/assistant`: the live assistant over a WebSocket ([`live`]): the window's
//!   events out, the window's commands in, one voice turn at a time.
//! - Bound to loopback only (127.0.0.1 and ::1). Every request needs the bearer token
//!   kept in a file only the user can read ([`token`]); requests from a web page (an
//!   `Origin` that is not loopback) and requests naming another host (DNS rebinding) are
//!   refused, and no CORS header is ever sent.
//! - What comes from outside is bounded ([`Limits`]): body and audio length (413), a
//!   per-token rate (429 with `Retry-After`), control characters stripped, and text that
//!   tries to override the assistant's instructions screened ([`screen`]).
//!
//! [`Server::start`] serves until [`Server::shutdown`]: open streams end with it.

mod audio;
mod chat;
mod error;
mod guard;
pub mod live;
mod models;
pub mod screen;
pub mod token;
pub mod voices;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use sotto_llm::Llm;
use sotto_stt::SpeechToText;
use sotto_tts::{Tts, TtsError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use live::{Busy, LiveAssistant};
pub use screen::ScreenPolicy;

/// The port the API listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = sotto_core::settings::DEFAULT_API_PORT;

/// Bounds on what one client may send.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// The largest JSON body (chat, speech), bytes.
    pub max_json_bytes: usize,
    /// The largest upload (transcription), bytes: OpenAI's own limit.
    pub max_upload_bytes: usize,
    /// The longest audio to transcribe, seconds.
    pub max_audio_seconds: u32,
    /// The longest text to speak, characters: OpenAI's own limit.
    pub max_speech_chars: usize,
    /// Requests per second one token may make, on average.
    pub requests_per_second: f64,
    /// Requests one token may make at once before the rate applies.
    pub burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_bytes: 1 << 20,
            max_upload_bytes: 25 << 20,
            max_audio_seconds: 600,
            max_speech_chars: 4_096,
            requests_per_second: 10.0,
            burst: 20,
        }
    }
}

/// How the server is set up.
#[derive(Clone)]
pub struct ApiConfig {
    /// The port on both loopback addresses (0: any free one, the same on both).
    pub port: u16,
    /// The bearer token every request must carry.
    pub token: String,
    /// Bounds on requests.
    pub limits: Limits,
    /// What to do with text that tries to override the assistant's instructions.
    pub screen: ScreenPolicy,
    /// The persona the assistant speaks with: the system prompt of a chat that brings
    /// none of its own.
    pub persona: Option<String>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never in a log.
        f.debug_struct("ApiConfig")
            .field("port", &self.port)
            .field("token", &"<redacted>")
            .field("limits", &self.limits)
            .field("screen", &self.screen)
            .field("persona", &self.persona)
            .finish()
    }
}

/// Voices by id, loaded when first asked for.
pub trait VoiceSource: Send + Sync {
    /// The ids of the installed voices.
    fn ids(&self) -> Vec<String>;
    /// Loads the voice `id`.
    fn load(&self, id: &str) -> Result<Box<dyn Tts>, TtsError>;
}

/// The engines the API answers with: the assistant's own.
#[derive(Clone)]
pub struct ApiEngines {
    /// The language model (local, cloud or a fallback pair, as the assistant's).
    pub llm: Arc<dyn Llm>,
    /// Speech to text.
    pub stt: Arc<dyn SpeechToText>,
    /// The speech-to-text model's id (listed by `/v1/models`).
    pub stt_model: String,
    /// The language model's id (listed by `/v1/models`).
    pub llm_model: String,
    /// Where voices come from.
    pub voices: Arc<dyn VoiceSource>,
    /// The voice used when a request names one that is not installed (OpenAI's "alloy").
    pub default_voice: String,
    /// The live assistant `GET /v1/assistant` drives (`None`: that endpoint says there is
    /// none). Read when the server starts; [`Server::set_engines`] keeps it.
    pub live: Option<Arc<LiveAssistant>>,
}

/// The engines requests are answered with: swapped when the assistant restarts with new
/// models, `None` while it does.
type Engines = Arc<RwLock<Option<ApiEngines>>>;

/// A loaded voice, used by one request at a time.
pub(crate) type SharedVoice = Arc<Mutex<Box<dyn Tts>>>;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The engines now (see [`Server::set_engines`]).
    pub(crate) engines: Engines,
    pub(crate) config: Arc<ApiConfig>,
    /// Voices loaded so far, each used by one request at a time.
    pub(crate) loaded: Arc<Mutex<HashMap<String, SharedVoice>>>,
    pub(crate) rate: Arc<guard::RateLimiter>,
    /// The live assistant, if one runs.
    pub(crate) live: Option<Arc<LiveAssistant>>,
    /// Cancelled when the server stops: streams end with it.
    pub(crate) shutdown: CancellationToken,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The port is taken or not allowed.
    #[error("cannot listen on 127.0.0.1:{port}: {source}. Choose another port (`sotto serve --port N`; 0 picks a free one)")]
    Bind {
        /// The port asked for.
        port: u16,
        /// What the system said.
        source: std::io::Error,
    },
}

/// A running API server.
pub struct Server {
    addrs: Vec<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    /// What requests are answered with (shared with every handler).
    engines: Engines,
}

impl Server {
    /// Starts serving `engines` on loopback. Returns once listening.
    pub async fn start(config: ApiConfig, engines: ApiEngines) -> Result<Server, StartError> {
        let requested = config.port;
        let v4 = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, requested))
            .await
            .map_err(|source| StartError::Bind {
                port: requested,
                source,
            })?;
        let port = v4
            .local_addr()
            .map_err(|source| StartError::Bind {
                port: requested,
                source,
            })?
            .port();
        // IPv6 may be off (containers); the IPv4 address is enough then.
        let v6 = match tokio::net::TcpListener::bind((Ipv6Addr::LOCALHOST, port)).await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!("the API is not on [::1]:{port}: {e}");
                None
            }
        };
        let shutdown = CancellationToken::new();
        let state = AppState {
            rate: Arc::new(guard::RateLimiter::new(
                config.limits.requests_per_second,
                config.limits.burst,
            )),
            config: Arc::new(config),
            live: engines.live.clone(),
            engines: Arc::new(RwLock::new(Some(engines))),
            loaded: Arc::default(),
            shutdown: shutdown.clone(),
        };
        let swap = Arc::clone(&state.engines);
        let router = router(state);
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for listener in std::iter::once(v4).chain(v6) {
            if let Ok(addr) = listener.local_addr() {
                addrs.push(addr);
            }
            let app = router
                .clone()
                .into_make_service_with_connect_info::<SocketAddr>();
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                let serving =
                    axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
                if let Err(e) = serving.await {
                    tracing::warn!("the API stopped serving: {e}");
                }
            }));
        }
        tracing::info!("the API listens on {addrs:?}");
        Ok(Server {
            addrs,
            shutdown,
            tasks,
            engines: swap,
        })
    }

    /// Answers from now on with `engines` (the assistant restarted with new models), or,
    /// with `None` while it restarts, with 503 and a word to try again: the server, its
    /// port and its WebSocket clients stay.
    pub fn set_engines(&self, engines: Option<ApiEngines>) {
        *self.engines.write().unwrap_or_else(PoisonError::into_inner) = engines;
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addrs.first().map_or(0, SocketAddr::port)
    }

    /// Its address for clients: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// Every address it listens on.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops accepting requests, ends open streams, and waits (at most `grace`) for the
    /// requests under way to finish.
    pub async fn shutdown(self, grace: Duration) {
        self.shutdown.cancel();
        let aborts: Vec<_> = self.tasks.iter().map(JoinHandle::abort_handle).collect();
        let mut all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(grace, &mut all).await.is_err() {
            tracing::warn!("the API's last requests did not finish in {grace:?}: cut off");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
            // Aborted tasks end at once; awaiting them frees the port before this returns.
            all.await;
        }
    }
}

/// Every route, behind the guard.
fn router(state: AppState) -> Router {
    let limits = state.config.limits.clone();
    Router::new()
        .route("/v1/models", get(models::list))
        .route("/v1/assistant", get(live::upgrade))
        .route(
            "/v1/chat/completions",
            post(chat::completions).layer(DefaultBodyLimit::max(limits.max_json_bytes)),
        )
        .route(
            "/v1/audio/speech",
            post(audio::speech).layer(DefaultBodyLimit::max(limits.max_json_bytes)),
        )
        .route(
            "/v1/audio/transcriptions",
            post(audio::transcriptions).layer(DefaultBodyLimit::max(limits.max_upload_bytes)),
        )
        .fallback(|| async { ApiError::not_found("No such endpoint. See docs/API.md") })
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed(
                "Wrong method: GET /v1/models and /v1/assistant, POST for the others. See docs/API.md",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .with_state(state)
}

impl AppState {
    /// The engines to answer with now; 503 while the assistant restarts.
    pub(crate) fn engines(&self) -> Result<ApiEngines, ApiError> {
        self.engines
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                ApiError::engine(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Sotto is restarting its models (new settings): try again in a few seconds",
                )
            })
    }
}

/// Whether `ip` is this machine.
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}
