//! Sotto's audio toolkit, free of any UI: reading and writing WAV files, turning any
//! input into the 16 kHz mono stream speech recognition wants, and finding where speech
//! starts and ends (voice activity detection plus an endpointer with pre-roll and
//! hangover).

pub mod buffer;
pub mod capture;
pub mod endpoint;
pub mod resample;
pub mod vad;
pub mod wav;

pub use buffer::AudioBuffer;
pub use capture::{Capture, CaptureError, CaptureEvent};
pub use endpoint::{Endpointer, EndpointerConfig, SpeechEvent};
pub use resample::to_mono_16k;
pub use vad::{Vad, WebRtcVad};

/// The sample rate speech recognition and voice activity detection work at.
pub const SPEECH_RATE: u32 = 16_000;

/// Why audio could not be read, converted or analysed.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// A WAV file could not be opened or decoded.
    #[error("cannot read the WAV file {path}: {reason}")]
    ReadWav {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A WAV file could not be written.
    #[error("cannot write the WAV file {path}: {reason}")]
    WriteWav {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The audio's format cannot be used.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// Resampling failed.
    #[error("resampling failed: {0}")]
    Resample(String),
}
