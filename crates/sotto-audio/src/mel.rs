//! Whisper-style log-mel features: what Smart Turn (and whisper) take as input.
//!
//! The recipe is Whisper's feature extractor: the waveform normalised to zero mean and
//! unit variance, a centred short-time Fourier transform (400-sample periodic Hann window,
//! hop 160, reflect padding), the power spectrum through 80 triangular mel filters on
//! the Slaney scale with Slaney area normalisation (0-8 kHz), `log10` floored at 1e-10,
//! the last frame dropped, values clamped to 8 below the maximum and mapped by
//! `(x + 4) / 4`. [`LogMel`] precomputes the window, the filters and the FFT plan once.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// FFT length (25 ms at 16 kHz).
pub const N_FFT: usize = 400;
/// Hop between frames (10 ms at 16 kHz).
pub const HOP: usize = 160;
/// Mel bands.
pub const N_MELS: usize = 80;
/// Frequency bins of one frame's spectrum.
const BINS: usize = N_FFT / 2 + 1;

/// The log-mel feature extractor for 16 kHz audio.
pub struct LogMel {
    window: Vec<f64>,
    /// `[N_MELS][BINS]`, row-major.
    filters: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl Default for LogMel {
    fn default() -> Self {
        LogMel::new()
    }
}

impl LogMel {
    /// The extractor (window, filters and FFT plan computed here, once).
    pub fn new() -> LogMel {
        let window = (0..N_FFT)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos())
            .collect();
        LogMel {
            window,
            // The same bank whisper.cpp embeds in its models (librosa's Slaney scale).
            filters: sotto_models::whisper::mel::filters(N_MELS)
                .into_iter()
                .map(f64::from)
                .collect(),
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Features of `audio` (16 kHz mono): `N_MELS` rows of `audio.len() / HOP` frames,
    /// row-major (`[mel][frame]`), the layout of Whisper's `input_features`.
    pub fn features(&self, audio: &[f32]) -> Vec<f32> {
        let frames = audio.len() / HOP;
        if frames == 0 {
            return Vec::new();
        }
        // Zero mean, unit variance (in f32, as the reference does).
        let n = audio.len() as f32;
        let mean = audio.iter().sum::<f32>() / n;
        let var = audio.iter().map(|s| (s - mean) * (s - mean)).sum::<f32>() / n;
        let scale = 1.0 / (var + 1e-7).sqrt();
        let x: Vec<f64> = audio
            .iter()
            .map(|s| f64::from((s - mean) * scale))
            .collect();
        // Reflect padding of N_FFT / 2 on both sides (centred frames).
        let pad = N_FFT / 2;
        let len = x.len();
        let at = |i: isize| -> f64 {
            let mut j = i;
            if j < 0 {
                j = -j;
            }
            if j >= len as isize {
                j = 2 * (len as isize - 1) - j;
            }
            x[j.clamp(0, len as isize - 1) as usize]
        };
        let mut input = vec![0.0f64; N_FFT];
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; BINS];
        let mut out = vec![0.0f64; N_MELS * frames];
        // The reference computes frames + 1 and drops the last: compute `frames`.
        for frame in 0..frames {
            let start = (frame * HOP) as isize - pad as isize;
            for (k, slot) in input.iter_mut().enumerate() {
                *slot = at(start + k as isize) * self.window[k];
            }
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                // Only a wrong buffer length fails, and the lengths come from the plan.
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for mel in 0..N_MELS {
                let row = &self.filters[mel * BINS..(mel + 1) * BINS];
                let energy: f64 = row.iter().zip(&power).map(|(f, p)| f * p).sum();
                out[mel * frames + frame] = energy.max(1e-10).log10();
            }
        }
        let max = out.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.iter()
            .map(|v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, seconds: f32) -> Vec<f32> {
        (0..(16_000.0 * seconds) as usize)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * hz * i as f32 / 16_000.0).sin())
            .collect()
    }

    #[test]
    fn a_tone_lights_the_band_of_its_frequency() {
        let mel = LogMel::new();
        let features = mel.features(&tone(1000.0, 1.0));
        let frames = 100;
        assert_eq!(features.len(), N_MELS * frames);
        // In a middle frame, the loudest band is the one whose triangle holds 1 kHz.
        let column: Vec<f32> = (0..N_MELS).map(|m| features[m * frames + 50]).collect();
        let loudest = column
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        // 1 kHz is mel 15 of 45.25 (8 kHz) on the Slaney scale: between the centres of
        // bands 25 and 26 of 80.
        assert!((25..=26).contains(&loudest), "band {loudest}");
        // The clamp keeps everything within 8 (= 2 after scaling) of the maximum.
        let max = features.iter().copied().fold(f32::MIN, f32::max);
        let min = features.iter().copied().fold(f32::MAX, f32::min);
        assert!(max - min <= 2.0 + 1e-5, "{min} {max}");
    }

    #[test]
    fn the_features_match_whispers_feature_extractor() {
        // 3 s of two tones (the higher one swelling), zeros before it to 8 s, as Smart
        // Turn hears a short utterance. The reference values come from the NumPy port
        // of Whisper's feature extractor that ships with the model (pipecat-ai 1.14.0,
        // `smart_turn/_whisper_features.py`), run on the same samples.
        let mut audio = vec![0.0f32; 80_000];
        // In f64 as NumPy computes it (f32 phases drift by 3 s at 3.1 kHz).
        audio.extend((0..48_000).map(|i| {
            let t = f64::from(i) / 16_000.0;
            let two_pi = 2.0 * std::f64::consts::PI;
            (0.3 * (two_pi * 440.0 * t).sin()
                + 0.1 * (two_pi * 3_100.0 * t).sin() * (f64::from(i) / 48_000.0)) as f32
        }));
        let features = LogMel::new().features(&audio);
        assert_eq!(features.len(), N_MELS * 800);
        let at = |mel: usize, frame: usize| features[mel * 800 + frame];
        for (mel, frame, want) in [
            (0, 0, -0.233_480_72),
            (5, 500, 1.226_033_1),
            (9, 600, 1.487_706_7),
            (12, 700, 1.621_838_9),
            (20, 501, 0.507_542),
            (60, 799, 0.187_643_54),
        ] {
            let got = at(mel, frame);
            assert!(
                (got - want).abs() < 1e-3,
                "[{mel}][{frame}] {got} != {want}"
            );
        }
        let mean = features.iter().sum::<f32>() / features.len() as f32;
        assert!((mean - -0.175_076_93).abs() < 1e-3, "mean {mean}");
    }

    #[test]
    fn no_audio_gives_no_frames() {
        assert!(LogMel::new().features(&[0.0; 100]).is_empty());
    }
}
