//! Sentence embeddings with all-MiniLM-L6-v2 (int8 ONNX): BERT's uncased WordPiece
//! tokenizer, the model, mean pooling over the real tokens, unit length. Two questions
//! that mean the same thing land close together (cosine similarity near 1).

use std::collections::HashMap;
use std::path::Path;

use sotto_models::ModelStore;
use sotto_onnx::ort::session::Session;
use sotto_onnx::ort::value::Tensor;
use sotto_onnx::OnnxError;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The store id of the embedding model.
pub const EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

/// Tokens per input, [CLS] and [SEP] included (the model's training length).
const MAX_TOKENS: usize = 128;

/// BERT's uncased WordPiece tokenizer, read from a `tokenizer.json`.
pub struct WordPiece {
    vocab: HashMap<String, i64>,
    cls: i64,
    sep: i64,
    unk: i64,
}

impl WordPiece {
    /// Reads the vocabulary of a Hugging Face `tokenizer.json` (WordPiece model).
    pub fn load(path: &Path) -> Result<WordPiece, OnnxError> {
        let damaged = |why: String| {
            OnnxError::Model(format!(
                "{} is not a WordPiece tokenizer ({why}). Run `sotto models fetch {EMBEDDING_MODEL}` to repair it.",
                path.display()
            ))
        };
        let text = std::fs::read_to_string(path).map_err(|e| damaged(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        let vocab: HashMap<String, i64> = json
            .pointer("/model/vocab")
            .and_then(|v| v.as_object())
            .ok_or_else(|| damaged("no model.vocab".into()))?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
            .collect();
        let id = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| damaged(format!("no {token}")))
        };
        Ok(WordPiece {
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            unk: id("[UNK]")?,
            vocab,
        })
    }

    /// Token ids of `text`: [CLS], the word pieces, [SEP]; at most 128.
    pub fn encode(&self, text: &str) -> Vec<i64> {
        let mut ids = vec![self.cls];
        'words: for word in basic_tokens(text) {
            if word.chars().count() > 100 {
                ids.push(self.unk);
                continue;
            }
            // Greedy longest match, continuing pieces prefixed with ##.
            let chars: Vec<char> = word.chars().collect();
            let mut start = 0;
            let mut pieces = Vec::new();
            while start < chars.len() {
                let mut end = chars.len();
                let mut found = None;
                while end > start {
                    let mut piece: String = chars[start..end].iter().collect();
                    if start > 0 {
                        piece.insert_str(0, "##");
                    }
                    if let Some(&id) = self.vocab.get(&piece) {
                        found = Some(id);
                        break;
                    }
                    end -= 1;
                }
                match found {
                    Some(id) => {
                        pieces.push(id);
                        start = end;
                    }
                    None => {
                        ids.push(self.unk);
                        continue 'words;
                    }
                }
            }
            ids.extend(pieces);
        }
        ids.truncate(MAX_TOKENS - 1);
        ids.push(self.sep);
        ids
    }
}

/// BERT's basic tokenization: clean, lowercase, strip accents, split on whitespace and
/// around punctuation (and around each CJK character).
fn basic_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, tokens: &mut Vec<String>| {
        if !current.is_empty() {
            tokens.push(std::mem::take(current));
        }
    };
    for c in text.nfd().filter(|c| !is_combining_mark(*c)) {
        if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
            continue;
        }
        if c.is_whitespace() {
            flush(&mut current, &mut tokens);
        } else if is_punctuation(c) || is_cjk(c) {
            flush(&mut current, &mut tokens);
            tokens.push(c.to_string());
        } else {
            current.extend(c.to_lowercase());
        }
    }
    flush(&mut current, &mut tokens);
    tokens
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || (!c.is_alphanumeric() && !c.is_whitespace() && (c as u32) < 0x3000 && !c.is_control())
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF)
}

/// The MiniLM sentence embedder.
pub struct Embedder {
    tokenizer: WordPiece,
    session: Session,
}

impl Embedder {
    /// Loads the model from the store (and ONNX Runtime with it).
    pub fn load(store: &ModelStore) -> Result<Embedder, OnnxError> {
        let model = store.require(EMBEDDING_MODEL)?;
        let tokenizer_path = model
            .files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n == "tokenizer.json"))
            .ok_or_else(|| OnnxError::Model(format!("{EMBEDDING_MODEL} has no tokenizer.json")))?;
        let tokenizer = WordPiece::load(tokenizer_path)?;
        let env = sotto_onnx::environment(store)?;
        // One thread: a question is a few dozen tokens, and the other core is busy.
        let session =
            sotto_onnx::open_session(&env, model.main_file(), 1, sotto_onnx::Shapes::Varying)?;
        Ok(Embedder { tokenizer, session })
    }

    /// The unit-length embedding of `text` (384 numbers).
    pub fn embed(&mut self, text: &str) -> Result<Vec<f32>, OnnxError> {
        let ids = self.tokenizer.encode(text);
        let n = ids.len();
        let input_ids = Tensor::from_array(([1usize, n], ids))?;
        let mask = Tensor::from_array(([1usize, n], vec![1i64; n]))?;
        let types = Tensor::from_array(([1usize, n], vec![0i64; n]))?;
        let outputs = self.session.run(sotto_onnx::ort::inputs![
            "input_ids" => input_ids,
            "attention_mask" => mask,
            "token_type_ids" => types,
        ])?;
        let (shape, hidden) = outputs[0].try_extract_tensor::<f32>()?;
        let width = shape.last().copied().unwrap_or(0) as usize;
        if width == 0 || hidden.len() != n * width {
            return Err(OnnxError::Run(
                "the embedding model gave an unexpected shape".into(),
            ));
        }
        let mut mean = vec![0f32; width];
        for token in hidden.chunks_exact(width) {
            for (m, v) in mean.iter_mut().zip(token) {
                *m += v / n as f32;
            }
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        Ok(mean.into_iter().map(|v| v / norm).collect())
    }
}

/// Cosine similarity of two unit-length vectors.
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_tokens_lowercase_strip_accents_and_split_punctuation() {
        assert_eq!(
            basic_tokens("Héllo, WORLD! What's the time?"),
            ["hello", ",", "world", "!", "what", "'", "s", "the", "time", "?"]
        );
    }
}
