//! Piper voices (VITS, ONNX): phoneme ids in, 16-bit-range audio out, one sentence per
//! run. A run can be stopped midway: a watchdog thread sets ONNX Runtime's terminate flag
//! when the synthesis is cancelled.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sotto_models::ModelStore;
use sotto_onnx::ort::session::Session;
use sotto_onnx::ort::value::Tensor;
use unicode_normalization::UnicodeNormalization;

use crate::espeak::{self, Clause};
use crate::onnx_run::{run_cancellable, run_error};
use crate::{AudioChunk, CancellationToken, Tts, TtsError};

/// Ids of the markers Piper wraps every sentence in.
const BOS: char = '^';
const EOS: char = '$';
const PAD: char = '_';

#[derive(Debug, Deserialize)]
struct Config {
    audio: AudioConfig,
    espeak: EspeakConfig,
    inference: InferenceConfig,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Debug, Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakConfig {
    voice: String,
}

#[derive(Debug, Deserialize)]
struct InferenceConfig {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

/// A Piper voice, ready to speak.
pub struct PiperVoice {
    id: String,
    session: Session,
    config: Config,
    ids: HashMap<char, Vec<i64>>,
}

impl PiperVoice {
    /// Loads the voice `id` from the store (and ONNX Runtime with it), on `threads` threads.
    pub fn load(store: &ModelStore, id: &str, threads: usize) -> Result<PiperVoice, TtsError> {
        // The voice's files first: a missing or damaged voice says so, whatever the runtime.
        let model = store.require(id)?;
        let env = sotto_onnx::environment(store)?;
        let onnx = model.main_file();
        let json = model
            .files
            .iter()
            .find(|f| f.extension().is_some_and(|e| e == "json"))
            .ok_or_else(|| TtsError::Voice(format!("the voice {id} has no .onnx.json file")))?;
        let config = read_config(json)?;
        let session = sotto_onnx::open_session(&env, onnx, threads, sotto_onnx::Shapes::Varying)?;
        let mut ids = HashMap::new();
        for (phoneme, id) in &config.phoneme_id_map {
            let mut chars = phoneme.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                ids.insert(c, id.clone());
            }
        }
        for marker in [BOS, EOS, PAD] {
            if !ids.contains_key(&marker) {
                return Err(TtsError::Voice(format!(
                    "{} has no id for `{marker}`; it is not a Piper voice config",
                    json.display()
                )));
            }
        }
        Ok(PiperVoice {
            id: id.to_string(),
            session,
            config,
            ids,
        })
    }

    /// The phoneme ids of one sentence: `^`, each phoneme followed by a pad, `$`.
    fn sentence_ids(&self, phonemes: &str) -> Vec<i64> {
        let pad = &self.ids[&PAD];
        let mut out = self.ids[&BOS].clone();
        out.extend_from_slice(pad);
        for c in phonemes.nfd() {
            // Phonemes the voice never saw are skipped, as Piper itself does.
            if let Some(id) = self.ids.get(&c) {
                out.extend_from_slice(id);
                out.extend_from_slice(pad);
            }
        }
        out.extend_from_slice(&self.ids[&EOS]);
        out
    }

    fn run(
        &mut self,
        ids: Vec<i64>,
        speed: f32,
        cancel: &CancellationToken,
    ) -> Result<Option<Vec<f32>>, TtsError> {
        let inference = &self.config.inference;
        let length = ids.len();
        let scales = vec![
            inference.noise_scale,
            inference.length_scale / speed.clamp(0.25, 4.0),
            inference.noise_w,
        ];
        let input = Tensor::from_array(([1usize, length], ids)).map_err(run_error)?;
        let lengths = Tensor::from_array(([1usize], vec![length as i64])).map_err(run_error)?;
        let scales = Tensor::from_array(([3usize], scales)).map_err(run_error)?;
        let session = &mut self.session;
        run_cancellable(cancel, |options| {
            let outputs = session
                .run_with_options(
                    sotto_onnx::ort::inputs![
                        "input" => input,
                        "input_lengths" => lengths,
                        "scales" => scales,
                    ],
                    options,
                )
                .map_err(run_error)?;
            let (_, audio) = outputs["output"]
                .try_extract_tensor::<f32>()
                .map_err(run_error)?;
            Ok(audio.to_vec())
        })
    }
}

fn read_config(path: &Path) -> Result<Config, TtsError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TtsError::Voice(format!("cannot read {} ({e})", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        TtsError::Voice(format!(
            "{} is not a Piper voice config ({e}). Run `sotto models fetch` to repair it.",
            path.display()
        ))
    })
}

/// Groups clauses into sentences: phonemes joined with their punctuation, as Piper was
/// trained (a comma stays in the sentence; `.`, `?` and `!` end it).
pub fn sentences(clauses: &[Clause]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for clause in clauses {
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&clause.phonemes);
        if let Some(t) = clause.terminator {
            current.push(t);
        }
        if matches!(clause.terminator, Some('.' | '?' | '!')) {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl Tts for PiperVoice {
    fn voice_id(&self) -> &str {
        &self.id
    }

    fn sample_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }

    fn synthesize(
        &mut self,
        text: &str,
        speed: f32,
        cancel: &CancellationToken,
        on_chunk: &mut dyn FnMut(AudioChunk),
    ) -> Result<(), TtsError> {
        let clauses = espeak::phonemize(text, &self.config.espeak.voice)?;
        for sentence in sentences(&clauses) {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let ids = self.sentence_ids(&sentence);
            match self.run(ids, speed, cancel)? {
                Some(samples) => on_chunk(AudioChunk {
                    samples,
                    sample_rate: self.config.audio.sample_rate,
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
    fn clauses_join_into_sentences_with_their_punctuation() {
        let clause = |p: &str, t: Option<char>| Clause {
            phonemes: p.into(),
            terminator: t,
        };
        let got = sentences(&[
            clause("həlˈoʊ", Some(',')),
            clause("wˈɜːld", Some('.')),
            clause("hˈaɪ", None),
        ]);
        assert_eq!(got, ["həlˈoʊ, wˈɜːld.", "hˈaɪ"]);
    }
}
