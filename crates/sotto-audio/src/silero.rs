//! Silero VAD v6 through ONNX Runtime: a neural detector that separates speech from noise,
//! music and clicks far better than webrtc-vad, for about 0.1 ms of CPU per 32 ms frame.

use sotto_models::ModelStore;
use sotto_onnx::ort::session::Session;
use sotto_onnx::ort::value::Tensor;
use sotto_onnx::OnnxError;

use crate::vad::Vad;
use crate::{AudioError, SPEECH_RATE};

/// The store id of the Silero model.
pub const SILERO_MODEL: &str = "silero-vad-v6";

/// Samples per frame at 16 kHz (32 ms), the size the model was trained on.
pub const SILERO_FRAME: usize = 512;

/// The model also sees the last 64 samples of the previous frame.
const CONTEXT: usize = 64;

/// Size of the recurrent state the model carries between frames: [2, 1, 128].
const STATE: usize = 2 * 128;

/// The Silero voice activity detector.
pub struct SileroVad {
    session: Session,
    state: Vec<f32>,
    context: Vec<f32>,
}

impl SileroVad {
    /// Loads the model from the store (and ONNX Runtime with it).
    pub fn load(store: &ModelStore) -> Result<SileroVad, OnnxError> {
        let env = sotto_onnx::environment(store)?;
        let model = store.require(SILERO_MODEL)?;
        // One thread: a frame is tiny, and the other core belongs to whisper.
        let session =
            sotto_onnx::open_session(&env, model.main_file(), 1, sotto_onnx::Shapes::Fixed)?;
        Ok(SileroVad {
            session,
            state: vec![0.0; STATE],
            context: vec![0.0; CONTEXT],
        })
    }

    fn run(&mut self, frame: &[f32]) -> Result<f32, OnnxError> {
        let mut input = Vec::with_capacity(CONTEXT + SILERO_FRAME);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(frame);
        let input = Tensor::from_array(([1usize, CONTEXT + SILERO_FRAME], input))?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone()))?;
        let rate = Tensor::from_array(((), vec![i64::from(SPEECH_RATE)]))?;
        let outputs = self.session.run(sotto_onnx::ort::inputs![
            "input" => input,
            "state" => state,
            "sr" => rate,
        ])?;
        let (_, probability) = outputs["output"].try_extract_tensor::<f32>()?;
        let (_, state) = outputs["stateN"].try_extract_tensor::<f32>()?;
        if state.len() != STATE || probability.is_empty() {
            return Err(OnnxError::Run(
                "the Silero model gave outputs of an unexpected shape".into(),
            ));
        }
        let probability = probability[0];
        self.state.copy_from_slice(state);
        self.context
            .copy_from_slice(&frame[SILERO_FRAME - CONTEXT..]);
        Ok(probability)
    }
}

impl Vad for SileroVad {
    fn frame_len(&self) -> usize {
        SILERO_FRAME
    }

    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, AudioError> {
        if frame.len() != SILERO_FRAME {
            return Err(AudioError::Unsupported(format!(
                "Silero VAD takes frames of {SILERO_FRAME} samples, not {}",
                frame.len()
            )));
        }
        self.run(frame)
            .map_err(|e| AudioError::Detector(e.to_string()))
    }

    fn reset(&mut self) {
        self.state.fill(0.0);
        self.context.fill(0.0);
    }
}
