//! The mel filter bank whisper.cpp embeds in its model files: librosa's "slaney" mel
//! scale and normalisation, for 16 kHz audio and a 400-point FFT (201 bins), exactly as
//! OpenAI computed `mel_filters.npz`.

/// Whisper's sample rate.
pub const SAMPLE_RATE: f64 = 16_000.0;
/// Whisper's FFT size.
pub const N_FFT: usize = 400;
/// Frequency bins of one FFT frame.
pub const N_BINS: usize = N_FFT / 2 + 1;

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / logstep()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// `n_mels` x [`N_BINS`] weights, row-major.
pub fn filters(n_mels: usize) -> Vec<f32> {
    let max_mel = hz_to_mel(SAMPLE_RATE / 2.0);
    let mel_points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(max_mel * i as f64 / (n_mels + 1) as f64))
        .collect();
    let fft_freqs: Vec<f64> = (0..N_BINS)
        .map(|i| i as f64 * (SAMPLE_RATE / 2.0) / (N_BINS - 1) as f64)
        .collect();
    let mut weights = vec![0f32; n_mels * N_BINS];
    for m in 0..n_mels {
        let (lo, mid, hi) = (mel_points[m], mel_points[m + 1], mel_points[m + 2]);
        let norm = 2.0 / (hi - lo);
        for (bin, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            // librosa stores the triangle as f32 first, then scales it: round twice as it does.
            let triangle = lower.min(upper).max(0.0) as f32;
            weights[m * N_BINS + bin] = (f64::from(triangle) * norm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn matches_openai_mel_filters_everywhere() {
        for (n, bytes) in [
            (80, &include_bytes!("../../testdata/openai_mel_80.f32")[..]),
            (
                128,
                &include_bytes!("../../testdata/openai_mel_128.f32")[..],
            ),
        ] {
            let ours = filters(n);
            let theirs = reference(bytes);
            assert_eq!(ours.len(), theirs.len());
            let worst = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-7, "mel_{n}: largest difference {worst}");
        }
    }

    #[test]
    fn every_filter_has_weight_and_bins_stay_in_range() {
        for n in [80, 128] {
            let f = filters(n);
            for m in 0..n {
                let row = &f[m * N_BINS..(m + 1) * N_BINS];
                assert!(row.iter().any(|&w| w > 0.0), "filter {m} of {n} is empty");
                assert!(row.iter().all(|w| w.is_finite() && *w >= 0.0));
            }
        }
    }
}
