//! Any sample rate and channel count -> 16 kHz mono, with a band-limited (FFT) resampler
//! so 44.1/48 kHz input does not alias into the speech band.

use rubato::{FftFixedIn, Resampler};

use crate::{AudioBuffer, AudioError, SPEECH_RATE};

/// About how many input frames each resampler call takes.
const CHUNK: usize = 1024;

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// An input chunk near [`CHUNK`] for which the FFT resampler's delay is a whole number of
/// output samples. The FFT sizes are multiples of the rates' reduced ratio; when the
/// output FFT is odd, its delay is half a sample more than `output_delay()` reports, and
/// the output would trail the input (by 1/3 sample at 48 -> 16 kHz, audible as a 17 dB
/// round-trip error on speech). An even output FFT keeps the delay exact.
fn chunk_for(from: u32, to: u32) -> usize {
    let g = gcd(from, to);
    let unit_in = (from / g) as usize;
    let pairs = (CHUNK / (2 * unit_in)).max(1);
    unit_in * 2 * pairs
}

/// Downmixes to mono and resamples to 16 kHz.
pub fn to_mono_16k(audio: &AudioBuffer) -> Result<Vec<f32>, AudioError> {
    let mono = audio.downmix();
    resample(&mono, audio.sample_rate, SPEECH_RATE)
}

/// Resamples mono audio from `from` Hz to `to` Hz. The output has exactly
/// `len * to / from` samples (rounded down), aligned with the input (the filter delay is
/// removed).
pub fn resample(mono: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    let mut stream = StreamResampler::new(from, to)?;
    let mut out = stream.push(mono)?;
    out.extend(stream.flush()?);
    Ok(out)
}

/// A resampler for audio that arrives in blocks (a microphone): output sample `i` lines up
/// with input time `i / to` seconds, as in [`resample`], whatever the block sizes.
pub struct StreamResampler {
    from: u32,
    to: u32,
    /// `None` when the rates are equal.
    inner: Option<FftFixedIn<f32>>,
    chunk: usize,
    pending: Vec<f32>,
    /// Output samples still to drop: the filter's delay.
    skip: usize,
    taken: u64,
    given: u64,
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<StreamResampler, AudioError> {
        if from == 0 || to == 0 {
            return Err(AudioError::Unsupported(format!(
                "a sample rate of 0 Hz ({from} -> {to})"
            )));
        }
        let chunk = chunk_for(from, to);
        let inner = if from == to {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 1, 1)
                    .map_err(|e| AudioError::Resample(e.to_string()))?,
            )
        };
        let skip = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(StreamResampler {
            from,
            to,
            inner,
            chunk,
            pending: Vec::new(),
            skip,
            taken: 0,
            given: 0,
        })
    }

    /// The input rate.
    pub fn input_rate(&self) -> u32 {
        self.from
    }

    /// Takes input samples; returns the output they completed.
    pub fn push(&mut self, mono: &[f32]) -> Result<Vec<f32>, AudioError> {
        self.taken += mono.len() as u64;
        let Some(inner) = self.inner.as_mut() else {
            self.given += mono.len() as u64;
            return Ok(mono.to_vec());
        };
        self.pending.extend_from_slice(mono);
        let mut out = Vec::new();
        let mut used = 0;
        while self.pending.len() - used >= self.chunk {
            let produced = inner
                .process(&[&self.pending[used..used + self.chunk]], None)
                .map_err(|e| AudioError::Resample(e.to_string()))?;
            used += self.chunk;
            let drop = self.skip.min(produced[0].len());
            self.skip -= drop;
            out.extend_from_slice(&produced[0][drop..]);
        }
        self.pending.drain(..used);
        self.given += out.len() as u64;
        Ok(out)
    }

    /// The input ended: returns the rest of the output, so the total is
    /// `input * to / from` samples.
    pub fn flush(&mut self) -> Result<Vec<f32>, AudioError> {
        let expected = self.taken * u64::from(self.to) / u64::from(self.from);
        let mut out = Vec::new();
        while self.given < expected {
            // Zeros past the end push out what the filter holds; they do not count as input.
            let zeros = vec![0f32; self.chunk - self.pending.len() % self.chunk];
            let taken = self.taken;
            out.extend(self.push(&zeros)?);
            self.taken = taken;
        }
        let extra = (self.given - expected) as usize;
        out.truncate(out.len().saturating_sub(extra));
        self.given = expected;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    /// Amplitude of `freq` in `x` (single-bin DFT).
    fn level(x: &[f32], freq: f32, rate: u32) -> f32 {
        let (mut re, mut im) = (0f32, 0f32);
        for (i, v) in x.iter().enumerate() {
            let ph = 2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32;
            re += v * ph.cos();
            im += v * ph.sin();
        }
        2.0 * (re * re + im * im).sqrt() / x.len() as f32
    }

    #[test]
    fn blocks_of_any_size_give_the_same_samples_as_one_buffer() {
        for from in [48_000, 44_100, 16_000, 8_000] {
            let input = sine(300.0, from, 0.7);
            let whole = resample(&input, from, SPEECH_RATE).unwrap();
            for block in [1, 441, 480, 1000, 5000] {
                let mut stream = StreamResampler::new(from, SPEECH_RATE).unwrap();
                let mut got = Vec::new();
                for piece in input.chunks(block) {
                    got.extend(stream.push(piece).unwrap());
                }
                got.extend(stream.flush().unwrap());
                assert_eq!(got, whole, "{from} Hz in blocks of {block}");
            }
        }
    }

    #[test]
    fn a_tone_keeps_its_pitch_level_and_timing_through_48k_and_44k1() {
        for from in [48_000, 44_100] {
            let out = resample(&sine(440.0, from, 1.0), from, SPEECH_RATE).unwrap();
            assert_eq!(out.len(), 16_000, "from {from}");
            let mid = &out[2_000..14_000];
            assert!(
                (level(mid, 440.0, SPEECH_RATE) - 0.5).abs() < 0.02,
                "from {from}"
            );
            // Aligned: the resampled sine crosses zero where the original does.
            let expect = (2.0 * std::f32::consts::PI * 440.0 * 8_000.0 / 16_000.0).sin() * 0.5;
            assert!(
                (out[8_000] - expect).abs() < 0.05,
                "from {from}: {} vs {expect}",
                out[8_000]
            );
        }
    }

    /// How many samples `got` trails `want` (two sines), to a hundredth of a sample.
    fn lag(want: &[f32], got: &[f32]) -> f64 {
        let error = |d: f64| -> f64 {
            (500..want.len().min(got.len()) - 500)
                .map(|i| {
                    let x = i as f64 - d;
                    let (i0, fr) = (x.floor() as usize, x - x.floor());
                    let v = f64::from(want[i0]) * (1.0 - fr) + f64::from(want[i0 + 1]) * fr;
                    (v - f64::from(got[i])).powi(2)
                })
                .sum()
        };
        (-200..=200)
            .map(|k| k as f64 * 0.01)
            .min_by(|a, b| error(*a).total_cmp(&error(*b)))
            .unwrap_or(0.0)
    }

    #[test]
    fn no_rate_pair_shifts_the_signal_by_a_fraction_of_a_sample() {
        for (from, to) in [
            (48_000, 16_000),
            (44_100, 16_000),
            (22_050, 16_000),
            (24_000, 16_000),
            (16_000, 48_000),
        ] {
            let out = resample(&sine(1000.0, from, 0.5), from, to).unwrap();
            let d = lag(&sine(1000.0, to, 0.5), &out);
            assert!(
                d.abs() < 0.05,
                "{from} -> {to}: output trails by {d:.2} samples"
            );
        }
    }

    #[test]
    fn content_above_8_khz_does_not_alias_into_speech() {
        let out = resample(&sine(11_000.0, 48_000, 1.0), 48_000, SPEECH_RATE).unwrap();
        // Without a low-pass, 11 kHz folds to 5 kHz at 16 kHz.
        assert!(level(&out[2_000..14_000], 5_000.0, SPEECH_RATE) < 0.01);
    }

    #[test]
    fn stereo_44k1_becomes_16k_mono() {
        let left = sine(300.0, 44_100, 0.5);
        let samples: Vec<f32> = left.iter().flat_map(|&s| [s, s]).collect();
        let audio = AudioBuffer {
            samples,
            channels: 2,
            sample_rate: 44_100,
        };
        assert_eq!(to_mono_16k(&audio).unwrap().len(), 8_000);
    }
}
