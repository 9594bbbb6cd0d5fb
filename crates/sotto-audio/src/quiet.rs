//! Whether the microphone has gone quiet after speech, by level alone: a clock-free state
//! machine fed the utterance's samples.
//!
//! The voice activity detector is the judge of speech, but not a prompt one of its end:
//! Silero's probability stays over its threshold for 120-200 ms after the sound stops
//! (`tests/release.rs`). The level falls at once. An utterance's own loudest moment sets
//! the scale, so the rule holds for a quiet microphone as for a loud one; a room whose
//! noise is within [`QUIET_UNDER_LOUDEST_DB`] of the speech never reads as quiet, and
//! leaves the decision to the detector, as before.

use crate::level::LevelMeter;

/// A 10 ms frame this far under the loudest of the utterance is the room, not a word: a
/// soft word ending ("s", "f") is 20-30 dB under the vowels; a desk microphone's room,
/// 40-50 dB.
pub const QUIET_UNDER_LOUDEST_DB: f32 = 35.0;

/// How long the microphone has been quiet, relative to the loudest of the utterance.
#[derive(Debug)]
pub struct QuietTracker {
    /// The level of each 10 ms frame (windows carried across pushes).
    frames: LevelMeter,
    /// The loudest 10 ms frame since the last reset, dBFS (`None`: no frame yet).
    loudest_db: Option<f32>,
    /// Quiet frames in a row, up to the last full one.
    quiet_frames: u32,
}

impl Default for QuietTracker {
    fn default() -> Self {
        QuietTracker {
            frames: LevelMeter::new(10),
            loudest_db: None,
            quiet_frames: 0,
        }
    }
}

impl QuietTracker {
    /// Forgets the utterance: the next one sets its own scale.
    pub fn reset(&mut self) {
        *self = QuietTracker::default();
    }

    /// Adds samples (16 kHz mono), in any block size.
    pub fn push(&mut self, samples: &[f32]) {
        for level in self.frames.push(samples) {
            let db = level.rms_dbfs;
            let loudest = self.loudest_db.map_or(db, |l| l.max(db));
            self.loudest_db = Some(loudest);
            if db < loudest - QUIET_UNDER_LOUDEST_DB {
                self.quiet_frames = self.quiet_frames.saturating_add(1);
            } else {
                self.quiet_frames = 0;
            }
        }
    }

    /// The last `ms` (in whole 10 ms frames) were quiet, after something louder.
    pub fn quiet_for(&self, ms: u32) -> bool {
        self.loudest_db.is_some() && self.quiet_frames >= ms.div_ceil(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::white_noise;

    fn tone(ms: usize, amplitude: f32) -> Vec<f32> {
        (0..ms * 16)
            .map(|i| amplitude * (i as f32 * 0.2).sin())
            .collect()
    }

    #[test]
    fn quiet_is_measured_against_the_utterance_s_loudest_in_any_block_size() {
        let mut q = QuietTracker::default();
        // Nothing heard yet: silence is not "quiet after speech".
        q.push(&vec![0.0; 1_600]);
        assert!(!q.quiet_for(60));
        // Speech at about -13 dBFS, then a soft ending 25 dB down: still speech.
        q.push(&tone(300, 0.3));
        q.push(&tone(100, 0.017));
        assert!(!q.quiet_for(60));
        // The room at -60 dBFS, fed in odd block sizes: quiet once 60 ms of it are in.
        let room = white_noise(16 * 100, -60.0);
        q.push(&room[..16 * 50]);
        assert!(!q.quiet_for(60));
        for block in room[16 * 50..].chunks(37) {
            q.push(block);
        }
        assert!(q.quiet_for(60) && q.quiet_for(100) && !q.quiet_for(110));
        // A word again: not quiet any more.
        q.push(&tone(10, 0.3));
        assert!(!q.quiet_for(10));
        q.reset();
        assert!(!q.quiet_for(0));
    }

    #[test]
    fn a_room_as_loud_as_the_speech_is_never_quiet() {
        let mut q = QuietTracker::default();
        q.push(&tone(300, 0.03));
        q.push(&white_noise(16 * 500, -50.0));
        assert!(!q.quiet_for(60));
    }
}
