//! Echo cancellation: what the assistant plays, taken back out of what the microphone
//! hears, so that on open laptop speakers the assistant does not hear itself and the
//! user can talk over it.
//!
//! The player hands a copy of every block it sends to the device (its silences too) to
//! an [`EchoReference`]: that is the far end. The [`EchoCanceller`] converts it to 16 kHz
//! and gives it, with the microphone's 16 kHz audio (the near end), to WebRTC's AEC3 (the
//! pure-Rust `sonora` port) in 10 ms frames. AEC3 finds the delay between what was sent
//! and when its echo comes back by itself: it searches up to about 600 ms (the output's
//! buffer, the way through the room and the input's buffer together); its adaptive filter
//! models the first ~50 ms of the room's echo after that delay and its suppressor takes
//! what remains of a longer tail. Like the rest of this crate it is fed samples and reads
//! no clock: the far end is taken from its channel as it comes.

use std::collections::VecDeque;
use std::sync::mpsc::Receiver;

use sonora::config::EchoCanceller as EchoConfig;
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::buffer::rms_dbfs;
use crate::resample::StreamResampler;
use crate::{AudioError, SPEECH_RATE};

/// Samples in one 10 ms frame at 16 kHz: what AEC3 takes per call.
pub const FRAME: usize = (SPEECH_RATE / 100) as usize;

/// The most far end held ahead of the near end, ms (see [`EchoCanceller::process`]).
pub const MAX_BACKLOG_MS: u32 = 500;

/// Blocks of played audio held for the canceller before the player's copies are dropped
/// (a few seconds: the listener is never that far behind unless it stopped).
pub(crate) const REFERENCE_BLOCKS: usize = 512;

/// The far end: a copy of every block the player hands to its device, at `rate`.
pub struct EchoReference {
    /// Blocks as played, silence included.
    pub(crate) blocks: Receiver<Vec<f32>>,
    /// Their sample rate (the output's).
    pub(crate) rate: u32,
}

impl EchoReference {
    /// A reference fed by hand (tests, the simulated room): `blocks` at `rate`.
    pub fn from_channel(blocks: Receiver<Vec<f32>>, rate: u32) -> EchoReference {
        EchoReference { blocks, rate }
    }

    /// The sample rate of the blocks.
    pub fn rate(&self) -> u32 {
        self.rate
    }
}

/// What the canceller measured, as AEC3 reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EchoStats {
    /// Echo return loss enhancement of its linear filter, dB (how much echo it removed).
    pub erle_db: Option<f64>,
    /// Echo return loss, dB (how much quieter the echo is than what was played).
    pub erl_db: Option<f64>,
    /// The delay it found between the far end and its echo, ms.
    pub delay_ms: Option<i32>,
}

/// Removes the far end's echo from 16 kHz microphone audio.
pub struct EchoCanceller {
    apm: AudioProcessing,
    reference: EchoReference,
    /// The far end to 16 kHz (none when it is at 16 kHz already).
    to_speech_rate: Option<StreamResampler>,
    /// Far end at 16 kHz not yet given to AEC3 (less than a frame).
    far: VecDeque<f32>,
    /// Near end not yet a whole frame.
    near: Vec<f32>,
    /// The far-end frame being handed over.
    scratch: [f32; FRAME],
    /// Frames of sound played so far (not silence), counted up to [`LEARN_FRAMES`].
    sound_frames: usize,
    /// Far-end frames since the last one with sound (its echo may still be heard).
    since_sound: usize,
}

/// How long after the last sound played its echo may still be in the microphone
/// (10 ms frames: 300 ms, the rooms' reverberation and the device's buffers).
pub const ECHO_TAIL_FRAMES: usize = 30;

/// How much of its own voice (10 ms frames with sound, 3 s) the canceller hears before it
/// has learned the room: until then AEC3's filter has not converged and some of the voice
/// gets through (about the first two seconds on the simulated rooms).
pub const LEARN_FRAMES: usize = 300;

impl EchoCanceller {
    /// A canceller for the player that `reference` copies.
    pub fn new(reference: EchoReference) -> Result<EchoCanceller, AudioError> {
        let stream = StreamConfig::new(SPEECH_RATE, 1);
        let apm = AudioProcessing::builder()
            .config(Config {
                echo_canceller: Some(EchoConfig::default()),
                ..Config::default()
            })
            .capture_config(stream)
            .render_config(stream)
            .build();
        let to_speech_rate = if reference.rate == SPEECH_RATE {
            None
        } else {
            Some(StreamResampler::new(reference.rate, SPEECH_RATE)?)
        };
        Ok(EchoCanceller {
            apm,
            reference,
            to_speech_rate,
            far: VecDeque::new(),
            near: Vec::new(),
            scratch: [0.0; FRAME],
            sound_frames: 0,
            since_sound: usize::MAX,
        })
    }

    /// Takes microphone audio (16 kHz mono, any length) and returns it with the echo of
    /// what was played taken out. Whole 10 ms frames come out; the rest waits for the next
    /// call (so the output is at most 10 ms behind).
    pub fn process(&mut self, near: &[f32]) -> Result<Vec<f32>, AudioError> {
        self.near.extend_from_slice(near);
        let frames = self.near.len() / FRAME;
        let mut out = vec![0.0; frames * FRAME];
        for (i, frame_out) in out.chunks_exact_mut(FRAME).enumerate() {
            // Everything played until now goes in first: the echo in this frame comes
            // from it.
            self.take_far()?;
            while self.far.len() >= FRAME {
                for (slot, sample) in self.scratch.iter_mut().zip(self.far.drain(..FRAME)) {
                    *slot = sample;
                }
                if rms_dbfs(&self.scratch) > -50.0 {
                    self.since_sound = 0;
                    self.sound_frames = (self.sound_frames + 1).min(LEARN_FRAMES);
                } else {
                    self.since_sound = self.since_sound.saturating_add(1);
                }
                let mut sink = [0.0f32; FRAME];
                self.apm
                    .process_render_f32(&[&self.scratch[..]], &mut [&mut sink[..]])
                    .map_err(|e| AudioError::Echo(e.to_string()))?;
            }
            let frame = &self.near[i * FRAME..(i + 1) * FRAME];
            self.apm
                .process_capture_f32(&[frame], &mut [frame_out])
                .map_err(|e| AudioError::Echo(e.to_string()))?;
        }
        self.near.drain(..frames * FRAME);
        Ok(out)
    }

    /// True once it has heard enough of what the player plays ([`LEARN_FRAMES`]) to take
    /// it out: before that, what the microphone hears while the assistant speaks may be
    /// its own voice.
    pub fn has_learned(&self) -> bool {
        self.sound_frames >= LEARN_FRAMES
    }

    /// True while what was played may still be echoing in the microphone (sound in the
    /// last [`ECHO_TAIL_FRAMES`] of far end): AEC3 then also turns down the near end
    /// while it removes the echo.
    pub fn playing(&self) -> bool {
        self.since_sound <= ECHO_TAIL_FRAMES
    }

    /// What AEC3 measured so far.
    pub fn stats(&self) -> EchoStats {
        let stats = self.apm.statistics();
        EchoStats {
            erle_db: stats.echo_return_loss_enhancement,
            erl_db: stats.echo_return_loss,
            delay_ms: stats.delay_ms,
        }
    }

    /// Moves every block the player sent since the last call into `far`, at 16 kHz.
    /// (Nothing when none came, or the player is gone.) Of a backlog (the microphone
    /// gave nothing for a while: lost, or not started yet) only the last
    /// [`MAX_BACKLOG_MS`] is kept: AEC3 takes at most a second of far end ahead of the
    /// near end, and more would make it start over.
    fn take_far(&mut self) -> Result<(), AudioError> {
        while let Ok(block) = self.reference.blocks.try_recv() {
            match self.to_speech_rate.as_mut() {
                Some(resampler) => self.far.extend(resampler.push(&block)?),
                None => self.far.extend(block),
            }
        }
        let keep = (MAX_BACKLOG_MS * SPEECH_RATE / 1000) as usize;
        if self.far.len() > keep {
            let stale = self.far.len() - keep;
            self.far.drain(..stale);
        }
        Ok(())
    }
}
