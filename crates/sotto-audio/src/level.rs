//! The input level meter the UI draws while the user speaks.

use serde::Serialize;

use crate::SPEECH_RATE;

/// Below this a level reads as silence (the meter's floor).
pub const FLOOR_DBFS: f32 = -90.0;

/// The level of one window of audio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Level {
    /// Root-mean-square level in dBFS, at least [`FLOOR_DBFS`].
    pub rms_dbfs: f32,
    /// Largest absolute sample in dBFS, at least [`FLOOR_DBFS`].
    pub peak_dbfs: f32,
}

fn dbfs(amplitude: f32) -> f32 {
    if amplitude > 0.0 {
        (20.0 * amplitude.log10()).max(FLOOR_DBFS)
    } else {
        FLOOR_DBFS
    }
}

/// Measures the level over fixed windows of 16 kHz audio (50 ms by default: 20 updates a
/// second is smooth on screen and cheap to send).
#[derive(Debug)]
pub struct LevelMeter {
    window: usize,
    count: usize,
    sum_squares: f64,
    peak: f32,
}

impl Default for LevelMeter {
    fn default() -> Self {
        LevelMeter::new(50)
    }
}

impl LevelMeter {
    /// A meter reporting every `window_ms` of audio.
    pub fn new(window_ms: u32) -> LevelMeter {
        LevelMeter {
            window: (window_ms as usize * SPEECH_RATE as usize / 1000).max(1),
            count: 0,
            sum_squares: 0.0,
            peak: 0.0,
        }
    }

    /// Feeds samples; returns a level for each window they completed.
    pub fn push(&mut self, samples: &[f32]) -> Vec<Level> {
        let mut levels = Vec::new();
        for &s in samples {
            self.sum_squares += f64::from(s) * f64::from(s);
            self.peak = self.peak.max(s.abs());
            self.count += 1;
            if self.count == self.window {
                let rms = (self.sum_squares / self.count as f64).sqrt() as f32;
                levels.push(Level {
                    rms_dbfs: dbfs(rms),
                    peak_dbfs: dbfs(self.peak),
                });
                self.count = 0;
                self.sum_squares = 0.0;
                self.peak = 0.0;
            }
        }
        levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_reads_3_db_below_its_peak_and_silence_reads_the_floor() {
        let mut meter = LevelMeter::new(50);
        let sine: Vec<f32> = (0..1600)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 400.0 * i as f32 / 16_000.0).sin())
            .collect();
        let levels = meter.push(&sine);
        assert_eq!(levels.len(), 2);
        for level in levels {
            assert!((level.peak_dbfs + 6.02).abs() < 0.1, "{level:?}");
            assert!((level.rms_dbfs + 9.03).abs() < 0.1, "{level:?}");
        }
        let silent = meter.push(&[0.0; 800]);
        assert_eq!(
            silent,
            vec![Level {
                rms_dbfs: FLOOR_DBFS,
                peak_dbfs: FLOOR_DBFS
            }]
        );
        // A window is completed across calls.
        assert!(meter.push(&[0.1; 400]).is_empty());
        assert_eq!(meter.push(&[0.1; 400]).len(), 1);
    }
}
