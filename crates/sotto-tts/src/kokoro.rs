//! Kokoro-82M (v1.0, int8 ONNX): the premium voices. 54 speakers share one model; each is
//! a table of style vectors (float32 [510, 1, 256]) picked by the length of the phoneme
//! sequence. Slower than Piper, and more natural.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sotto_models::ModelStore;
use sotto_onnx::ort::session::Session;
use sotto_onnx::ort::value::Tensor;
use sotto_onnx::ort::value::TensorElementType;

use crate::espeak;
use crate::onnx_run::{run_cancellable, run_error};
use crate::piper::sentences;
use crate::{AudioChunk, CancellationToken, Tts, TtsError};

/// The store id of the Kokoro model and its voices.
pub const KOKORO_MODEL: &str = "kokoro-82m-int8";

/// The speaker used when none is chosen.
pub const DEFAULT_SPEAKER: &str = "af_heart";

/// Kokoro speaks at 24 kHz.
pub const SAMPLE_RATE: u32 = 24_000;

/// The longest phoneme sequence one run takes (the style table has 510 rows).
const MAX_PHONEMES: usize = 510;

/// Floats per style vector.
const STYLE: usize = 256;

/// A Kokoro speaker, ready to speak.
pub struct KokoroVoice {
    id: String,
    session: Session,
    vocab: HashMap<char, i64>,
    styles: Vec<f32>,
    language: &'static str,
    /// The model's speed input is a float in v1.0 ("tokens"); int32 in older exports.
    int_speed: bool,
    token_input: String,
}

/// The espeak-ng language for a speaker, from the first letter of its name (a: American
/// English, b: British English, e: Spanish, f: French, h: Hindi, i: Italian, j: Japanese,
/// p: Brazilian Portuguese, z: Mandarin).
pub fn speaker_language(speaker: &str) -> Option<&'static str> {
    Some(match speaker.chars().next()? {
        'a' => "en-us",
        'b' => "en-gb",
        'e' => "es",
        'f' => "fr-fr",
        'h' => "hi",
        'i' => "it",
        'j' => "ja",
        'p' => "pt-br",
        'z' => "cmn",
        _ => return None,
    })
}

/// The speakers installed with the model.
pub fn speakers(store: &ModelStore) -> Result<Vec<String>, TtsError> {
    let model = store.require(KOKORO_MODEL)?;
    Ok(model
        .files
        .iter()
        .filter_map(|f| {
            f.file_name()?
                .to_str()?
                .strip_prefix("voice-")?
                .strip_suffix(".bin")
        })
        .map(str::to_string)
        .collect())
}

impl KokoroVoice {
    /// Loads the model and the speaker `speaker` (e.g. `af_heart`), on `threads` threads.
    pub fn load(
        store: &ModelStore,
        speaker: &str,
        threads: usize,
    ) -> Result<KokoroVoice, TtsError> {
        let model = store.require(KOKORO_MODEL)?;
        let language = speaker_language(speaker)
            .ok_or_else(|| TtsError::Voice(format!("`{speaker}` is not a Kokoro speaker name")))?;
        let file = |name: &str| -> Result<PathBuf, TtsError> {
            model
                .files
                .iter()
                .find(|f| f.file_name().is_some_and(|n| n == name))
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<String> = speakers(store).unwrap_or_default();
                    TtsError::Voice(format!(
                        "Kokoro has no speaker `{speaker}`; it has {}",
                        known.join(", ")
                    ))
                })
        };
        let styles = read_styles(&file(&format!("voice-{speaker}.bin"))?)?;
        let vocab = read_vocab(&file("vocab.json")?)?;
        let env = sotto_onnx::environment(store)?;
        let session = sotto_onnx::open_session(
            &env,
            model.main_file(),
            threads,
            sotto_onnx::Shapes::Varying,
        )?;
        let token_input = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .find(|n| n == "tokens" || n == "input_ids")
            .ok_or_else(|| TtsError::Voice("this Kokoro model has no `tokens` input".into()))?;
        let int_speed = session.inputs().iter().any(|i| {
            i.name() == "speed" && i.dtype().tensor_type() == Some(TensorElementType::Int32)
        });
        Ok(KokoroVoice {
            id: format!("{KOKORO_MODEL}/{speaker}"),
            session,
            vocab,
            styles,
            language,
            int_speed,
            token_input,
        })
    }

    /// Token ids for one sentence of phonemes (at most 510; longer ones are cut).
    fn tokens(&self, phonemes: &str) -> Vec<i64> {
        kokoro_phonemes(phonemes)
            .chars()
            .filter_map(|c| self.vocab.get(&c).copied())
            .take(MAX_PHONEMES)
            .collect()
    }

    fn run(
        &mut self,
        ids: Vec<i64>,
        speed: f32,
        cancel: &CancellationToken,
    ) -> Result<Option<Vec<f32>>, TtsError> {
        let row = ids.len().min(MAX_PHONEMES - 1);
        let style = self.styles[row * STYLE..(row + 1) * STYLE].to_vec();
        let mut tokens = Vec::with_capacity(ids.len() + 2);
        tokens.push(0);
        tokens.extend(ids);
        tokens.push(0);
        let length = tokens.len();
        let tokens = Tensor::from_array(([1usize, length], tokens)).map_err(run_error)?;
        let style = Tensor::from_array(([1usize, STYLE], style)).map_err(run_error)?;
        let speed = speed.clamp(0.25, 4.0);
        let speed_value = if self.int_speed {
            Tensor::from_array(([1usize], vec![speed.round() as i32]))
                .map_err(run_error)?
                .into_dyn()
        } else {
            Tensor::from_array(([1usize], vec![speed]))
                .map_err(run_error)?
                .into_dyn()
        };
        let token_input = self.token_input.clone();
        let session = &mut self.session;
        run_cancellable(cancel, |options| {
            let outputs = session
                .run_with_options(
                    sotto_onnx::ort::inputs![
                        token_input => tokens,
                        "style" => style,
                        "speed" => speed_value,
                    ],
                    options,
                )
                .map_err(run_error)?;
            let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(run_error)?;
            Ok(audio.iter().map(|s| s.clamp(-1.0, 1.0)).collect())
        })
    }
}

/// espeak-ng's IPA as Kokoro was trained on it (the substitutions of Kokoro's own
/// phonemizer).
fn kokoro_phonemes(ipa: &str) -> String {
    ipa.replace('ʲ', "j")
        .replace('r', "ɹ")
        .replace('x', "k")
        .replace('ɬ', "l")
}

fn read_styles(path: &Path) -> Result<Vec<f32>, TtsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TtsError::Voice(format!("cannot read {} ({e})", path.display())))?;
    if bytes.len() != MAX_PHONEMES * STYLE * 4 {
        return Err(TtsError::Voice(format!(
            "{} is not a Kokoro voice ({} bytes). Run `sotto models fetch {KOKORO_MODEL}` to repair it.",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn read_vocab(path: &Path) -> Result<HashMap<char, i64>, TtsError> {
    #[derive(serde::Deserialize)]
    struct Vocab {
        vocab: HashMap<String, i64>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| TtsError::Voice(format!("cannot read {} ({e})", path.display())))?;
    let vocab: Vocab = serde_json::from_str(&text).map_err(|e| {
        TtsError::Voice(format!(
            "{} is not Kokoro's vocabulary ({e}). Run `sotto models fetch {KOKORO_MODEL}` to repair it.",
            path.display()
        ))
    })?;
    Ok(vocab
        .vocab
        .into_iter()
        .filter_map(|(k, v)| {
            let mut chars = k.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some((c, v)),
                _ => None,
            }
        })
        .collect())
}

impl Tts for KokoroVoice {
    fn voice_id(&self) -> &str {
        &self.id
    }

    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    fn synthesize(
        &mut self,
        text: &str,
        speed: f32,
        cancel: &CancellationToken,
        on_chunk: &mut dyn FnMut(AudioChunk),
    ) -> Result<(), TtsError> {
        let clauses = espeak::phonemize(text, self.language)?;
        for sentence in sentences(&clauses) {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let ids = self.tokens(&sentence);
            if ids.is_empty() {
                continue;
            }
            match self.run(ids, speed, cancel)? {
                Some(samples) => on_chunk(AudioChunk {
                    samples,
                    sample_rate: SAMPLE_RATE,
                }),
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_speaker_prefix_has_a_language() {
        for s in [
            "af_heart",
            "bm_george",
            "ef_dora",
            "ff_siwis",
            "hf_alpha",
            "if_sara",
            "jf_alpha",
            "pf_dora",
            "zf_xiaobei",
        ] {
            assert!(speaker_language(s).is_some(), "{s}");
        }
        assert_eq!(speaker_language("xx"), None);
    }

    #[test]
    fn espeak_ipa_is_mapped_to_kokoro_symbols() {
        assert_eq!(kokoro_phonemes("rˈɛd"), "ɹˈɛd");
    }
}
