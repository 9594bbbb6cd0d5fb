//! Instant answers: a user-editable list of intents (example phrases and the answer), and
//! the matcher that finds the intent a question means, by embedding similarity.

use std::path::Path;

use serde::Deserialize;

use crate::embed::{similarity, Embedder};

/// The intents Sotto starts with; written to the user's intents file the first time, to
/// edit freely.
pub const DEFAULT_INTENTS: &str = r#"# Sotto's instant answers: questions answered at once, without the language model.
# Each intent lists example phrases; a question that means the same as one of them
# (similarity at least `threshold`, 0..1) gets the intent's answer, spoken from
# pre-made audio.
threshold = 0.75

[[intent]]
name = "greeting"
phrases = ["hello", "hi there", "good morning", "hey Sotto"]
answer = "Hello! What can I do for you?"

[[intent]]
name = "thanks"
phrases = ["thank you", "thanks", "thank you very much", "thanks a lot", "that helps, thanks"]
answer = "You're welcome."

[[intent]]
name = "identity"
phrases = ["who are you", "what is your name", "what are you"]
answer = "I'm Sotto, a voice assistant that runs on your own computer."

[[intent]]
name = "abilities"
phrases = ["what can you do", "how can you help me", "what are you able to do"]
answer = "I can answer questions and talk things through with you. Just ask."
"#;

/// One intent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Intent {
    /// A short name, for logs.
    pub name: String,
    /// Example phrases that mean this intent.
    pub phrases: Vec<String>,
    /// What Sotto answers.
    pub answer: String,
}

/// The intents file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Intents {
    /// The lowest similarity that counts as a match.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// The intents.
    #[serde(default, rename = "intent")]
    pub intents: Vec<Intent>,
}

fn default_threshold() -> f32 {
    0.75
}

/// What is compared: words only. Punctuation and case say nothing about which intent a
/// question means, yet move MiniLM's embedding ("Who are you?" and "who are you" are
/// only 0.82 alike as written).
fn words_only(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Why the intents file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntentsError {
    /// The file could not be read.
    #[error("cannot read the instant answers in {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not valid.
    #[error("the instant answers in {path} are not valid ({reason}); fix the file or delete it to get the defaults back")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The embedding model failed.
    #[error("instant answers are off: {0}")]
    Model(String),
}

impl Intents {
    /// Parses an intents file's text.
    pub fn parse(text: &str, path: &Path) -> Result<Intents, IntentsError> {
        let intents: Intents = toml::from_str(text).map_err(|e| IntentsError::Invalid {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if !(0.0..=1.0).contains(&intents.threshold) {
            return Err(IntentsError::Invalid {
                path: path.display().to_string(),
                reason: format!("threshold {} is not between 0 and 1", intents.threshold),
            });
        }
        Ok(intents)
    }

    /// Reads the intents file at `path`, creating it with [`DEFAULT_INTENTS`] if absent.
    pub fn load_or_create(path: &Path) -> Result<Intents, IntentsError> {
        let read_error = |e: std::io::Error| IntentsError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(read_error)?;
            }
            std::fs::write(path, DEFAULT_INTENTS).map_err(read_error)?;
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Intents::parse(&text, path)
    }
}

/// A matched intent.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Which intent (index into the list).
    pub intent: usize,
    /// How similar the question was to the closest phrase.
    pub similarity: f32,
}

/// The intents with their phrases embedded, ready to match questions.
pub struct Matcher {
    embedder: Embedder,
    phrases: Vec<(usize, Vec<f32>)>,
    threshold: f32,
}

impl Matcher {
    /// Embeds every phrase of `intents`.
    pub fn new(mut embedder: Embedder, intents: &Intents) -> Result<Matcher, IntentsError> {
        let mut phrases = Vec::new();
        for (i, intent) in intents.intents.iter().enumerate() {
            for phrase in &intent.phrases {
                let vector = embedder
                    .embed(&words_only(phrase))
                    .map_err(|e| IntentsError::Model(e.to_string()))?;
                phrases.push((i, vector));
            }
        }
        Ok(Matcher {
            embedder,
            phrases,
            threshold: intents.threshold,
        })
    }

    /// The intent `question` means, if one is close enough.
    pub fn find(&mut self, question: &str) -> Result<Option<Match>, IntentsError> {
        let q = self
            .embedder
            .embed(&words_only(question))
            .map_err(|e| IntentsError::Model(e.to_string()))?;
        let best = self
            .phrases
            .iter()
            .map(|(i, v)| (*i, similarity(&q, v)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        Ok(best
            .filter(|(_, s)| *s >= self.threshold)
            .map(|(intent, similarity)| Match { intent, similarity }))
    }
}

/// Answers some questions at once, from audio made ahead of time, without the language
/// model.
pub trait InstantSource: Send {
    /// The answer and its audio, if `question` is one it knows.
    fn answer(&mut self, question: &str) -> Option<(String, sotto_tts::AudioChunk)>;
}

impl InstantSource for InstantAnswers {
    fn answer(&mut self, question: &str) -> Option<(String, sotto_tts::AudioChunk)> {
        InstantAnswers::answer(self, question)
    }
}

/// Instant answers ready to play: the matcher and each intent's answer, spoken ahead of
/// time in the assistant's voice.
pub struct InstantAnswers {
    matcher: Matcher,
    answers: Vec<(String, sotto_tts::AudioChunk)>,
}

impl InstantAnswers {
    /// Embeds the phrases of `intents` and speaks every answer with `voice` (from `cache`
    /// when it was spoken before).
    pub fn prepare(
        embedder: Embedder,
        intents: &Intents,
        voice: &mut dyn sotto_tts::Tts,
        speed: f32,
        cache: Option<&sotto_tts::cache::TtsCache>,
    ) -> Result<InstantAnswers, IntentsError> {
        let matcher = Matcher::new(embedder, intents)?;
        let mut answers = Vec::new();
        for intent in &intents.intents {
            let cached = cache.and_then(|c| {
                c.get(voice.voice_id(), speed, &intent.answer)
                    .ok()
                    .flatten()
            });
            let audio = match cached {
                Some(audio) => audio,
                None => {
                    let audio = voice
                        .synthesize_all(&intent.answer, speed)
                        .map_err(|e| IntentsError::Model(e.to_string()))?;
                    if let Some(c) = cache {
                        let _ = c.put(voice.voice_id(), speed, &intent.answer, &audio);
                    }
                    audio
                }
            };
            answers.push((intent.answer.clone(), audio));
        }
        Ok(InstantAnswers { matcher, answers })
    }

    /// The answer and its audio, if `question` means one of the intents.
    pub fn answer(&mut self, question: &str) -> Option<(String, sotto_tts::AudioChunk)> {
        match self.matcher.find(question) {
            Ok(Some(m)) => self.answers.get(m.intent).cloned(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_intents_parse() {
        let intents = Intents::parse(DEFAULT_INTENTS, Path::new("intents.toml")).expect("valid");
        assert_eq!(intents.intents.len(), 4);
        assert!((intents.threshold - 0.75).abs() < 1e-6);
        assert_eq!(
            words_only("Who are you?!  What's up"),
            "who are you what's up"
        );
    }

    #[test]
    fn a_broken_file_says_how_to_get_the_defaults_back() {
        let error = Intents::parse("threshold = 2.0", Path::new("x.toml")).expect_err("range");
        assert!(error.to_string().contains("delete it"), "{error}");
        let error = Intents::parse("[[intent]]\nname = 3", Path::new("x.toml")).expect_err("type");
        assert!(matches!(error, IntentsError::Invalid { .. }));
    }
}
