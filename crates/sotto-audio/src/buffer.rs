//! Audio in memory.

/// Interleaved f32 samples in [-1, 1] with their format.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioBuffer {
    /// Interleaved samples (frame 0 channel 0, frame 0 channel 1, ...).
    pub samples: Vec<f32>,
    /// Channels per frame.
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
}

impl AudioBuffer {
    /// Mono audio.
    pub fn mono(samples: Vec<f32>, sample_rate: u32) -> AudioBuffer {
        AudioBuffer {
            samples,
            channels: 1,
            sample_rate,
        }
    }

    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.frames() as u64 * 1000 / u64::from(self.sample_rate.max(1))
    }

    /// The average of the channels.
    pub fn downmix(&self) -> Vec<f32> {
        let channels = usize::from(self.channels.max(1));
        if channels == 1 {
            return self.samples.clone();
        }
        self.samples
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32)
            .collect()
    }
}

/// Root-mean-square level of samples, in dBFS (-inf for silence).
pub fn rms_dbfs(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return f32::NEG_INFINITY;
    }
    let mean_square = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    10.0 * mean_square.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_downmixes_to_the_average() {
        let b = AudioBuffer {
            samples: vec![1.0, 0.0, 0.5, 0.5],
            channels: 2,
            sample_rate: 48_000,
        };
        assert_eq!(b.frames(), 2);
        assert_eq!(b.downmix(), vec![0.5, 0.5]);
    }

    #[test]
    fn full_scale_square_is_0_dbfs() {
        assert!((rms_dbfs(&[1.0, -1.0]) - 0.0).abs() < 1e-6);
        assert!((rms_dbfs(&[0.1; 10]) + 20.0).abs() < 1e-4);
        assert_eq!(rms_dbfs(&[0.0; 4]), f32::NEG_INFINITY);
    }
}
