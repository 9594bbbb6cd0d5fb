//! Playing speech: a queue fed chunk by chunk, converted to the output's rate without
//! seams, that stops within one small buffer and counts what was played, so the
//! conversation can keep only what the user heard.
//!
//! [`Player::speaker`] plays on a sound card through rodio; [`Player::wav`] "plays" into
//! a WAV file at real-time pace (or as fast as possible) for headless runs and tests.
//! Both behave the same from the outside.

mod queue;
mod speaker;
mod wav_sink;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use queue::PlayQueue;
pub use queue::RAMP;

use crate::echo::EchoReference;
use crate::source::Pace;

/// Why audio could not be played.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaybackError {
    /// There is no output device (or none by that name).
    #[error("no speaker or headphones found{}", name.as_ref().map(|n| format!(" named \"{n}\"")).unwrap_or_default())]
    NoDevice {
        /// The device asked for, if one was.
        name: Option<String>,
    },
    /// The device exists but could not be opened.
    #[error("the output device \"{name}\" could not be opened: {reason}")]
    Open {
        /// The device.
        name: String,
        /// Why.
        reason: String,
    },
    /// Audio could not be converted to the output's rate.
    #[error("audio conversion failed: {0}")]
    Convert(String),
    /// The WAV output could not be written.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Something that drains the queue: a sound card's callback or the WAV writer thread.
enum Backend {
    Speaker(speaker::Speaker),
    /// `None` once finished.
    Wav(std::sync::Mutex<Option<wav_sink::WavSink>>),
}

/// An audio output with a queue.
pub struct Player {
    queue: Arc<PlayQueue>,
    backend: Backend,
}

impl Player {
    /// Plays on the output device `name` (the system default when `None`).
    pub fn speaker(name: Option<&str>) -> Result<Player, PlaybackError> {
        let (speaker, queue) = speaker::Speaker::open(name)?;
        Ok(Player {
            queue,
            backend: Backend::Speaker(speaker),
        })
    }

    /// Plays into a WAV file at `rate`, written when the player is finished or dropped.
    /// At [`Pace::RealTime`] samples leave the queue as fast as a sound card takes them,
    /// so stopping and "what was heard" behave as they would on speakers.
    pub fn wav(path: &Path, rate: u32, pace: Pace) -> Result<Player, PlaybackError> {
        let queue = Arc::new(PlayQueue::new(rate));
        let sink = wav_sink::WavSink::start(path, Arc::clone(&queue), pace)?;
        Ok(Player {
            queue,
            backend: Backend::Wav(std::sync::Mutex::new(Some(sink))),
        })
    }

    /// The output's sample rate.
    pub fn output_rate(&self) -> u32 {
        self.queue.rate()
    }

    /// Queues mono `samples` at `rate`, converted to the output rate. Consecutive chunks
    /// at one rate are converted as one stream, so there is no seam between them.
    pub fn play(&self, samples: &[f32], rate: u32) -> Result<(), PlaybackError> {
        self.queue.push(samples, rate)
    }

    /// Nothing more follows for now: pushes out what the rate converter still holds.
    pub fn end_of_stream(&self) -> Result<(), PlaybackError> {
        self.queue.flush()
    }

    /// Silences the output now (a few milliseconds' fade, no click) and drops everything
    /// queued. Playing again afterwards works.
    pub fn stop(&self) {
        self.queue.stop();
    }

    /// Holds playback (a few milliseconds' fade, then silence) without dropping what is
    /// queued: the user may be taking the turn. [`Player::resume`] plays on from there,
    /// [`Player::stop`] drops it.
    pub fn pause(&self) {
        self.queue.pause();
    }

    /// Plays on after [`Player::pause`] (fading in); nothing when not paused.
    pub fn resume(&self) {
        self.queue.resume();
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.queue.is_paused()
    }

    /// Samples (at the output rate) played since the player was made.
    pub fn played_samples(&self) -> u64 {
        self.queue.played()
    }

    /// Milliseconds played since the player was made.
    pub fn played_ms(&self) -> f64 {
        self.played_samples() as f64 * 1000.0 / f64::from(self.output_rate())
    }

    /// Samples waiting to be played.
    pub fn queued_samples(&self) -> usize {
        self.queue.queued()
    }

    /// Calls `signal` (on the playing thread: keep it short, never block) each time the
    /// queue runs out of audio, so the end of an answer is known without polling. One
    /// listener per player; false if one was set already.
    pub fn on_drained(&self, signal: impl Fn() + Send + Sync + 'static) -> bool {
        self.queue.set_on_drained(Box::new(signal))
    }

    /// A copy of everything this player hands to its device from now on, silences
    /// included, as it hands it over: the far end for an [`EchoCanceller`] (or a simulated
    /// room). Each call makes a new, independent copy.
    ///
    /// [`EchoCanceller`]: crate::echo::EchoCanceller
    pub fn echo_reference(&self) -> EchoReference {
        let (tx, rx) = std::sync::mpsc::sync_channel(crate::echo::REFERENCE_BLOCKS);
        self.queue.add_tap(tx);
        EchoReference::from_channel(rx, self.output_rate())
    }

    /// Waits until everything queued has been played; false on timeout.
    pub fn wait_until_idle(&self, timeout: Duration) -> bool {
        self.queue.wait_idle(timeout)
    }

    /// The output device's name, or the WAV file's path.
    pub fn name(&self) -> String {
        match &self.backend {
            Backend::Speaker(s) => s.name().to_string(),
            Backend::Wav(w) => w
                .lock()
                .ok()
                .and_then(|w| w.as_ref().map(|w| w.path().display().to_string()))
                .unwrap_or_default(),
        }
    }

    /// Ends playback: for a WAV output, plays out what is queued and writes the file
    /// (once; later calls do nothing).
    pub fn finish(&self) -> Result<(), PlaybackError> {
        match &self.backend {
            Backend::Speaker(_) => Ok(()),
            Backend::Wav(w) => {
                let sink = w.lock().ok().and_then(|mut w| w.take());
                sink.map_or(Ok(()), wav_sink::WavSink::finish)
            }
        }
    }
}

/// Output devices, default first.
pub fn output_devices() -> Vec<String> {
    speaker::device_names()
}
