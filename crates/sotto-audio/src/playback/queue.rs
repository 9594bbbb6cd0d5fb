//! The queue between whoever makes audio and whatever plays it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::PlaybackError;
use crate::resample::StreamResampler;

/// Samples of the fade to silence after `stop` (about 1.3 ms at 48 kHz): short enough
/// to be "now", long enough not to click.
pub const RAMP: usize = 64;

struct State {
    samples: VecDeque<f32>,
    converter: Option<StreamResampler>,
    /// The last sample handed out, where a stop's fade starts from.
    last: f32,
    /// Samples of fade still to hand out.
    fade_left: usize,
    /// Held: silence is handed out and the queue kept, until resumed.
    paused: bool,
    /// Samples into the fade-in after a resume (`RAMP`: none under way).
    fade_in: usize,
}

impl State {
    /// Starts a fade to silence from where the output is now: a fade already under way
    /// goes on from its current level rather than jumping back up (no click).
    fn restart_fade(&mut self) {
        if self.fade_left > 0 {
            self.last *= self.fade_left as f32 / RAMP as f32;
        }
        self.fade_left = RAMP;
    }
}

/// Audio waiting to be played, at the output rate, and the count of what was played.
pub(crate) struct PlayQueue {
    rate: u32,
    state: Mutex<State>,
    played: AtomicU64,
    idle: Condvar,
    /// Called (from the draining thread) each time real audio ran out.
    on_drained: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Who gets a copy of every block handed out, silence included (the echo
    /// canceller's far end, a simulated room).
    taps: Mutex<Vec<SyncSender<Vec<f32>>>>,
}

impl PlayQueue {
    pub(crate) fn new(rate: u32) -> PlayQueue {
        PlayQueue {
            rate,
            state: Mutex::new(State {
                samples: VecDeque::new(),
                converter: None,
                last: 0.0,
                fade_left: 0,
                paused: false,
                fade_in: RAMP,
            }),
            played: AtomicU64::new(0),
            idle: Condvar::new(),
            on_drained: OnceLock::new(),
            taps: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not silence the assistant forever.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn rate(&self) -> u32 {
        self.rate
    }

    pub(crate) fn push(&self, samples: &[f32], rate: u32) -> Result<(), PlaybackError> {
        let mut state = self.lock();
        let converter = match state.converter.take() {
            Some(c) if c.input_rate() == rate => c,
            Some(mut old) => {
                // A new rate: finish the old stream first.
                let tail = old
                    .flush()
                    .map_err(|e| PlaybackError::Convert(e.to_string()))?;
                state.samples.extend(tail);
                StreamResampler::new(rate, self.rate)
                    .map_err(|e| PlaybackError::Convert(e.to_string()))?
            }
            None => StreamResampler::new(rate, self.rate)
                .map_err(|e| PlaybackError::Convert(e.to_string()))?,
        };
        let mut converter = converter;
        let out = converter
            .push(samples)
            .map_err(|e| PlaybackError::Convert(e.to_string()))?;
        state
            .samples
            .extend(out.into_iter().map(|s| s.clamp(-1.0, 1.0)));
        state.converter = Some(converter);
        Ok(())
    }

    pub(crate) fn flush(&self) -> Result<(), PlaybackError> {
        let mut state = self.lock();
        if let Some(mut converter) = state.converter.take() {
            let tail = converter
                .flush()
                .map_err(|e| PlaybackError::Convert(e.to_string()))?;
            state
                .samples
                .extend(tail.into_iter().map(|s| s.clamp(-1.0, 1.0)));
        }
        Ok(())
    }

    /// Holds playback: a short fade to silence, then silence, keeping what is queued.
    pub(crate) fn pause(&self) {
        let mut state = self.lock();
        if !state.paused {
            state.paused = true;
            state.restart_fade();
        }
    }

    /// Plays on from where [`PlayQueue::pause`] held it, fading in.
    pub(crate) fn resume(&self) {
        let mut state = self.lock();
        if state.paused {
            state.paused = false;
            state.fade_in = 0;
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.lock().paused
    }

    pub(crate) fn stop(&self) {
        let mut state = self.lock();
        state.samples.clear();
        state.converter = None;
        state.paused = false;
        state.fade_in = RAMP;
        state.restart_fade();
        drop(state);
        self.idle.notify_all();
    }

    /// Fills `out` with the next samples: queued audio, the fade after a stop, then
    /// silence. Returns how many were real audio (counted as played).
    pub(crate) fn pull(&self, out: &mut [f32]) -> usize {
        let mut state = self.lock();
        let mut real = 0;
        for slot in out.iter_mut() {
            if state.fade_left > 0 {
                state.fade_left -= 1;
                *slot = state.last * state.fade_left as f32 / RAMP as f32;
                if state.fade_left == 0 {
                    // Faded out: a later stop has nothing to fade (no click).
                    state.last = 0.0;
                }
                continue;
            }
            if state.paused {
                *slot = 0.0;
                continue;
            }
            match state.samples.pop_front() {
                Some(s) => {
                    let s = if state.fade_in < RAMP {
                        state.fade_in += 1;
                        s * state.fade_in as f32 / RAMP as f32
                    } else {
                        s
                    };
                    *slot = s;
                    state.last = s;
                    real += 1;
                }
                None => {
                    *slot = 0.0;
                    state.last = 0.0;
                }
            }
        }
        // Held audio is not the end of it.
        let empty = state.samples.is_empty() && !state.paused;
        drop(state);
        self.played.fetch_add(real as u64, Ordering::Relaxed);
        self.copy_to_taps(out);
        if empty {
            self.idle.notify_all();
            if real > 0 {
                if let Some(signal) = self.on_drained.get() {
                    signal();
                }
            }
        }
        real
    }

    /// Adds a receiver of every block handed out from now on.
    pub(crate) fn add_tap(&self, tap: SyncSender<Vec<f32>>) {
        self.taps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tap);
    }

    /// Copies `block` to every tap without waiting: a tap that is full misses it (its
    /// reader fell seconds behind), one whose reader is gone is dropped.
    fn copy_to_taps(&self, block: &[f32]) {
        let mut taps = self.taps.lock().unwrap_or_else(|p| p.into_inner());
        if taps.is_empty() {
            return;
        }
        taps.retain(|tap| match tap.try_send(block.to_vec()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::debug!("a playback tap is full: a block was not copied");
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
    }

    /// Sets what is called each time the queue runs out of real audio; false if one was
    /// set already (there is one listener: whoever owns the turn).
    pub(crate) fn set_on_drained(&self, signal: Box<dyn Fn() + Send + Sync>) -> bool {
        self.on_drained.set(signal).is_ok()
    }

    pub(crate) fn played(&self) -> u64 {
        self.played.load(Ordering::Relaxed)
    }

    pub(crate) fn queued(&self) -> usize {
        self.lock().samples.len()
    }

    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while !state.samples.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.idle.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_holds_the_queue_in_silence_and_resume_plays_on_from_there() {
        let q = PlayQueue::new(16_000);
        q.push(&[0.5; 1_000], 16_000).expect("push");
        q.flush().expect("flush");
        let mut out = vec![0.0; 200];
        assert_eq!(q.pull(&mut out), 200);
        q.pause();
        let mut held = vec![1.0; 500];
        assert_eq!(q.pull(&mut held), 0, "nothing played while paused");
        // A fade from the last sample, then silence.
        assert!(held[0] > 0.0 && held[0] < 0.5);
        assert!(held[RAMP..].iter().all(|s| *s == 0.0));
        assert_eq!(q.queued(), 800, "the queue is kept");
        assert_eq!(q.played(), 200);
        q.resume();
        let mut rest = vec![0.0; 800];
        assert_eq!(q.pull(&mut rest), 800);
        // Faded in, then the held audio as it was.
        assert!(rest[0] < 0.5 && rest[RAMP] == 0.5);
        assert_eq!(q.played(), 1_000);
        // A stop drops paused audio and leaves the queue playable.
        q.push(&[0.25; 100], 16_000).expect("push");
        q.flush().expect("flush");
        let mut out = vec![0.0; 50];
        q.pull(&mut out);
        q.pause();
        let mut held = vec![0.0; 200];
        q.pull(&mut held);
        q.stop();
        assert_eq!(q.queued(), 0);
        assert!(!q.is_paused());
        // A stop in the middle of the pause's fade goes on down from where it was.
        q.push(&[0.5; 400], 16_000).expect("push");
        q.flush().expect("flush");
        q.resume();
        let mut out = vec![0.0; 200];
        q.pull(&mut out);
        q.pause();
        let mut fading = vec![0.0; 10];
        q.pull(&mut fading);
        q.stop();
        let mut next = vec![0.0; 1];
        q.pull(&mut next);
        assert!(next[0] <= fading[9], "{} after {}", next[0], fading[9]);
        let mut rest = vec![0.0; 100];
        q.pull(&mut rest);
        q.pause();
        let mut held = vec![0.0; 200];
        q.pull(&mut held);
        q.stop();
        // Stopped while paused: already silent, so no second fade (no click).
        let mut after = vec![1.0; 100];
        q.pull(&mut after);
        assert!(after.iter().all(|s| *s == 0.0), "{:?}", &after[..8]);
    }

    #[test]
    fn chunks_at_another_rate_join_without_a_seam() {
        let q = PlayQueue::new(48_000);
        // A 440 Hz sine at 22.05 kHz in uneven chunks.
        let sine: Vec<f32> = (0..22_050)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 22_050.0).sin() * 0.5)
            .collect();
        for chunk in sine.chunks(1234) {
            q.push(chunk, 22_050).expect("push");
        }
        q.flush().expect("flush");
        let mut out = vec![0.0; q.queued()];
        q.pull(&mut out);
        assert!((out.len() as i64 - 48_000).abs() <= 2, "{}", out.len());
        // No jump between neighbours bigger than the sine's own slope allows.
        let max_step = 0.5 * 440.0 * std::f32::consts::TAU / 48_000.0 * 1.2;
        let worst = out[100..out.len() - 100]
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max);
        assert!(worst < max_step, "a seam: step {worst} > {max_step}");
    }

    #[test]
    fn running_out_of_audio_is_signalled_once_per_drain() {
        let q = PlayQueue::new(16_000);
        let drains = std::sync::Arc::new(AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&drains);
        assert!(q.set_on_drained(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })));
        assert!(!q.set_on_drained(Box::new(|| {})), "one listener");
        q.push(&[0.5; 300], 16_000).expect("push");
        let mut out = vec![0.0; 200];
        q.pull(&mut out);
        assert_eq!(drains.load(Ordering::SeqCst), 0, "audio left");
        q.pull(&mut out);
        assert_eq!(
            drains.load(Ordering::SeqCst),
            1,
            "the last 100 samples played"
        );
        q.pull(&mut out);
        assert_eq!(
            drains.load(Ordering::SeqCst),
            1,
            "silence is not a new drain"
        );
    }

    #[test]
    fn stop_fades_out_within_the_ramp_and_counts_only_real_audio() {
        let q = PlayQueue::new(16_000);
        q.push(&vec![0.8; 16_000], 16_000).expect("push");
        let mut out = vec![0.0; 1000];
        assert_eq!(q.pull(&mut out), 1000);
        q.stop();
        assert_eq!(q.queued(), 0);
        let mut out = vec![1.0; 200];
        assert_eq!(q.pull(&mut out), 0, "nothing real after a stop");
        assert!(
            out[0] < 0.8 && out[0] > 0.7,
            "the fade starts where the audio was"
        );
        assert!(out[..RAMP].windows(2).all(|w| w[1] <= w[0]));
        assert!(
            out[RAMP..].iter().all(|&s| s == 0.0),
            "silent after the ramp"
        );
        assert_eq!(q.played(), 1000);
    }
}
