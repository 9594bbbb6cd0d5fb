//! Recognises model formats from their first bytes, so a damaged or wrong file is refused
//! with a clear message before any native library (llama.cpp, whisper.cpp, ONNX Runtime)
//! is asked to parse it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::manifest::FileFormat;

/// The magic number that opens a whisper.cpp model ("ggml" as a little-endian u32).
pub const WHISPER_GGML_MAGIC: u32 = 0x6767_6d6c;

/// Checks that the file at `path` looks like `format`. Returns a reason on failure.
pub fn check(path: &Path, format: FileFormat) -> Result<(), String> {
    let mut head = Vec::with_capacity(64);
    File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|e| format!("cannot read it ({e})"))?;
    match format {
        FileFormat::Gguf => check_gguf(&head),
        FileFormat::WhisperGgml => check_whisper_ggml(&head),
        FileFormat::Ct2Whisper => check_ct2(&head),
        FileFormat::Onnx => check_onnx(&head),
        FileFormat::Elf => expect_prefix(&head, b"\x7fELF", "an ELF shared library"),
        FileFormat::Wav => {
            expect_prefix(&head, b"RIFF", "a WAV file")?;
            if head.get(8..12) == Some(b"WAVE") {
                Ok(())
            } else {
                Err("it is a RIFF file but not WAVE audio".into())
            }
        }
        FileFormat::F32 => check_f32(&head),
        FileFormat::Json => {
            let text = std::fs::read(path).map_err(|e| format!("cannot read it ({e})"))?;
            serde_json::from_slice::<serde_json::Value>(&text)
                .map(|_| ())
                .map_err(|e| format!("it is not valid JSON ({e})"))
        }
    }
}

/// Raw float32 data: whole numbers of floats, all finite and of a sane size (text or
/// an HTML error page read as floats gives huge or NaN values).
fn check_f32(head: &[u8]) -> Result<(), String> {
    if head.len() < 4 {
        return Err("it is too short to hold float32 values".into());
    }
    let sane = head
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .all(|v| v.is_finite() && v.abs() < 1.0e4);
    if sane {
        Ok(())
    } else {
        Err("it does not hold float32 values".into())
    }
}

fn expect_prefix(head: &[u8], magic: &[u8], what: &str) -> Result<(), String> {
    if head.starts_with(magic) {
        Ok(())
    } else {
        Err(format!("it does not start like {what}"))
    }
}

fn u32_at(head: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(head.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(head: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(head.get(at..at + 8)?.try_into().ok()?))
}

fn check_gguf(head: &[u8]) -> Result<(), String> {
    expect_prefix(head, b"GGUF", "a GGUF model")?;
    let version = u32_at(head, 4).ok_or("its GGUF header is truncated")?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "GGUF version {version} is not supported (2 or 3 expected)"
        ));
    }
    let tensors = u64_at(head, 8).ok_or("its GGUF header is truncated")?;
    let kvs = u64_at(head, 16).ok_or("its GGUF header is truncated")?;
    if tensors == 0 || tensors > 1_000_000 || kvs > 1_000_000 {
        return Err(format!(
            "its GGUF header is implausible ({tensors} tensors, {kvs} keys)"
        ));
    }
    Ok(())
}

/// The size of a whisper.cpp model, from its header: which model of the family it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperShape {
    /// Vocabulary size: 51,864 for the English-only models, more for the multilingual.
    pub n_vocab: u32,
    /// Width of the text decoder.
    pub text_state: u32,
    /// Layers of the text decoder.
    pub text_layer: u32,
    /// Mel bands of the input (80, or 128 for large-v3).
    pub n_mels: u32,
}

impl WhisperShape {
    /// Whether it is an English-only model (tiny.en, base.en, ...).
    pub fn english_only(&self) -> bool {
        self.n_vocab == 51_864
    }
}

/// Reads the shape of the whisper.cpp model at `path` (after the same checks as
/// [`check`]).
pub fn whisper_shape(path: &Path) -> Result<WhisperShape, String> {
    let mut head = Vec::with_capacity(64);
    File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|e| format!("cannot read it ({e})"))?;
    check_whisper_ggml(&head)?;
    let at = |i: usize| u32_at(&head, 4 + 4 * i).unwrap_or(0);
    Ok(WhisperShape {
        n_vocab: at(0),
        text_state: at(6),
        text_layer: at(8),
        n_mels: at(9),
    })
}

fn check_whisper_ggml(head: &[u8]) -> Result<(), String> {
    if u32_at(head, 0) != Some(WHISPER_GGML_MAGIC) {
        return Err("it does not start like a whisper.cpp ggml model".into());
    }
    let hp: Vec<u32> = (0..11).filter_map(|i| u32_at(head, 4 + 4 * i)).collect();
    let [n_vocab, audio_ctx, audio_state, audio_head, audio_layer, text_ctx, text_state, text_head, text_layer, n_mels, ftype] =
        hp[..]
    else {
        return Err("its header is truncated".into());
    };
    let plausible = (50_000..=60_000).contains(&n_vocab)
        && (1..=4096).contains(&audio_ctx)
        && text_ctx > 0
        && audio_state > 0
        && text_state > 0
        && audio_head > 0
        && text_head > 0
        && (1..=64).contains(&audio_layer)
        && (1..=64).contains(&text_layer)
        && matches!(n_mels, 80 | 128)
        && ftype < 64;
    if plausible {
        Ok(())
    } else {
        Err(format!("its hyper-parameters are implausible ({hp:?})"))
    }
}

fn check_ct2(head: &[u8]) -> Result<(), String> {
    let version = u32_at(head, 0).ok_or("it is truncated")?;
    if version != 6 {
        return Err(format!(
            "CTranslate2 binary version {version} is not supported (6 expected)"
        ));
    }
    let len = head
        .get(4..6)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let name = len.and_then(|n| head.get(6..6 + n.saturating_sub(1)));
    if name == Some(b"WhisperSpec") {
        Ok(())
    } else {
        Err("it is a CTranslate2 model, but not a Whisper model".into())
    }
}

fn check_onnx(head: &[u8]) -> Result<(), String> {
    // An ONNX ModelProto opens with field 1 (ir_version) as a varint: tag byte 0x08.
    match head {
        [0x08, v, ..] if (3..=20).contains(v) => Ok(()),
        _ => Err("it does not start like an ONNX model".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    #[test]
    fn a_text_file_is_no_model_of_any_kind() {
        let f = file_with(b"<html>404 Not Found</html>");
        for format in [
            FileFormat::Gguf,
            FileFormat::WhisperGgml,
            FileFormat::Ct2Whisper,
            FileFormat::Onnx,
            FileFormat::Elf,
            FileFormat::Wav,
            FileFormat::Json,
        ] {
            assert!(check(f.path(), format).is_err(), "{format:?} accepted HTML");
        }
    }

    #[test]
    fn gguf_headers_are_read() {
        let mut good = b"GGUF".to_vec();
        good.extend(3u32.to_le_bytes());
        good.extend(272u64.to_le_bytes());
        good.extend(30u64.to_le_bytes());
        assert_eq!(check(file_with(&good).path(), FileFormat::Gguf), Ok(()));
        let err = check(file_with(&good[..10]).path(), FileFormat::Gguf).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn a_whisper_header_tells_the_model_size() {
        // tiny.en: vocabulary 51864, audio ctx 1500, state 384, 6 heads, 4 layers (both
        // sides), 80 mels, f16.
        let hp: [u32; 11] = [51_864, 1_500, 384, 6, 4, 448, 384, 6, 4, 80, 1];
        let mut bytes = WHISPER_GGML_MAGIC.to_le_bytes().to_vec();
        for v in hp {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let f = file_with(&bytes);
        let shape = whisper_shape(f.path()).expect("a whisper header");
        assert_eq!(
            (shape.text_state, shape.text_layer, shape.n_mels),
            (384, 4, 80)
        );
        assert!(shape.english_only());
        assert!(whisper_shape(file_with(b"not a model").path()).is_err());
    }

    #[test]
    fn an_empty_file_is_refused() {
        let f = file_with(b"");
        assert!(check(f.path(), FileFormat::WhisperGgml).is_err());
        assert!(check(f.path(), FileFormat::Onnx).is_err());
    }
}
