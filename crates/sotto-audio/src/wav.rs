//! WAV files: 8/16/24/32-bit integer or 32-bit float, any rate, any channel count.

use std::path::{Path, PathBuf};

use crate::{AudioBuffer, AudioError};

/// The WAV files (`.wav`, any case) directly in `dir`, in name order.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, AudioError> {
    let entries = std::fs::read_dir(dir).map_err(|e| AudioError::ReadWav {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads a whole WAV file into f32 samples.
pub fn read(path: &Path) -> Result<AudioBuffer, AudioError> {
    let fail = |reason: String| AudioError::ReadWav {
        path: path.display().to_string(),
        reason,
    };
    let reader = hound::WavReader::open(path).map_err(|e| fail(e.to_string()))?;
    samples_of(reader).map_err(fail)
}

/// Reads a whole WAV file held in memory (an upload) into f32 samples; `name` says
/// where it came from in the error.
pub fn read_bytes(bytes: &[u8], name: &str) -> Result<AudioBuffer, AudioError> {
    let fail = |reason: String| AudioError::ReadWav {
        path: name.to_string(),
        reason,
    };
    let reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| fail(e.to_string()))?;
    samples_of(reader).map_err(fail)
}

fn samples_of<R: std::io::Read>(reader: hound::WavReader<R>) -> Result<AudioBuffer, String> {
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err("it declares no channels or a zero sample rate".into());
    }
    let samples: Result<Vec<f32>, hound::Error> = match spec.sample_format {
        hound::SampleFormat::Float => reader.into_samples::<f32>().collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect()
        }
    };
    Ok(AudioBuffer {
        samples: samples.map_err(|e| e.to_string())?,
        channels: spec.channels,
        sample_rate: spec.sample_rate,
    })
}

/// Writes 16-bit PCM.
pub fn write(path: &Path, audio: &AudioBuffer) -> Result<(), AudioError> {
    let fail = |e: hound::Error| AudioError::WriteWav {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: audio.channels,
        sample_rate: audio.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(fail)?;
    for &s in &audio.samples {
        writer
            .write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .map_err(fail)?;
    }
    writer.finalize().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_keeps_format_and_samples() {
        let dir = std::env::temp_dir().join(format!("sotto-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.wav");
        let audio = AudioBuffer {
            samples: vec![0.0, 0.5, -0.5, 0.25, 1.0, -1.0],
            channels: 2,
            sample_rate: 44_100,
        };
        write(&path, &audio).unwrap();
        let back = read(&path).unwrap();
        assert_eq!((back.channels, back.sample_rate), (2, 44_100));
        for (a, b) in audio.samples.iter().zip(&back.samples) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_wav_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("sotto-wav-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.wav");
        std::fs::write(&path, b"ID3 this is an mp3").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("cannot read the WAV file"), "{err}");
        let missing = read(&dir.join("none.wav")).unwrap_err().to_string();
        assert!(missing.contains("none.wav"), "{missing}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
