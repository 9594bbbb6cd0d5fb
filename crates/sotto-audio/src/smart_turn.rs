//! Has the user finished their turn, or only paused? Smart Turn v3.2 (Pipecat's
//! end-of-turn model, BSD-2-Clause) through ONNX Runtime: it hears the last 8 s of the
//! utterance (intonation, a sentence left hanging) and says how likely it is complete.
//!
//! The hands-free endpointer asks a [`TurnDetector`] after a short silence: a complete
//! turn ends at once, an incomplete one is given a longer pause, so "Can you tell me ...
//! what the capital of Spain is?" is one question, not two.

use sotto_models::ModelStore;
use sotto_onnx::ort::session::Session;
use sotto_onnx::ort::value::Tensor;
use sotto_onnx::OnnxError;

use crate::mel::{LogMel, N_MELS};
use crate::{AudioError, SPEECH_RATE};

/// The store id of the Smart Turn model.
pub const SMART_TURN_MODEL: &str = "smart-turn-v3.2";

/// The model hears this much audio: the end of the utterance, padded at the start.
pub const WINDOW_SAMPLES: usize = 8 * SPEECH_RATE as usize;

/// Frames of features the model takes (10 ms each).
const FRAMES: usize = WINDOW_SAMPLES / crate::mel::HOP;

/// Decides whether an utterance so far is a complete turn.
pub trait TurnDetector: Send {
    /// How likely `utterance` (16 kHz mono, from its start to now) is a finished turn,
    /// 0 to 1.
    fn completion(&mut self, utterance: &[f32]) -> Result<f32, AudioError>;
}

/// Smart Turn v3.2.
pub struct SmartTurn {
    session: Session,
    mel: LogMel,
}

impl SmartTurn {
    /// Loads the model from the store (and ONNX Runtime with it).
    pub fn load(store: &ModelStore) -> Result<SmartTurn, OnnxError> {
        let env = sotto_onnx::environment(store)?;
        let model = store.require(SMART_TURN_MODEL)?;
        // One thread: it runs on the listening thread between blocks, while whisper
        // has the other core for the partial transcripts.
        let session =
            sotto_onnx::open_session(&env, model.main_file(), 1, sotto_onnx::Shapes::Fixed)?;
        Ok(SmartTurn {
            session,
            mel: LogMel::new(),
        })
    }

    /// The model's input for `utterance`: its last 8 s, zeros before a shorter one.
    pub fn window(utterance: &[f32]) -> Vec<f32> {
        let take = utterance.len().min(WINDOW_SAMPLES);
        let mut window = vec![0.0; WINDOW_SAMPLES - take];
        window.extend_from_slice(&utterance[utterance.len() - take..]);
        window
    }

    fn run(&mut self, utterance: &[f32]) -> Result<f32, OnnxError> {
        let features = self.mel.features(&Self::window(utterance));
        if features.len() != N_MELS * FRAMES {
            return Err(OnnxError::Run(format!(
                "Smart Turn needs {} features, the audio gave {}",
                N_MELS * FRAMES,
                features.len()
            )));
        }
        let input = Tensor::from_array(([1usize, N_MELS, FRAMES], features))?;
        let outputs = self
            .session
            .run(sotto_onnx::ort::inputs!["input_features" => input])?;
        let (_, probability) = outputs[0].try_extract_tensor::<f32>()?;
        probability
            .first()
            .copied()
            .filter(|p| p.is_finite())
            .ok_or_else(|| OnnxError::Run("Smart Turn gave no probability".into()))
    }
}

impl TurnDetector for SmartTurn {
    fn completion(&mut self, utterance: &[f32]) -> Result<f32, AudioError> {
        self.run(utterance)
            .map_err(|e| AudioError::Detector(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_last_eight_seconds_padded_at_the_start() {
        let short: Vec<f32> = (0..16_000).map(|i| i as f32).collect();
        let w = SmartTurn::window(&short);
        assert_eq!(w.len(), WINDOW_SAMPLES);
        assert_eq!(w[WINDOW_SAMPLES - 16_001], 0.0);
        assert_eq!(w[WINDOW_SAMPLES - 16_000], 0.0);
        assert_eq!(w[WINDOW_SAMPLES - 1], 15_999.0);
        let long: Vec<f32> = (0..WINDOW_SAMPLES + 5).map(|i| i as f32).collect();
        let w = SmartTurn::window(&long);
        assert_eq!((w[0], w[WINDOW_SAMPLES - 1]), (5.0, long[long.len() - 1]));
    }
}
