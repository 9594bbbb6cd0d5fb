//! Partial transcripts while the user speaks.
//!
//! An [`Utterance`] collects the audio of one utterance. Every `interval_ms` of new audio
//! it re-transcribes everything so far and returns a partial transcript; `finish` returns
//! the final one. The schedule counts audio, not wall time, so the same input always gives
//! the same partials. Calls block for one transcription: run them on a blocking thread,
//! and skip partials (`push_audio_only`) when the previous one is still running, so
//! capture is never held up.

use crate::{CancelFlag, SttError, Transcript, WhisperStt, SAMPLE_RATE};

/// One utterance being transcribed as it grows.
pub struct Utterance<'a> {
    stt: &'a WhisperStt,
    audio: Vec<f32>,
    interval: usize,
    next_partial_at: usize,
    last_partial: Option<String>,
}

impl<'a> Utterance<'a> {
    /// A new utterance; a partial comes every `interval_ms` of audio (0: never).
    pub fn new(stt: &'a WhisperStt, interval_ms: u32) -> Utterance<'a> {
        let interval = interval_ms as usize * SAMPLE_RATE as usize / 1000;
        Utterance {
            stt,
            audio: Vec::new(),
            interval,
            next_partial_at: interval,
            last_partial: None,
        }
    }

    /// Adds audio without transcribing (when the caller is still busy with the last one).
    pub fn push_audio_only(&mut self, samples: &[f32]) {
        self.audio.extend_from_slice(samples);
    }

    /// Adds audio; returns a partial transcript when one is due and its text changed.
    pub fn push(
        &mut self,
        samples: &[f32],
        cancel: &CancelFlag,
    ) -> Result<Option<String>, SttError> {
        self.audio.extend_from_slice(samples);
        if self.interval == 0 || self.audio.len() < self.next_partial_at {
            return Ok(None);
        }
        // The next partial is due a full interval after the audio we transcribe now.
        self.next_partial_at = self.audio.len() + self.interval;
        let text = self.stt.transcribe(&self.audio, cancel)?.text;
        if text.is_empty() || self.last_partial.as_deref() == Some(text.as_str()) {
            return Ok(None);
        }
        self.last_partial = Some(text.clone());
        Ok(Some(text))
    }

    /// Milliseconds of audio so far.
    pub fn audio_ms(&self) -> u64 {
        self.audio.len() as u64 * 1000 / u64::from(SAMPLE_RATE)
    }

    /// The final transcript of everything pushed.
    pub fn finish(self, cancel: &CancelFlag) -> Result<Transcript, SttError> {
        self.stt.transcribe(&self.audio, cancel)
    }
}
