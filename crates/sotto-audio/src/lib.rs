//! Sotto's audio toolkit, free of any UI: microphones and WAV files as sources, turning
//! any input into the 16 kHz mono stream speech recognition wants, a level meter, finding
//! where speech starts and ends (voice activity detection plus an endpointer with
//! pre-roll and hangover, and an end-of-turn model that tells a pause from the end), and
//! listening sessions in push-to-talk or hands-free mode; echo cancellation of what the
//! assistant plays, and a simulated room to test it in.

pub mod analysis;
pub mod buffer;
pub mod capture;
pub mod echo;
pub mod endpoint;
pub mod host;
pub mod level;
pub mod listen;
pub mod mel;
pub mod playback;
pub mod quiet;
pub mod resample;
pub mod room;
pub mod silero;
pub mod smart_turn;
pub mod source;
pub mod vad;
pub mod virtual_mic;
pub mod wav;

pub use buffer::AudioBuffer;
pub use capture::{Capture, CaptureError, CaptureEvent};
pub use echo::{EchoCanceller, EchoReference, EchoStats};
pub use endpoint::{Endpointer, EndpointerConfig, SpeechEvent};
pub use level::{Level, LevelMeter};
pub use listen::{ListenEvent, ListenMode, Listener, ListenerConfig};
pub use playback::{PlaybackError, Player};
pub use resample::{to_mono_16k, StreamResampler};
pub use silero::SileroVad;
pub use smart_turn::{SmartTurn, TurnDetector};
pub use source::{deferred_input, AudioSource, DeferredInput, Pace, WavSource, WavSourceConfig};
pub use vad::{Vad, VadKind, WebRtcVad};
pub use virtual_mic::{spawn_virtual_microphone, SpokenClips};

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
    /// The echo canceller refused the audio.
    #[error("echo cancellation failed: {0}")]
    Echo(String),
    /// The voice activity detector failed.
    #[error("voice activity detection failed: {0}")]
    Detector(String),
}
