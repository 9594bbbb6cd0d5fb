//! The queue between whoever makes audio and whatever plays it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

/// Audio waiting to be played, at the output rate, and the count of what was played.
pub(crate) struct PlayQueue {
    rate: u32,
    state: Mutex<State>,
    played: AtomicU64,
    idle: Condvar,
    /// Called (from the draining thread) each time real audio ran out.
    on_drained: OnceLock<Box<dyn Fn() + Send + Sync>>,
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
            }),
            played: AtomicU64::new(0),
            idle: Condvar::new(),
            on_drained: OnceLock::new(),
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

    pub(crate) fn stop(&self) {
        let mut state = self.lock();
        state.samples.clear();
        state.converter = None;
        state.fade_left = RAMP;
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
                continue;
            }
            match state.samples.pop_front() {
                Some(s) => {
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
        let empty = state.samples.is_empty();
        drop(state);
        self.played.fetch_add(real as u64, Ordering::Relaxed);
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
