//! Speech to text with whisper.cpp (through whisper-rs), in this process.
//!
//! [`WhisperStt::load`] takes a verified model from the [`sotto_models::ModelStore`], so a
//! missing or damaged file is refused with a repair hint before whisper.cpp reads it.
//! [`WhisperStt::transcribe`] runs on the caller's thread (call it from a blocking
//! thread) and stops early when its [`CancelFlag`] is raised.

pub mod partial;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Serialize;
use sotto_models::{FileFormat, ModelError, ModelStore};
use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters,
};

/// Whisper's input sample rate: transcribe() takes 16 kHz mono f32 samples.
pub const SAMPLE_RATE: u32 = 16_000;

/// Why speech could not be turned into text.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    /// The model is missing or damaged (the message says how to repair it).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// whisper.cpp refused the model file.
    #[error("whisper.cpp could not load {path}: {reason}. Run `sotto models fetch` to repair it.")]
    Load {
        /// The model file.
        path: String,
        /// whisper.cpp's reason.
        reason: String,
    },
    /// Transcription failed.
    #[error("transcription failed: {0}")]
    Inference(String),
    /// Transcription was cancelled by the caller.
    #[error("transcription was cancelled")]
    Cancelled,
}

/// Transcription settings.
#[derive(Debug, Clone)]
pub struct SttConfig {
    /// Spoken language ("en"), or "auto" to detect it (multilingual models only).
    pub language: String,
    /// CPU threads whisper.cpp may use.
    pub threads: usize,
    /// Encoder context in frames of 20 ms (1500 = whisper's full 30 s window). Smaller
    /// is faster for short utterances; `None` picks [`auto_audio_ctx`].
    pub audio_ctx: Option<u32>,
}

impl Default for SttConfig {
    fn default() -> Self {
        SttConfig {
            language: "en".into(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            audio_ctx: None,
        }
    }
}

/// The smallest encoder context that does not cost accuracy (measured with
/// `cargo xtask bench stt`, docs/BENCHMARKS.md).
pub const MIN_AUDIO_CTX: u32 = 384;

/// The encoder context `None` means: the clip plus one second, but never below
/// [`MIN_AUDIO_CTX`] (tighter contexts make tiny.en loop on its own words) nor above
/// whisper's full 1500.
pub fn auto_audio_ctx(samples: usize) -> u32 {
    let frames = samples / (SAMPLE_RATE as usize / 50) + 50;
    (frames as u32).clamp(MIN_AUDIO_CTX, 1500)
}

/// The most tokens a decode of `samples` may write: twice a fast speaker's rate, and
/// never under 32 (short clips of fast speech).
pub fn max_tokens(samples: usize) -> i32 {
    let seconds = samples / SAMPLE_RATE as usize + 1;
    (seconds * 10).clamp(32, 2_000) as i32
}

/// One timed piece of a transcript.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Segment {
    /// Start, in milliseconds from the beginning of the audio.
    pub start_ms: u64,
    /// End, in milliseconds.
    pub end_ms: u64,
    /// The words.
    pub text: String,
}

/// One recognised word and where it lies in the audio.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Word {
    /// The word as written, with its punctuation ("Paris.").
    pub text: String,
    /// Start, in milliseconds from the beginning of the audio.
    pub start_ms: u64,
    /// End, in milliseconds. [`UNTIMED`] when the recogniser cannot tell.
    pub end_ms: u64,
}

/// The end of a [`Word`] whose time the recogniser does not know.
pub const UNTIMED: u64 = u64::MAX;

/// The result of one transcription.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Transcript {
    /// The whole text, trimmed.
    pub text: String,
    /// Timed segments.
    pub segments: Vec<Segment>,
    /// The words of `text` with their times (empty from a recogniser that cannot time
    /// words).
    pub words: Vec<Word>,
    /// Wall time the transcription took, in milliseconds.
    pub elapsed_ms: u64,
    /// Length of the audio, in milliseconds.
    pub audio_ms: u64,
}

/// Raised by another thread to stop a transcription early.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// Asks the transcription to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// whisper.cpp's abort callback: `user_data` is the `AtomicBool` of a [`CancelFlag`].
unsafe extern "C" fn abort_when_cancelled(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: set up in `transcribe`, which outlives every call of this callback.
    let flag = unsafe { &*(user_data as *const AtomicBool) };
    flag.load(Ordering::SeqCst)
}

/// Speech to text: what the voice turn needs of a recogniser. [`WhisperStt`] is the real
/// one; tests give the orchestrator a scripted one (`sotto_core::fakes`).
pub trait SpeechToText: Send + Sync {
    /// Transcribes 16 kHz mono samples in [-1, 1] that follow the words in `prompt`
    /// (already recognised, empty at the start of an utterance) on the caller's thread.
    /// The prompt is context, not audio: it is not repeated in the result, and the
    /// words' times count from the first of `samples`. Stops early (with
    /// [`SttError::Cancelled`]) once `cancel` is raised.
    fn transcribe_after(
        &self,
        samples: &[f32],
        prompt: &str,
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError>;

    /// Transcribes 16 kHz mono samples with nothing before them.
    fn transcribe(&self, samples: &[f32], cancel: &CancelFlag) -> Result<Transcript, SttError> {
        self.transcribe_after(samples, "", cancel)
    }

    /// [`SpeechToText::transcribe_after`] for a caller that does not use the words'
    /// times: they may be rough (whisper's own, off by up to seconds), and the decode
    /// faster. The same words otherwise.
    fn transcribe_untimed_after(
        &self,
        samples: &[f32],
        prompt: &str,
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        self.transcribe_after(samples, prompt, cancel)
    }
}

impl SpeechToText for WhisperStt {
    fn transcribe_after(
        &self,
        samples: &[f32],
        prompt: &str,
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        self.decode(samples, prompt, cancel)
    }

    fn transcribe_untimed_after(
        &self,
        samples: &[f32],
        prompt: &str,
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        self.decode_untimed(samples, prompt, cancel)
    }
}

/// A loaded whisper.cpp model.
pub struct WhisperStt {
    /// The model without the alignment heads: every decode whose word times are not
    /// used ([`SpeechToText::transcribe_untimed_after`]).
    ctx: WhisperContext,
    /// The model again with the alignment heads (DTW over the cross-attention): word
    /// times good to tens of ms, where whisper's own can be off by seconds. Loaded by the
    /// first decode that needs them (an utterance past 8 s, a transcription with word
    /// times): DTW costs about a quarter of a short decode (a second decoder pass over
    /// every token), whisper.cpp turns it on per model, not per call, and the second copy
    /// costs about the model's size in memory (+102 MiB peak measured with tiny.en).
    /// `None` inside when loading it failed (whisper's own times then).
    timed: OnceLock<Option<WhisperContext>>,
    /// The heads whisper.cpp knows for this model; `None`: whisper's own times always.
    heads: Option<DtwModelPreset>,
    /// The model file, for `timed`.
    path: PathBuf,
    config: SttConfig,
}

/// Loads the whisper.cpp model at `path`, with the alignment `heads` when given.
fn load_context(path: &Path, heads: Option<DtwModelPreset>) -> Result<WhisperContext, SttError> {
    let mut params = WhisperContextParameters::default();
    if let Some(model_preset) = heads {
        params.dtw_parameters(DtwParameters {
            mode: DtwMode::ModelPreset { model_preset },
            ..DtwParameters::default()
        });
    }
    WhisperContext::new_with_params(path, params).map_err(|e| SttError::Load {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The alignment heads whisper.cpp knows for a model of this shape: the sizes Sotto
/// offers (tiny, base, small). Other models get whisper's token times.
fn alignment_heads(shape: sotto_models::format::WhisperShape) -> Option<DtwModelPreset> {
    let en = shape.english_only();
    match (shape.text_state, shape.text_layer, shape.n_mels) {
        (384, 4, 80) => Some(if en {
            DtwModelPreset::TinyEn
        } else {
            DtwModelPreset::Tiny
        }),
        (512, 6, 80) => Some(if en {
            DtwModelPreset::BaseEn
        } else {
            DtwModelPreset::Base
        }),
        (768, 12, 80) => Some(if en {
            DtwModelPreset::SmallEn
        } else {
            DtwModelPreset::Small
        }),
        _ => None,
    }
}

impl WhisperStt {
    /// Loads the STT model `model_id` from the store, after checking it is intact.
    pub fn load(
        store: &ModelStore,
        model_id: &str,
        config: SttConfig,
    ) -> Result<WhisperStt, SttError> {
        let installed = store.require(model_id)?;
        Self::load_file(installed.main_file(), config)
    }

    /// Loads a whisper.cpp model file given by path (a file the user brought). Its header
    /// is checked first, so a foreign or damaged file never reaches whisper.cpp.
    pub fn load_file(path: &Path, config: SttConfig) -> Result<WhisperStt, SttError> {
        sotto_models::format::check(path, FileFormat::WhisperGgml).map_err(|reason| {
            SttError::Load {
                path: path.display().to_string(),
                reason,
            }
        })?;
        whisper_rs::install_logging_hooks();
        let shape = sotto_models::format::whisper_shape(path).ok();
        let ctx = load_context(path, None)?;
        Ok(WhisperStt {
            ctx,
            timed: OnceLock::new(),
            heads: shape.and_then(alignment_heads),
            path: path.to_path_buf(),
            config,
        })
    }

    /// The model with the alignment heads, loaded on first use; `None` when this model
    /// has none or it could not be loaded.
    fn timed_context(&self) -> Option<&WhisperContext> {
        let heads = self.heads.clone()?;
        self.timed
            .get_or_init(|| match load_context(&self.path, Some(heads)) {
                Ok(ctx) => Some(ctx),
                Err(e) => {
                    tracing::warn!("word times fall back to whisper's own: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// Whether the model with the alignment heads has been loaded (by a decode that
    /// needed word times).
    pub fn word_times_loaded(&self) -> bool {
        self.timed.get().is_some_and(Option::is_some)
    }

    /// Transcribes 16 kHz mono samples in [-1, 1].
    pub fn transcribe(&self, samples: &[f32], cancel: &CancelFlag) -> Result<Transcript, SttError> {
        self.decode(samples, "", cancel)
    }

    /// The prompt's last words as whisper tokens: at most [`PROMPT_TOKENS`], and none for
    /// an empty prompt.
    fn prompt_tokens(&self, prompt: &str) -> Vec<std::ffi::c_int> {
        let clean: String = prompt.chars().filter(|c| *c != '\0').collect();
        let words: Vec<&str> = clean.split_whitespace().collect();
        if words.is_empty() {
            return Vec::new();
        }
        // Whisper's words start with a space; a word is rarely more than three tokens.
        let from = words.len().saturating_sub(PROMPT_TOKENS / 3);
        let text = format!(" {}", words[from..].join(" "));
        match self.ctx.tokenize(&text, PROMPT_TOKENS * 2) {
            Ok(tokens) => tokens[tokens.len().saturating_sub(PROMPT_TOKENS)..].to_vec(),
            // Context only: a prompt that cannot be tokenized is left out.
            Err(_) => Vec::new(),
        }
    }

    /// Transcribes `samples` after `prompt` (see [`SpeechToText::transcribe_after`]).
    pub fn decode(
        &self,
        samples: &[f32],
        prompt: &str,
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        match self.timed_context() {
            Some(timed) => self.decode_on(timed, true, samples, prompt, cancel),
            None => self.decode_on(&self.ctx, false, samples, prompt, cancel),
        }
    }

    /// [`WhisperStt::decode`] without the alignment heads: the words' times are
    /// whisper's own (see [`SpeechToText::transcribe_untimed_after`]).
    pub fn decode_untimed(
        &self,
        samples: &[f32],
        prompt: &str,
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        self.decode_on(&self.ctx, false, samples, prompt, cancel)
    }

    /// One decode on `ctx` (`aligned`: it has the alignment heads).
    fn decode_on(
        &self,
        ctx: &WhisperContext,
        aligned: bool,
        samples: &[f32],
        prompt: &str,
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        let started = Instant::now();
        let audio_ms = samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
        let mut state = ctx
            .create_state()
            .map_err(|e| SttError::Inference(e.to_string()))?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        let language = (self.config.language != "auto").then_some(self.config.language.as_str());
        params.set_language(language);
        params.set_n_threads(self.config.threads.max(1) as i32);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_no_context(true);
        // An utterance is one segment; letting whisper start new segments inside a short
        // clip is what lets a shortened encoder context loop on the same words.
        params.set_single_segment(samples.len() < 30 * SAMPLE_RATE as usize);
        params.set_suppress_blank(true);
        // Speech is at most about 5 tokens a second: a decode that writes far more is
        // looping on its own words ("leave the office at 8 in the morning. Please ...").
        params.set_max_tokens(max_tokens(samples.len()));
        // Word times: where a committed prefix ends in the audio (see `partial`).
        params.set_token_timestamps(true);
        let prompt_tokens = self.prompt_tokens(prompt);
        if !prompt_tokens.is_empty() {
            params.set_tokens(&prompt_tokens);
        }
        let audio_ctx = self
            .config
            .audio_ctx
            .unwrap_or_else(|| auto_audio_ctx(samples.len()));
        // The alignment (DTW) asserts, and so aborts the process, when the encoder
        // context is shorter than the audio: a tight configured context is widened.
        let audio_ctx = if aligned {
            audio_ctx.max(auto_audio_ctx(samples.len()))
        } else {
            audio_ctx
        };
        params.set_audio_ctx(audio_ctx.min(1500) as i32);
        // whisper-rs 0.16's `set_abort_callback_safe` hands its trampoline a pointer of
        // the wrong type (a boxed trait object read as the closure), so the callback reads
        // garbage and aborts at random. Use the C callback with our flag directly.
        // SAFETY: the pointer is to the AtomicBool inside `cancel`'s Arc, which the caller's
        // borrow keeps alive until `full` below returns; the callback only loads from it.
        unsafe {
            params.set_abort_callback(Some(abort_when_cancelled));
            params.set_abort_callback_user_data(Arc::as_ptr(&cancel.0) as *mut std::ffi::c_void);
        }
        // whisper.cpp needs at least one second of input; pad short clips with silence.
        let mut padded;
        let input = if samples.len() < SAMPLE_RATE as usize {
            padded = samples.to_vec();
            padded.resize(SAMPLE_RATE as usize + SAMPLE_RATE as usize / 10, 0.0);
            &padded[..]
        } else {
            samples
        };
        let result = state.full(params, input);
        if cancel.is_cancelled() {
            return Err(SttError::Cancelled);
        }
        result.map_err(|e| SttError::Inference(e.to_string()))?;
        let mut segments = Vec::new();
        let mut words = Vec::new();
        let first_special = ctx.token_eot();
        for segment in state.as_iter() {
            collect_words(&segment, first_special, aligned, &mut words);
            let text = without_sound_labels(
                &segment
                    .to_str_lossy()
                    .map_err(|e| SttError::Inference(e.to_string()))?,
            );
            if text.is_empty() {
                continue;
            }
            segments.push(Segment {
                // whisper.cpp counts in centiseconds.
                start_ms: segment.start_timestamp().max(0) as u64 * 10,
                end_ms: segment.end_timestamp().max(0) as u64 * 10,
                text,
            });
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut words = without_labelled_words(words);
        // Padding is not speech: a word cannot end after the audio does.
        for word in &mut words {
            word.end_ms = word.end_ms.min(audio_ms);
            word.start_ms = word.start_ms.min(word.end_ms);
        }
        Ok(Transcript {
            text,
            segments,
            words,
            elapsed_ms: started.elapsed().as_millis() as u64,
            audio_ms,
        })
    }
}

/// At most this many tokens of earlier text go with a decode as its prompt (whisper takes
/// up to half its 448-token text context; a short prompt keeps the decoder fast).
pub const PROMPT_TOKENS: usize = 48;

/// Appends the words of one whisper segment: a token starting with a space starts a new
/// word; special tokens (end of text, timestamps, ...) are skipped. Times are in
/// centiseconds from the start of the decoded audio: with `aligned`, a word starts at its
/// first token's aligned time and ends where the next word starts (the last one at its
/// last token's end); otherwise whisper's own token times.
fn collect_words(
    segment: &whisper_rs::WhisperSegment<'_>,
    first_special: whisper_rs::WhisperTokenId,
    aligned: bool,
    words: &mut Vec<Word>,
) {
    let first_new = words.len();
    let mut bytes: Vec<u8> = Vec::new();
    let (mut start, mut end) = (0i64, 0i64);
    let flush = |bytes: &mut Vec<u8>, start: i64, end: i64, words: &mut Vec<Word>| {
        let text = String::from_utf8_lossy(bytes).trim().to_string();
        bytes.clear();
        if !text.is_empty() {
            words.push(Word {
                text,
                start_ms: start.max(0) as u64 * 10,
                end_ms: end.max(start).max(0) as u64 * 10,
            });
        }
    };
    for i in 0..segment.n_tokens() {
        let Some(token) = segment.get_token(i) else {
            continue;
        };
        if token.token_id() >= first_special {
            continue;
        }
        let Ok(piece) = token.to_bytes() else {
            continue;
        };
        let data = token.token_data();
        if piece.first() == Some(&b' ') && !bytes.is_empty() {
            flush(&mut bytes, start, end, words);
        }
        if bytes.is_empty() {
            start = if aligned && data.t_dtw >= 0 {
                data.t_dtw
            } else {
                data.t0
            };
        }
        bytes.extend_from_slice(piece);
        end = data.t1;
    }
    flush(&mut bytes, start, end, words);
    if aligned {
        // A word ends where the next begins; aligned times never run backwards.
        let new = &mut words[first_new..];
        for i in 1..new.len() {
            new[i].start_ms = new[i].start_ms.max(new[i - 1].start_ms);
            new[i - 1].end_ms = new[i].start_ms;
        }
        if let Some(last) = new.last_mut() {
            last.end_ms = last.end_ms.max(last.start_ms);
        }
    }
}

/// `words` without whisper's sound labels ("[BLANK_AUDIO]", "(wind blowing)"), which may
/// span several words; see [`without_sound_labels`].
pub fn without_labelled_words(words: Vec<Word>) -> Vec<Word> {
    let mut kept = Vec::with_capacity(words.len());
    let mut closing: Option<char> = None;
    for mut word in words {
        let text = outside_labels(&word.text, &mut closing);
        let text = text.trim();
        if !text.is_empty() {
            word.text = text.to_string();
            kept.push(word);
        }
    }
    kept
}

/// `text` without whisper's labels for what is not speech ("[BLANK_AUDIO]", "[MUSIC]",
/// "(wind blowing)"): they are not words the user said, so they must not show as a
/// transcript or reach the language model as a question. Trimmed, single-spaced.
pub fn without_sound_labels(text: &str) -> String {
    // An unclosed bracket is a label cut off at the end of the clip: dropped too.
    outside_labels(text, &mut None)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The characters of `text` outside brackets; `closing` carries an open bracket's closing
/// character from one piece of text to the next (a label spanning several words).
fn outside_labels(text: &str, closing: &mut Option<char>) -> String {
    let mut kept = String::with_capacity(text.len());
    for c in text.chars() {
        match (*closing, c) {
            (None, '[') => *closing = Some(']'),
            (None, '(') => *closing = Some(')'),
            (None, _) => kept.push(c),
            (Some(end), _) if c == end => *closing = None,
            (Some(_), _) => {}
        }
    }
    kept
}

/// Word error rate of `hypothesis` against `reference`: (substitutions + deletions +
/// insertions) / reference words, after lowercasing and dropping punctuation.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(|c| c.is_alphanumeric() || *c == '\'')
                    .collect::<String>()
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_context_covers_the_clip_within_whisper_s_bounds() {
        assert_eq!(auto_audio_ctx(16_000), MIN_AUDIO_CTX); // 1 s
        assert_eq!(auto_audio_ctx(16_000 * 10), 550); // 10 s + 1 s
        assert_eq!(auto_audio_ctx(16_000 * 60), 1500);
    }

    #[test]
    fn sound_labels_are_not_words() {
        assert_eq!(without_sound_labels(" [BLANK_AUDIO]"), "");
        assert_eq!(without_sound_labels("(wind blowing) [MUSIC]"), "");
        assert_eq!(
            without_sound_labels("What is the capital [BLANK_AUDIO] of France?"),
            "What is the capital of France?"
        );
        assert_eq!(without_sound_labels("Hello (laughs"), "Hello");
        assert_eq!(
            without_sound_labels("  And so, my fellow Americans. "),
            "And so, my fellow Americans."
        );
    }

    #[test]
    fn word_error_rate_counts_edits_per_reference_word() {
        assert_eq!(word_error_rate("Ask not, what!", "ask not what"), 0.0);
        assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
        assert_eq!(word_error_rate("a b", "a b c d"), 1.0);
        assert_eq!(word_error_rate("", ""), 0.0);
    }
}
