//! Sotto's voices.
//!
//! - [`espeak`]: text to IPA phonemes (espeak-ng), which both voices take.
//! - [`piper::PiperVoice`]: Piper VITS voices (fast; the default).
//! - [`kokoro::KokoroVoice`]: Kokoro-82M's 54 speakers (more natural, slower).
//! - [`split::SentenceSplitter`]: turns streamed LLM text into speakable pieces, the first
//!   one early; [`speakable::speakable`] takes out what is never read aloud.
//! - [`cache::TtsCache`]: (voice, speed, text) -> audio, so repeated phrases cost nothing.
//!
//! Every voice implements [`Tts`]: text in, f32 PCM chunks out (one per clause, so the
//! first audio is ready before the whole sentence is), cancellable between clauses.

pub mod cache;
pub mod espeak;
pub mod kokoro;
mod onnx_run;
pub mod piper;
pub mod speakable;
pub mod split;

pub use tokio_util::sync::CancellationToken;

/// A piece of synthesized speech.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioChunk {
    /// Mono samples in -1..1.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

impl AudioChunk {
    /// How long the chunk plays, in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.samples.len() as f64 * 1000.0 / f64::from(self.sample_rate.max(1))
    }
}

/// Why speech could not be synthesized.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TtsError {
    /// The voice's files are missing or damaged (the message says how to repair them).
    #[error("{0}")]
    Voice(String),
    /// espeak-ng failed.
    #[error("phonemes: {0}")]
    Phonemes(String),
    /// The voice model failed to run.
    #[error("the voice failed: {0}")]
    Run(String),
    /// The cache could not be used.
    #[error("the speech cache failed: {0}")]
    Cache(String),
}

impl From<sotto_onnx::OnnxError> for TtsError {
    fn from(e: sotto_onnx::OnnxError) -> Self {
        match e {
            sotto_onnx::OnnxError::Run(reason) => TtsError::Run(reason),
            other => TtsError::Voice(other.to_string()),
        }
    }
}

impl From<sotto_models::ModelError> for TtsError {
    fn from(e: sotto_models::ModelError) -> Self {
        TtsError::Voice(e.to_string())
    }
}

/// A voice.
pub trait Tts: Send {
    /// The voice's id (its model id, plus the speaker for multi-speaker voices).
    fn voice_id(&self) -> &str;

    /// The rate of the audio it makes.
    fn sample_rate(&self) -> u32;

    /// Speaks `text` at `speed` (1.0 normal, 2.0 twice as fast), handing each clause's
    /// audio to `on_chunk` as soon as it is ready. Stops between clauses once `cancel` is
    /// cancelled (what was already handed over stays handed over).
    fn synthesize(
        &mut self,
        text: &str,
        speed: f32,
        cancel: &CancellationToken,
        on_chunk: &mut dyn FnMut(AudioChunk),
    ) -> Result<(), TtsError>;

    /// Speaks `text` and returns all of its audio.
    fn synthesize_all(&mut self, text: &str, speed: f32) -> Result<AudioChunk, TtsError> {
        let mut samples = Vec::new();
        let rate = self.sample_rate();
        self.synthesize(text, speed, &CancellationToken::new(), &mut |chunk| {
            samples.extend_from_slice(&chunk.samples)
        })?;
        Ok(AudioChunk {
            samples,
            sample_rate: rate,
        })
    }
}

/// Loads a voice by id: a Piper model id (`piper-en_US-<name>-medium`), or Kokoro with a
/// speaker (`kokoro-82m-int8/af_heart`; the model id alone means its default speaker).
pub fn load_voice(
    store: &sotto_models::ModelStore,
    id: &str,
    threads: usize,
) -> Result<Box<dyn Tts>, TtsError> {
    match id.split_once('/') {
        Some((kokoro::KOKORO_MODEL, speaker)) => Ok(Box::new(kokoro::KokoroVoice::load(
            store, speaker, threads,
        )?)),
        None if id == kokoro::KOKORO_MODEL => Ok(Box::new(kokoro::KokoroVoice::load(
            store,
            kokoro::DEFAULT_SPEAKER,
            threads,
        )?)),
        _ => Ok(Box::new(piper::PiperVoice::load(store, id, threads)?)),
    }
}
