//! Wiring once: the one path from the user's [`Settings`] to a running assistant
//! ([`start`]), used by the desktop app, the CLI and the benchmarks; none of them wires
//! engines itself. Default model ids come from the manifest's `default` flags only.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use sotto_audio::{
    CaptureEvent, EchoCanceller, Endpointer, EndpointerConfig, ListenMode, Listener,
    ListenerConfig, Player, SmartTurn, VadKind,
};
use sotto_llm::exact::Exact;
use sotto_llm::http::{HttpConfig, OfflineSwitch};
use sotto_llm::keys::KeyStore;
use sotto_llm::local::{LocalConfig, LocalLlm};
use sotto_llm::providers::{self, CloudSetup};
use sotto_llm::Llm;
use sotto_models::{default_model, ModelKind, ModelStore};
use sotto_stt::{SpeechToText, SttConfig, WhisperStt};

use sotto_tts::cache::TtsCache;

use crate::budget::{CpuBudget, EngineThreads};
use crate::embed::Embedder;
use crate::event::{ErrorKind, Event};
use crate::intents::{InstantAnswers, Intents, IntentsError};
use crate::settings::Settings;
use crate::{Assistant, Engines, Memory};

/// Which models to use.
#[derive(Debug, Clone)]
pub struct EngineChoice {
    /// The whisper model id.
    pub stt_model: String,
    /// The local LLM's model id.
    pub llm_model: String,
    /// The voice id (see `sotto_tts::load_voice`).
    pub voice: String,
    /// The voice activity detector.
    pub vad: VadKind,
    /// CPU threads for each engine (`None`: what the CPU budget gives them,
    /// [`crate::budget`]).
    pub threads: Option<EngineThreads>,
    /// The instant-answers file (created with the defaults if absent); `None`: off.
    pub intents: Option<std::path::PathBuf>,
    /// Speaking rate (instant answers are spoken ahead of time at it).
    pub speed: f32,
    /// Hands-free: the speech probability above which a frame counts as speech.
    pub vad_threshold: f32,
    /// Hands-free: ask the end-of-turn model whether a pause ends the turn (when it is
    /// installed); otherwise a fixed silence does.
    pub turn_model: bool,
    /// Take what the player plays out of what the microphone hears
    /// ([`sotto_audio::EchoCanceller`]).
    pub echo_cancellation: bool,
    /// The longest question, hands-free and push-to-talk (milliseconds): listening stops
    /// there, the user is told, and what was said is answered.
    pub max_speech_ms: MaxSpeech,
    /// How long the local model may take before it counts as hung.
    pub local_timeouts: LocalTimeouts,
    /// A cloud provider to answer (`None`: the local model alone).
    pub cloud: Option<CloudChoice>,
}

/// How long the local model's worker may take before it is taken for hung (stopped, the
/// answer failed with a timeout, a fresh worker for the next question).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTimeouts {
    /// To the first word, the question's reading included.
    pub first_token: Duration,
    /// Between two words.
    pub token: Duration,
}

impl Default for LocalTimeouts {
    fn default() -> Self {
        LocalTimeouts {
            first_token: sotto_llm::local::DEFAULT_FIRST_TOKEN_TIMEOUT,
            token: sotto_llm::local::DEFAULT_TOKEN_TIMEOUT,
        }
    }
}

impl LocalTimeouts {
    /// The local model's limits in `settings`.
    pub fn from_settings(settings: &Settings) -> LocalTimeouts {
        LocalTimeouts {
            first_token: Duration::from_secs(settings.local_first_token_timeout_s.into()),
            token: Duration::from_secs(settings.local_token_timeout_s.into()),
        }
    }
}

/// A cloud provider, and how it shares the work with the local model.
#[derive(Debug, Clone)]
pub struct CloudChoice {
    /// The provider's id (see `sotto_llm::providers::PRESETS`).
    pub provider: String,
    /// Its model (`None`: the provider's default).
    pub model: Option<String>,
    /// Another base URL (a proxy, a test server); `None`: the provider's.
    pub base_url: Option<String>,
    /// Answer with the local model when the provider fails or is slow to start.
    pub fallback_to_local: bool,
    /// Where the provider's key is kept.
    pub keys: KeyStore,
    /// Cuts every cloud request while on.
    pub offline: OfflineSwitch,
    /// Its timeouts and retries.
    pub http: HttpConfig,
}

/// Where the user's instant answers live: `<config dir>/sotto/intents.toml`.
pub fn default_intents_path() -> Option<std::path::PathBuf> {
    dirs::config_dir().map(|d| d.join("sotto").join("intents.toml"))
}

impl Default for EngineChoice {
    fn default() -> Self {
        EngineChoice {
            stt_model: default_model(ModelKind::Stt),
            llm_model: default_model(ModelKind::Llm),
            voice: default_model(ModelKind::Tts),
            vad: VadKind::Silero,
            threads: None,
            intents: None,
            speed: 1.0,
            vad_threshold: EndpointerConfig::default().threshold,
            turn_model: true,
            echo_cancellation: true,
            max_speech_ms: MaxSpeech::default(),
            local_timeouts: LocalTimeouts::default(),
            cloud: None,
        }
    }
}

/// The longest question in each mode, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxSpeech {
    /// Hands-free.
    pub hands_free: u32,
    /// Push-to-talk and toggle.
    pub push_to_talk: u32,
}

impl Default for MaxSpeech {
    fn default() -> Self {
        let listener = ListenerConfig::default();
        MaxSpeech {
            hands_free: listener.max_hands_free_ms,
            push_to_talk: listener.max_push_to_talk_ms,
        }
    }
}

impl EngineChoice {
    /// The engines `settings` ask for; `intents` is the instant-answers file (`None`:
    /// off), `keys` where a cloud provider's key is looked up.
    pub fn from_settings(
        settings: &Settings,
        intents: Option<PathBuf>,
        keys: KeyStore,
    ) -> EngineChoice {
        EngineChoice {
            stt_model: settings.stt_model.clone(),
            llm_model: settings.llm_model.clone(),
            voice: settings.voice.clone(),
            intents,
            speed: settings.speed,
            vad_threshold: settings.vad_threshold(),
            echo_cancellation: settings.echo_cancellation,
            max_speech_ms: MaxSpeech {
                hands_free: settings.max_speech_hands_free_s.saturating_mul(1000),
                push_to_talk: settings.max_speech_push_to_talk_s.saturating_mul(1000),
            },
            local_timeouts: LocalTimeouts::from_settings(settings),
            cloud: CloudChoice::from_settings(settings, keys),
            ..EngineChoice::default()
        }
    }
}

impl CloudChoice {
    /// The cloud provider `settings` ask for; `None` when the local model answers alone or
    /// the user is offline.
    pub fn from_settings(settings: &Settings, keys: KeyStore) -> Option<CloudChoice> {
        if settings.offline || settings.provider == providers::LOCAL {
            return None;
        }
        Some(CloudChoice {
            provider: settings.provider.clone(),
            model: settings.cloud_model.clone(),
            base_url: settings.cloud_base_url.clone(),
            fallback_to_local: settings.fallback_to_local,
            keys,
            offline: OfflineSwitch::default(),
            http: HttpConfig {
                first_token_timeout: Duration::from_secs(
                    settings.cloud_first_token_timeout_s.into(),
                ),
                idle_timeout: Duration::from_secs(settings.cloud_token_timeout_s.into()),
                ..HttpConfig::default()
            },
        })
    }
}

/// What starting the assistant needs besides the settings.
pub struct Launch {
    /// Where answers are played (speakers or a WAV file).
    pub player: Arc<Player>,
    /// Where the voice comes from (a microphone's or a WAV source's events).
    pub input: std_mpsc::Receiver<CaptureEvent>,
    /// The instant-answers file (created with the defaults if absent); `None`: off.
    pub intents: Option<PathBuf>,
    /// Where turns are remembered; `None`: nowhere.
    pub memory: Option<Memory>,
    /// Where a cloud provider's API key is looked up.
    pub keys: KeyStore,
}

impl Launch {
    /// Plays on `player` and listens to `input`, with no instant answers, no history and
    /// the system keychain.
    pub fn new(player: Arc<Player>, input: std_mpsc::Receiver<CaptureEvent>) -> Launch {
        Launch {
            player,
            input,
            intents: None,
            memory: None,
            keys: KeyStore::default(),
        }
    }
}

/// A running assistant made by [`start`].
pub struct Started {
    /// The assistant.
    pub assistant: Assistant,
    /// Every event from the first.
    pub events: tokio::sync::broadcast::Receiver<Event>,
    /// Who answers, for a person ("local", "OpenAI", ...).
    pub answers: String,
    /// The assistant's language model, for other users of it (the local API): loaded
    /// once, asked by both.
    pub llm: Arc<dyn Llm>,
    /// The assistant's speech to text, likewise.
    pub stt: Arc<dyn SpeechToText>,
}

/// Builds every engine `settings` ask for and starts the assistant: the one function
/// from settings to a running assistant. The local model's worker is started here, so the
/// first question does not wait for it to load.
pub async fn start(
    store: &ModelStore,
    settings: &Settings,
    launch: Launch,
) -> Result<Started, AssembleError> {
    let choice = EngineChoice::from_settings(settings, launch.intents, launch.keys);
    let (mut engines, listener) = assemble(store, &choice, settings.mode, launch.player).await?;
    engines.memory = launch.memory;
    let answers = engines.llm.name().to_string();
    let (llm, stt) = (Arc::clone(&engines.llm), Arc::clone(&engines.stt));
    let mut turn = settings.turn_settings();
    if listener.echo_stats().is_none() {
        // No canceller (off, or it could not start): the assistant would hear itself.
        turn.barge_in_while_speaking = false;
    } else {
        // Not before the canceller has learned the room (its first seconds of voice).
        turn.barge_in_waits_for_canceller = true;
    }
    let (assistant, events) =
        Assistant::start(engines, turn, launch.input, listener).map_err(|e| AssembleError {
            kind: ErrorKind::Microphone,
            message: e.to_string(),
        })?;
    Ok(Started {
        assistant,
        events,
        answers,
        llm,
        stt,
    })
}

/// Why the engines could not be built, with the kind of failure for the UI.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AssembleError {
    /// Which part failed.
    pub kind: ErrorKind,
    /// For a person.
    pub message: String,
}

fn failed(kind: ErrorKind) -> impl Fn(String) -> AssembleError {
    move |message| AssembleError { kind, message }
}

/// Builds the engines and a listener for `mode`, playing on `player` (what [`start`]
/// does before starting the assistant).
async fn assemble(
    store: &ModelStore,
    choice: &EngineChoice,
    mode: ListenMode,
    player: Arc<Player>,
) -> Result<(Engines, Listener), AssembleError> {
    let threads = choice
        .threads
        .unwrap_or_else(|| CpuBudget::detect().threads_from_env());
    tracing::info!("engine threads: {threads:?}");
    let stt = WhisperStt::load(
        store,
        &choice.stt_model,
        SttConfig {
            threads: threads.stt,
            ..SttConfig::default()
        },
    )
    .map_err(|e| failed(ErrorKind::Model)(e.to_string()))?;
    let local =
        started_local_model(store, &choice.llm_model, &threads, choice.local_timeouts).await?;
    let mut voice = sotto_tts::load_voice(store, &choice.voice, threads.voice)
        .map_err(|e| failed(ErrorKind::Voice)(e.to_string()))?;
    let instant = match &choice.intents {
        Some(path) => match instant_answers(store, path, voice.as_mut(), choice.speed) {
            Ok(instant) => Some(Box::new(instant) as Box<dyn crate::intents::InstantSource>),
            Err(e) => {
                // The assistant works without them; the log says why they are off.
                tracing::warn!("{e}");
                None
            }
        },
        None => None,
    };
    let detector = choice
        .vad
        .build(store)
        .map_err(|e| failed(ErrorKind::Model)(e.to_string()))?;
    let mut endpointer = Endpointer::new(
        detector,
        EndpointerConfig {
            threshold: choice.vad_threshold,
            ..EndpointerConfig::default()
        },
    );
    if mode.is_hands_free() && choice.turn_model {
        match SmartTurn::load(store) {
            Ok(model) => endpointer = endpointer.with_turn_detector(Box::new(model)),
            // Hands-free still works: a fixed silence ends each turn.
            Err(e) => tracing::warn!("the end-of-turn model is off: {e}"),
        }
    }
    let mut listener = Listener::new(
        ListenerConfig {
            mode,
            max_hands_free_ms: choice.max_speech_ms.hands_free,
            max_push_to_talk_ms: choice.max_speech_ms.push_to_talk,
            ..ListenerConfig::default()
        },
        endpointer,
    );
    if choice.echo_cancellation {
        match EchoCanceller::new(player.echo_reference()) {
            Ok(canceller) => listener = listener.with_echo_canceller(canceller),
            // Listening still works; the assistant may hear itself on open speakers.
            Err(e) => tracing::warn!("echo cancellation is off: {e}"),
        }
    }
    let model = match &choice.cloud {
        Some(cloud) => with_cloud(local, cloud).await?,
        None => local,
    };
    // Sums and conversions are worked out, not left to the model to guess.
    let llm: Arc<dyn Llm> = Arc::new(Exact::new(model));
    Ok((
        Engines {
            stt: Arc::new(stt),
            llm,
            voice,
            player: player as Arc<dyn crate::AudioOut>,
            instant,
            memory: None,
        },
        listener,
    ))
}

/// The language model `settings` ask for, as the assistant builds it (the local model
/// in its worker, started; the cloud provider in front of it when chosen, with its
/// fallback and offline switch): for other users of the same model (the local API).
pub async fn language_model(
    store: &ModelStore,
    settings: &Settings,
    keys: KeyStore,
    threads: &EngineThreads,
) -> Result<Arc<dyn Llm>, AssembleError> {
    let timeouts = LocalTimeouts::from_settings(settings);
    let local = started_local_model(store, &settings.llm_model, threads, timeouts).await?;
    match CloudChoice::from_settings(settings, keys) {
        Some(cloud) => with_cloud(local, &cloud).await,
        None => Ok(local),
    }
}

/// The installed model `id` in its worker, started, with the threads of `threads`.
async fn started_local_model(
    store: &ModelStore,
    id: &str,
    threads: &EngineThreads,
    timeouts: LocalTimeouts,
) -> Result<Arc<dyn Llm>, AssembleError> {
    let model = store
        .require(id)
        .map_err(|e| failed(ErrorKind::Model)(e.to_string()))?;
    let mut config =
        LocalConfig::new(model.main_file()).map_err(|e| failed(ErrorKind::Llm)(e.to_string()))?;
    config.threads = Some(threads.llm);
    config.batch_threads = Some(threads.llm_batch);
    config.first_token_timeout = timeouts.first_token;
    config.token_timeout = timeouts.token;
    let local = LocalLlm::new(config);
    local
        .start()
        .await
        .map_err(|e| failed(ErrorKind::Llm)(e.to_string()))?;
    Ok(Arc::new(local))
}

/// The cloud provider in `cloud`, backed by `local` when the user asked for that.
async fn with_cloud(
    local: Arc<dyn Llm>,
    cloud: &CloudChoice,
) -> Result<Arc<dyn Llm>, AssembleError> {
    let llm_failed = failed(ErrorKind::Llm);
    let preset = providers::require(&cloud.provider)
        .map_err(|e| llm_failed(format!("{e}. Choose another in Settings")))?;
    // The keychain blocks (D-Bus round trips): not on an async worker.
    let keys = cloud.keys.clone();
    let found = tokio::task::spawn_blocking(move || providers::find_key(preset, &keys))
        .await
        .map_err(|e| llm_failed(format!("The keychain lookup stopped: {e}")))?;
    let key = match found {
        Ok(found) => found.map(|(key, _)| key),
        Err(e) => return Err(llm_failed(format!("No API key for {}: {e}", preset.name))),
    };
    if preset.needs_key && key.is_none() {
        return Err(llm_failed(format!(
            "No API key for {}: add one in Settings (it is kept in the system keychain), or choose the local model",
            preset.name
        )));
    }
    let setup = CloudSetup {
        preset,
        base_url: cloud.base_url.as_deref(),
        model: cloud.model.as_deref(),
        http: cloud.http,
    };
    let backup = cloud.fallback_to_local.then_some(local);
    providers::connect(setup, key, &cloud.offline, backup).map_err(|e| llm_failed(e.to_string()))
}

fn instant_answers(
    store: &ModelStore,
    path: &std::path::Path,
    voice: &mut dyn sotto_tts::Tts,
    speed: f32,
) -> Result<InstantAnswers, IntentsError> {
    let intents = Intents::load_or_create(path)?;
    let embedder = Embedder::load(store).map_err(|e| IntentsError::Model(e.to_string()))?;
    let cache = sotto_tts::cache::default_dir()
        .and_then(|dir| TtsCache::open(&dir, sotto_tts::cache::DEFAULT_MAX_ENTRIES))
        .ok();
    InstantAnswers::prepare(embedder, &intents, voice, speed, cache.as_ref())
}
