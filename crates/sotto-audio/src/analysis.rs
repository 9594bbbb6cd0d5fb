//! Measurements on recorded audio, for tests and benchmarks: where speech is in a clean
//! recording, and reproducible noise to bury it in.

use crate::buffer::rms_dbfs;
use crate::SPEECH_RATE;

/// Where speech is in a clip of `rate` Hz surrounded by digital silence (or a quiet
/// room): from the first to the end of the last 10 ms frame louder than `threshold_dbfs`,
/// in milliseconds. The benches take [`SOUND_DBFS`] as where a question's sound ends.
pub fn speech_span_ms(clean: &[f32], rate: u32, threshold_dbfs: f32) -> Option<(u64, u64)> {
    let frame = (rate as usize / 100).max(1);
    let levels: Vec<f32> = clean.chunks(frame).map(rms_dbfs).collect();
    let first = levels.iter().position(|&db| db > threshold_dbfs)?;
    let last = levels.iter().rposition(|&db| db > threshold_dbfs)?;
    let at_ms = |sample: usize| sample as u64 * 1000 / u64::from(rate.max(1));
    Some((
        at_ms(first * frame),
        at_ms(((last + 1) * frame).min(clean.len())),
    ))
}

/// The level under which a recorded question is taken to have ended (10 ms frames): the
/// benches release the key a set time after it.
pub const SOUND_DBFS: f32 = -40.0;

/// The energy of `samples` (sum of squares).
pub fn energy(samples: &[f32]) -> f64 {
    samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum()
}

/// Echo return loss enhancement, dB: the energy of the `echo` a microphone heard against
/// what an echo canceller let `out` (both 16 kHz, aligned), from sample `from` on (after
/// the canceller converged), over the 10 ms frames where the echo is above -50 dBFS.
pub fn erle_db(echo: &[f32], out: &[f32], from: usize) -> f64 {
    let frame = SPEECH_RATE as usize / 100;
    let (mut echo_e, mut out_e) = (0.0, 0.0);
    let echo = echo.get(from..).unwrap_or_default();
    let out = out.get(from..).unwrap_or_default();
    for (e, o) in echo.chunks(frame).zip(out.chunks(frame)) {
        if energy(e) / frame as f64 > 10f64.powf(-50.0 / 10.0) {
            echo_e += energy(e);
            out_e += energy(o);
        }
    }
    10.0 * (echo_e / out_e).log10()
}

/// Deterministic white noise at about `dbfs` RMS (the same samples every run).
pub fn white_noise(len: usize, dbfs: f32) -> Vec<f32> {
    // Uniform noise in [-a, a] has an RMS of a / sqrt(3).
    let amplitude = 10f32.powf(dbfs / 20.0) * 3f32.sqrt();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0) * amplitude
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_has_the_level_asked_for_and_the_span_finds_the_loud_part() {
        let noise = white_noise(16_000, -30.0);
        assert!((rms_dbfs(&noise) + 30.0).abs() < 0.2);
        let mut clip = vec![0.0; 16_000];
        clip[4_000..8_000].fill(0.1);
        assert_eq!(speech_span_ms(&clip, SPEECH_RATE, -50.0), Some((250, 500)));
        assert_eq!(speech_span_ms(&[0.0; 100], SPEECH_RATE, -50.0), None);
        // The same at Kokoro's 24 kHz: milliseconds, not 16 kHz frames.
        let mut clip = vec![0.0; 24_000];
        clip[6_000..12_000].fill(0.1);
        assert_eq!(speech_span_ms(&clip, 24_000, -50.0), Some((250, 500)));
    }
}
