//! The installed voices, from the model store: each Piper voice by its model id, each
//! Kokoro speaker as `kokoro-82m-int8/<speaker>`.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sotto_models::{ModelKind, ModelStore};
use sotto_tts::{Tts, TtsError};

use crate::VoiceSource;

/// How long the list of installed voices is reused: finding it checks every voice's
/// files, too much to do for each request of a busy client.
const LIST_FOR: Duration = Duration::from_secs(10);

/// Voices from a model store, loaded with `threads` threads each.
pub struct StoreVoices {
    store: ModelStore,
    threads: usize,
    /// The ids last found, and when.
    listed: Mutex<Option<(Instant, Vec<String>)>>,
}

impl StoreVoices {
    /// The voices installed in `store`.
    pub fn new(store: ModelStore, threads: usize) -> StoreVoices {
        StoreVoices {
            store,
            threads,
            listed: Mutex::new(None),
        }
    }

    /// The installed voices, looked for in the store.
    fn find(&self) -> Vec<String> {
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
}

impl VoiceSource for StoreVoices {
    /// The installed voices; a voice installed while the server runs is listed within
    /// [`LIST_FOR`].
    fn ids(&self) -> Vec<String> {
        let mut listed = self.listed.lock().unwrap_or_else(PoisonError::into_inner);
        match &*listed {
            Some((at, ids)) if at.elapsed() < LIST_FOR => ids.clone(),
            _ => {
                let ids = self.find();
                *listed = Some((Instant::now(), ids.clone()));
                ids
            }
        }
    }

    fn load(&self, id: &str) -> Result<Box<dyn Tts>, TtsError> {
        sotto_tts::load_voice(&self.store, id, self.threads)
    }
}
