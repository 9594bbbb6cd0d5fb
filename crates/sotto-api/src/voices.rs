//! The installed voices, from the model store: each Piper voice by its model id, each
//! Kokoro speaker as `kokoro-82m-int8/<speaker>`.

use sotto_models::{ModelKind, ModelStore};
use sotto_tts::{Tts, TtsError};

use crate::VoiceSource;

/// Voices from a model store, loaded with `threads` threads each.
pub struct StoreVoices {
    store: ModelStore,
    threads: usize,
}

impl StoreVoices {
    /// The voices installed in `store`.
    pub fn new(store: ModelStore, threads: usize) -> StoreVoices {
        StoreVoices { store, threads }
    }
}

impl VoiceSource for StoreVoices {
    fn ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for model in &self.store.manifest().models {
            if model.kind != ModelKind::Tts || !self.store.is_installed(&model.id) {
                continue;
            }
            if model.id == sotto_tts::kokoro::KOKORO_MODEL {
                let speakers = sotto_tts::kokoro::speakers(&self.store).unwrap_or_default();
                ids.extend(speakers.into_iter().map(|s| format!("{}/{s}", model.id)));
            } else {
                ids.push(model.id.clone());
            }
        }
        ids
    }

    fn load(&self, id: &str) -> Result<Box<dyn Tts>, TtsError> {
        sotto_tts::load_voice(&self.store, id, self.threads)
    }
}
