//! Voice activity detection: one trait, so the endpointer works with any detector
//! (webrtc-vad, or Silero through ONNX Runtime), chosen by [`VadKind`].

use crate::{AudioError, SPEECH_RATE};

/// A voice activity detector over fixed-size frames of 16 kHz mono audio.
pub trait Vad {
    /// Samples per frame this detector takes.
    fn frame_len(&self) -> usize;

    /// How likely the frame holds speech, 0 to 1.
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, AudioError>;

    /// Forgets state carried between frames (a new stream starts).
    fn reset(&mut self);

    /// How long this detector keeps saying "speech" after speech stops (its built-in
    /// hangover), so the endpointer can report where speech really ended.
    fn decision_lag_ms(&self) -> u32 {
        0
    }
}

/// How readily webrtc-vad calls a frame speech; higher modes reject more noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggressiveness {
    /// Misses the least speech, lets the most noise through.
    Quality,
    /// Between quality and aggressive.
    LowBitrate,
    /// A good default for a desk microphone.
    #[default]
    Aggressive,
    /// Rejects the most noise; may clip quiet word endings.
    VeryAggressive,
}

/// Which detector to listen with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VadKind {
    /// webrtc-vad: no model, instant start, fooled by steady noise.
    WebRtc {
        /// How readily it calls a frame speech.
        aggressiveness: Aggressiveness,
    },
    /// Silero VAD v6 (ONNX): robust to noise; needs the `silero-vad-v6` model.
    #[default]
    Silero,
}

impl VadKind {
    /// Builds the detector (Silero loads its model from `store`).
    pub fn build(
        self,
        store: &sotto_models::ModelStore,
    ) -> Result<Box<dyn Vad + Send>, sotto_onnx::OnnxError> {
        Ok(match self {
            VadKind::WebRtc { aggressiveness } => Box::new(WebRtcVad::new(aggressiveness)),
            VadKind::Silero => Box::new(crate::silero::SileroVad::load(store)?),
        })
    }
}

/// libfvad's detector, made movable between threads.
struct Fvad(webrtc_vad::Vad);

// SAFETY: `webrtc_vad::Vad` is !Send only because it holds a raw pointer to libfvad's
// state, a self-contained heap allocation with no thread-local or global state. Moving
// ownership to another thread is sound; it is never shared (every call takes `&mut`).
unsafe impl Send for Fvad {}

/// Google's WebRTC voice activity detector: fast, tiny, good on clean speech.
pub struct WebRtcVad {
    inner: Fvad,
    mode: Aggressiveness,
    scratch: Vec<i16>,
}

/// 30 ms at 16 kHz, the largest frame webrtc-vad takes (fewer calls, steadier decisions).
pub const WEBRTC_FRAME: usize = SPEECH_RATE as usize * 30 / 1000;

impl WebRtcVad {
    /// A detector for 16 kHz audio.
    pub fn new(mode: Aggressiveness) -> WebRtcVad {
        WebRtcVad {
            inner: Fvad(Self::make(mode)),
            mode,
            scratch: Vec::with_capacity(WEBRTC_FRAME),
        }
    }

    fn make(mode: Aggressiveness) -> webrtc_vad::Vad {
        let mode = match mode {
            Aggressiveness::Quality => webrtc_vad::VadMode::Quality,
            Aggressiveness::LowBitrate => webrtc_vad::VadMode::LowBitrate,
            Aggressiveness::Aggressive => webrtc_vad::VadMode::Aggressive,
            Aggressiveness::VeryAggressive => webrtc_vad::VadMode::VeryAggressive,
        };
        webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate16kHz, mode)
    }
}

impl Vad for WebRtcVad {
    fn frame_len(&self) -> usize {
        WEBRTC_FRAME
    }

    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, AudioError> {
        if frame.len() != WEBRTC_FRAME {
            return Err(AudioError::Unsupported(format!(
                "webrtc-vad takes frames of {WEBRTC_FRAME} samples, not {}",
                frame.len()
            )));
        }
        self.scratch.clear();
        self.scratch
            .extend(frame.iter().map(|s| (s.clamp(-1.0, 1.0) * 32767.0) as i16));
        let voiced = self
            .inner
            .0
            .is_voice_segment(&self.scratch)
            .map_err(|()| AudioError::Unsupported("webrtc-vad rejected the frame".into()))?;
        Ok(if voiced { 1.0 } else { 0.0 })
    }

    fn reset(&mut self) {
        self.inner = Fvad(Self::make(self.mode));
    }

    /// libfvad holds "speech" for a few frames after it stops (its overhang: at least 2
    /// frames of 30 ms in the aggressive modes, 3 in the others).
    fn decision_lag_ms(&self) -> u32 {
        match self.mode {
            Aggressiveness::Quality | Aggressiveness::LowBitrate => 90,
            Aggressiveness::Aggressive | Aggressiveness::VeryAggressive => 60,
        }
    }
}

/// A detector for unit tests: a frame is speech when its first sample is above 0.5.
#[cfg(test)]
pub(crate) struct Marker;

#[cfg(test)]
impl Vad for Marker {
    fn frame_len(&self) -> usize {
        160
    }
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, AudioError> {
        Ok(if frame[0] > 0.5 { 1.0 } else { 0.0 })
    }
    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_not_speech_and_a_wrong_frame_is_an_error() {
        let mut vad = WebRtcVad::new(Aggressiveness::Aggressive);
        assert_eq!(vad.speech_probability(&[0.0; WEBRTC_FRAME]).unwrap(), 0.0);
        assert!(vad.speech_probability(&[0.0; 100]).is_err());
    }
}
