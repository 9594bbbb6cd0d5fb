//! Where answers are played, as the voice turn sees it: a queue with a clock. The real
//! one is [`sotto_audio::Player`] (speakers or a WAV file); tests use a player whose clock
//! they advance (`crate::fakes::FakePlayer`).

use std::sync::Arc;

use sotto_audio::{PlaybackError, Player};
use tokio::sync::Notify;

/// An audio output with a queue and a count of what was played.
pub trait AudioOut: Send + Sync {
    /// The output's sample rate (what [`AudioOut::played_samples`] counts in).
    fn output_rate(&self) -> u32;

    /// Queues mono `samples` at `rate`.
    fn play(&self, samples: &[f32], rate: u32) -> Result<(), PlaybackError>;

    /// Nothing more follows for now: plays out what conversion still holds.
    fn end_of_stream(&self) -> Result<(), PlaybackError>;

    /// Silences the output now and drops everything queued.
    fn stop(&self);

    /// Holds the output (silence) keeping what is queued, until [`AudioOut::resume`] or
    /// [`AudioOut::stop`].
    fn pause(&self);

    /// Plays on from where [`AudioOut::pause`] held it.
    fn resume(&self);

    /// Samples played since the output was made.
    fn played_samples(&self) -> u64;

    /// Samples waiting to be played.
    fn queued_samples(&self) -> usize;

    /// Has `drained` notified (`notify_one`) each time the queue runs out of audio, so the
    /// end of an answer is signalled, not polled. Called once, by the assistant.
    fn signal_drained(&self, drained: Arc<Notify>);
}

impl AudioOut for Player {
    fn output_rate(&self) -> u32 {
        Player::output_rate(self)
    }

    fn play(&self, samples: &[f32], rate: u32) -> Result<(), PlaybackError> {
        Player::play(self, samples, rate)
    }

    fn end_of_stream(&self) -> Result<(), PlaybackError> {
        Player::end_of_stream(self)
    }

    fn stop(&self) {
        Player::stop(self);
    }

    fn pause(&self) {
        Player::pause(self);
    }

    fn resume(&self) {
        Player::resume(self);
    }

    fn played_samples(&self) -> u64 {
        Player::played_samples(self)
    }

    fn queued_samples(&self) -> usize {
        Player::queued_samples(self)
    }

    fn signal_drained(&self, drained: Arc<Notify>) {
        if !self.on_drained(move || drained.notify_one()) {
            tracing::warn!(
                "the player already signals another listener: end of playback goes unnoticed"
            );
        }
    }
}
