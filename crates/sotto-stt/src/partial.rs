//! Partial transcripts while the user speaks: the one implementation, used by the voice
//! turn's recogniser thread (`sotto_core::stt_worker`) and the tests.
//!
//! An [`Utterance`] collects the audio of one utterance. Every `interval_ms` of new audio
//! a partial is due: [`Utterance::partial`] re-transcribes everything so far and returns
//! the text when it changed; [`Utterance::finish`] returns the final transcript. The
//! schedule counts audio, not wall time, so the same input always gives the same
//! partials. Calls block for one transcription: run them on their own thread, and add
//! audio without transcribing ([`Utterance::push_audio`]) while the previous one runs, so
//! capture is never held up.

use crate::{CancelFlag, SpeechToText, SttError, Transcript, SAMPLE_RATE};

/// One utterance being transcribed as it grows.
pub struct Utterance<'a> {
    stt: &'a dyn SpeechToText,
    audio: Vec<f32>,
    interval: usize,
    next_partial_at: usize,
    last_partial: Option<String>,
}

impl<'a> Utterance<'a> {
    /// A new utterance; a partial is due every `interval_ms` of audio (0: never).
    pub fn new(stt: &'a dyn SpeechToText, interval_ms: u32) -> Utterance<'a> {
        let interval = interval_ms as usize * SAMPLE_RATE as usize / 1000;
        Utterance {
            stt,
            audio: Vec::new(),
            interval,
            next_partial_at: interval,
            last_partial: None,
        }
    }

    /// Forgets the audio and the last partial: the next utterance starts here.
    pub fn reset(&mut self) {
        self.audio.clear();
        self.next_partial_at = self.interval;
        self.last_partial = None;
    }

    /// Adds audio without transcribing.
    pub fn push_audio(&mut self, samples: &[f32]) {
        self.audio.extend_from_slice(samples);
    }

    /// Whether a partial is due (a full interval of audio since the last one).
    pub fn partial_due(&self) -> bool {
        self.interval > 0 && self.audio.len() >= self.next_partial_at
    }

    /// Transcribes everything so far; returns the text when it is new (not empty and not
    /// the last partial's). The next partial is due a full interval after this audio.
    pub fn partial(&mut self, cancel: &CancelFlag) -> Result<Option<String>, SttError> {
        self.next_partial_at = self.audio.len() + self.interval.max(1);
        let text = self.stt.transcribe(&self.audio, cancel)?.text;
        if text.is_empty() || self.last_partial.as_deref() == Some(text.as_str()) {
            return Ok(None);
        }
        self.last_partial = Some(text.clone());
        Ok(Some(text))
    }

    /// Adds audio; returns a partial transcript when one is due and its text changed.
    pub fn push(
        &mut self,
        samples: &[f32],
        cancel: &CancelFlag,
    ) -> Result<Option<String>, SttError> {
        self.push_audio(samples);
        if !self.partial_due() {
            return Ok(None);
        }
        self.partial(cancel)
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Says how many samples it was given, and remembers each call's length.
    #[derive(Default)]
    struct Counting {
        calls: Mutex<Vec<usize>>,
    }

    impl SpeechToText for Counting {
        fn transcribe(&self, samples: &[f32], _: &CancelFlag) -> Result<Transcript, SttError> {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(samples.len());
            }
            // Changes every 8000 samples (half a second).
            Ok(Transcript {
                text: format!("{} halves", samples.len() / 8_000),
                segments: Vec::new(),
                elapsed_ms: 0,
                audio_ms: samples.len() as u64 / 16,
            })
        }
    }

    fn calls(stt: &Counting) -> Vec<usize> {
        stt.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    #[test]
    fn a_partial_is_due_every_interval_of_audio_and_only_new_text_is_returned() {
        let stt = Counting::default();
        let mut utterance = Utterance::new(&stt, 600);
        let block = vec![0.0; 3_200]; // 200 ms
        let mut partials = Vec::new();
        for _ in 0..15 {
            if let Some(text) = utterance
                .push(&block, &CancelFlag::default())
                .expect("push")
            {
                partials.push(text);
            }
        }
        // Due at 600, 1200, 1800, 2400 and 3000 ms of audio.
        assert_eq!(calls(&stt), vec![9_600, 19_200, 28_800, 38_400, 48_000]);
        assert_eq!(
            partials,
            ["1 halves", "2 halves", "3 halves", "4 halves", "6 halves"]
        );
        assert_eq!(utterance.audio_ms(), 3_000);
        assert_eq!(
            utterance
                .finish(&CancelFlag::default())
                .expect("final")
                .text,
            "6 halves"
        );
    }

    #[test]
    fn the_same_text_twice_is_not_a_new_partial_and_zero_means_never() {
        let stt = Counting::default();
        let mut utterance = Utterance::new(&stt, 100);
        utterance.push_audio(&[0.0; 1_600]);
        assert!(utterance.partial_due());
        assert_eq!(
            utterance.partial(&CancelFlag::default()).expect("p"),
            Some("0 halves".into())
        );
        utterance.push_audio(&[0.0; 1_600]);
        assert_eq!(utterance.partial(&CancelFlag::default()).expect("p"), None);

        utterance.reset();
        assert_eq!(utterance.audio_ms(), 0);
        utterance.push_audio(&[0.0; 1_600]);
        assert_eq!(
            utterance.partial(&CancelFlag::default()).expect("p"),
            Some("0 halves".into()),
            "after a reset the same text is new again"
        );

        let mut never = Utterance::new(&stt, 0);
        never.push_audio(&[0.0; 160_000]);
        assert!(!never.partial_due());
    }
}
