//! Wiring once: the engines a voice turn needs, built from the user's choices. The CLI
//! and the desktop app both call [`assemble`]; neither wires engines itself.

use std::sync::Arc;

use sotto_audio::{
    Endpointer, EndpointerConfig, ListenMode, Listener, ListenerConfig, Player, VadKind,
};
use sotto_llm::local::{LocalConfig, LocalLlm};
use sotto_llm::Llm;
use sotto_models::ModelStore;
use sotto_stt::{SttConfig, WhisperStt};

use sotto_tts::cache::TtsCache;

use crate::embed::Embedder;
use crate::event::ErrorKind;
use crate::intents::{InstantAnswers, Intents, IntentsError};
use crate::Engines;

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
    /// CPU threads for each engine (`None`: all cores).
    pub threads: Option<usize>,
    /// The instant-answers file (created with the defaults if absent); `None`: off.
    pub intents: Option<std::path::PathBuf>,
    /// Speaking rate (instant answers are spoken ahead of time at it).
    pub speed: f32,
}

/// Where the user's instant answers live: `<config dir>/sotto/intents.toml`.
pub fn default_intents_path() -> Option<std::path::PathBuf> {
    dirs::config_dir().map(|d| d.join("sotto").join("intents.toml"))
}

impl Default for EngineChoice {
    fn default() -> Self {
        EngineChoice {
            stt_model: "whisper-tiny.en".into(),
            llm_model: "smollm2-135m-instruct".into(),
            voice: sotto_tts::piper::DEFAULT_PIPER_VOICE.into(),
            vad: VadKind::Silero,
            threads: None,
            intents: None,
            speed: 1.0,
        }
    }
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

/// Builds the engines and a listener for `mode`, playing on `player`. The local model's
/// worker is started here, so the first question does not wait for it to load.
pub async fn assemble(
    store: &ModelStore,
    choice: &EngineChoice,
    mode: ListenMode,
    player: Arc<Player>,
) -> Result<(Engines, Listener), AssembleError> {
    let threads = choice
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let stt = WhisperStt::load(
        store,
        &choice.stt_model,
        SttConfig {
            threads,
            ..SttConfig::default()
        },
    )
    .map_err(|e| failed(ErrorKind::Model)(e.to_string()))?;
    let model = store
        .require(&choice.llm_model)
        .map_err(|e| failed(ErrorKind::Model)(e.to_string()))?;
    let mut config =
        LocalConfig::new(model.main_file()).map_err(|e| failed(ErrorKind::Llm)(e.to_string()))?;
    config.threads = Some(threads);
    let llm = LocalLlm::new(config);
    llm.start()
        .await
        .map_err(|e| failed(ErrorKind::Llm)(e.to_string()))?;
    let mut voice = sotto_tts::load_voice(store, &choice.voice, threads)
        .map_err(|e| failed(ErrorKind::Voice)(e.to_string()))?;
    let instant = match &choice.intents {
        Some(path) => match instant_answers(store, path, voice.as_mut(), choice.speed) {
            Ok(instant) => Some(instant),
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
    let listener = Listener::new(
        ListenerConfig {
            mode,
            ..ListenerConfig::default()
        },
        Endpointer::new(detector, EndpointerConfig::default()),
    );
    let llm: Arc<dyn Llm> = Arc::new(llm);
    Ok((
        Engines {
            stt: Arc::new(stt),
            llm,
            voice,
            player,
            instant,
            memory: None,
        },
        listener,
    ))
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
