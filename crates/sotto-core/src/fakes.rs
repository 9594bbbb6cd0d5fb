//! Scripted engines for tests: they answer at once (or after scripted delays on tokio's
//! clock, so tests run on a paused clock in milliseconds) and fail on demand.
//!
//! - [`spoken`] makes "speech" that carries its own words, and [`FakeStt`] reads them
//!   back: a partial of the first second holds the words said in it, so partials and
//!   finals follow the audio as whisper's would.
//! - [`FakeLlm`] streams scripted answers, token by token, with delays, errors or a hang.
//! - [`FakeVoice`] speaks silence of a length set by the words.
//! - [`FakePlayer`] plays only when the test advances its clock (or at once, if made with
//!   [`FakePlayer::instant`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use sotto_audio::PlaybackError;
use sotto_llm::{Answer, ChatRequest, Chunk, Finish, FinishReason, Llm, LlmError, Message, Usage};
use sotto_stt::{CancelFlag, Segment, SpeechToText, SttError, Transcript, Word, SAMPLE_RATE};
use sotto_tts::{AudioChunk, CancellationToken, Tts, TtsError};
use tokio::sync::Notify;

use crate::output::AudioOut;

/// How long each word of [`spoken`] audio lasts.
pub const WORD_MS: u64 = 250;

/// Marks the start of a word's letters in [`spoken`] audio.
const WORD_START: f32 = 0.75;
/// Marks their end.
const WORD_END: f32 = -0.75;
/// Letters are stored as `code point / 2^21`: exact in an f32.
const LETTER_SCALE: f32 = 2_097_152.0;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// 16 kHz "speech" saying `text`: [`WORD_MS`] per word, each word's letters written into
/// its first samples, so [`FakeStt`] hears exactly the words whose start it was given.
pub fn spoken(text: &str) -> Vec<f32> {
    let per_word = (WORD_MS * u64::from(SAMPLE_RATE) / 1000) as usize;
    let mut audio = Vec::new();
    for word in text.split_whitespace() {
        let mut samples = vec![0.01; per_word];
        let letters: Vec<f32> = std::iter::once(WORD_START)
            .chain(word.chars().map(|c| c as u32 as f32 / LETTER_SCALE))
            .chain(std::iter::once(WORD_END))
            .collect();
        let n = letters.len().min(per_word);
        samples[..n].copy_from_slice(&letters[..n]);
        audio.extend(samples);
    }
    audio
}

/// The words written into `samples` by [`spoken`] (whole words only), each with its
/// times: from its start marker, [`WORD_MS`] long (cut at the end of `samples`).
fn words_in(samples: &[f32]) -> Vec<Word> {
    let per_word = (WORD_MS * u64::from(SAMPLE_RATE) / 1000) as usize;
    let ms = |i: usize| i as u64 * 1000 / u64::from(SAMPLE_RATE);
    let mut words = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        if samples[i] != WORD_START {
            i += 1;
            continue;
        }
        let mut word = String::new();
        let mut j = i + 1;
        let mut closed = false;
        while j < samples.len() {
            if samples[j] == WORD_END {
                closed = true;
                break;
            }
            if let Some(c) = char::from_u32((samples[j] * LETTER_SCALE).round() as u32) {
                word.push(c);
            }
            j += 1;
        }
        if closed && !word.is_empty() {
            words.push(Word {
                text: word,
                start_ms: ms(i),
                end_ms: ms((i + per_word).min(samples.len())),
            });
        }
        i = j + 1;
    }
    words
}

/// Holds transcriptions back until the test opens it.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    /// Lets every waiting and later transcription through.
    pub fn open(&self) {
        *lock(&self.open) = true;
        self.opened.notify_all();
    }

    /// Waits until open or `cancel` is set, as a real decoder checks its flag between
    /// steps (at most ten seconds: a forgotten gate fails the test, not CI).
    fn wait(&self, cancel: &CancelFlag) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut guard = lock(&self.open);
        while !*guard && !cancel.is_cancelled() && std::time::Instant::now() < deadline {
            guard = match self.opened.wait_timeout(guard, Duration::from_millis(5)) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Speech to text that reads back the words of [`spoken`] audio.
#[derive(Default)]
pub struct FakeStt {
    /// Calls so far.
    calls: AtomicUsize,
    /// Calls that ended cancelled.
    cancelled: AtomicUsize,
    /// Every call fails with this, when set.
    failure: Option<String>,
    /// Transcriptions wait for it, when set.
    gate: Option<Arc<Gate>>,
}

impl FakeStt {
    /// A recogniser that hears what [`spoken`] said.
    pub fn new() -> FakeStt {
        FakeStt::default()
    }

    /// A recogniser whose every transcription fails with `reason`.
    pub fn failing(reason: &str) -> FakeStt {
        FakeStt {
            failure: Some(reason.into()),
            ..FakeStt::default()
        }
    }

    /// A recogniser whose transcriptions wait until the returned gate is opened.
    pub fn gated() -> (FakeStt, Arc<Gate>) {
        let gate = Arc::new(Gate::default());
        let stt = FakeStt {
            gate: Some(Arc::clone(&gate)),
            ..FakeStt::default()
        };
        (stt, gate)
    }

    /// How many transcriptions were asked for (partials and finals).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many transcriptions ended cancelled.
    pub fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }
}

impl SpeechToText for FakeStt {
    fn transcribe_after(
        &self,
        samples: &[f32],
        _prompt: &str,
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.wait(cancel);
        }
        if cancel.is_cancelled() {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
            return Err(SttError::Cancelled);
        }
        if let Some(reason) = &self.failure {
            return Err(SttError::Inference(reason.clone()));
        }
        let words = words_in(samples);
        let text = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let audio_ms = samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
        Ok(Transcript {
            segments: vec![Segment {
                start_ms: 0,
                end_ms: audio_ms,
                text: text.clone(),
            }],
            words,
            text,
            elapsed_ms: 0,
            audio_ms,
        })
    }
}

/// One step of a scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// Wait this long (tokio's clock), then say this text.
    Text(Duration, String),
    /// Fail with this error.
    Fail(LlmError),
    /// Say nothing more until cancelled.
    Hang,
    /// Wait (on no clock) until the test notifies this.
    Until(Arc<Notify>),
}

/// A language model that streams scripted answers: each chat takes the next script (the
/// last one is reused once the others are spent).
pub struct FakeLlm {
    scripts: Mutex<VecDeque<Vec<Step>>>,
    last: Mutex<Vec<Step>>,
    requests: Mutex<Vec<ChatRequest>>,
    warmed: Mutex<Vec<Vec<Message>>>,
    read_ahead: Mutex<Vec<ReadAhead>>,
}

/// One read-ahead a [`FakeLlm`] was asked for.
#[derive(Debug, Clone)]
pub struct ReadAhead {
    /// How many chats had been asked for before it.
    pub chats_before: usize,
    /// What it was to read.
    pub messages: Vec<Message>,
    /// Its stop, as handed over (the test sees whether it was used).
    pub cancel: CancellationToken,
    /// Whether it was already stopped when handed over.
    pub stopped_at_start: bool,
}

impl FakeLlm {
    /// Answers with these scripts, in order.
    pub fn new(scripts: Vec<Vec<Step>>) -> FakeLlm {
        FakeLlm {
            scripts: Mutex::new(scripts.into()),
            last: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            warmed: Mutex::new(Vec::new()),
            read_ahead: Mutex::new(Vec::new()),
        }
    }

    /// Always answers `text`, a word a token, each after `delay`.
    pub fn saying(text: &str, delay: Duration) -> FakeLlm {
        FakeLlm::new(vec![tokens(text, delay)])
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    /// Every prefix it was asked to warm up with.
    pub fn warmed(&self) -> Vec<Vec<Message>> {
        lock(&self.warmed).clone()
    }

    /// Every read-ahead it was asked for.
    pub fn read_ahead_of(&self) -> Vec<ReadAhead> {
        lock(&self.read_ahead).clone()
    }
}

/// `text` as a script of tokens (a word each, with its leading space), each after `delay`.
pub fn tokens(text: &str, delay: Duration) -> Vec<Step> {
    text.split_inclusive(' ')
        .map(|t| Step::Text(delay, t.to_string()))
        .collect()
}

impl Llm for FakeLlm {
    fn name(&self) -> &str {
        "fake"
    }

    fn is_cloud(&self) -> bool {
        false
    }

    fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Answer {
        lock(&self.requests).push(request);
        let script = match lock(&self.scripts).pop_front() {
            Some(script) => {
                *lock(&self.last) = script.clone();
                script
            }
            None => lock(&self.last).clone(),
        };
        let (tx, answer) = Answer::channel();
        tokio::spawn(async move {
            let cancelled = || {
                Ok(Chunk::Done(Finish {
                    reason: FinishReason::Cancelled,
                    usage: None,
                    provider: "fake".into(),
                }))
            };
            for step in script {
                match step {
                    Step::Text(delay, text) => {
                        tokio::select! {
                            () = cancel.cancelled() => {
                                let _ = tx.send(cancelled()).await;
                                return;
                            }
                            () = tokio::time::sleep(delay) => {}
                        }
                        if tx.send(Ok(Chunk::Text(text))).await.is_err() {
                            return;
                        }
                    }
                    Step::Fail(error) => {
                        let _ = tx.send(Err(error)).await;
                        return;
                    }
                    Step::Hang => {
                        cancel.cancelled().await;
                        let _ = tx.send(cancelled()).await;
                        return;
                    }
                    Step::Until(go) => {
                        tokio::select! {
                            () = cancel.cancelled() => {
                                let _ = tx.send(cancelled()).await;
                                return;
                            }
                            () = go.notified() => {}
                        }
                    }
                }
            }
            let _ = tx
                .send(Ok(Chunk::Done(Finish {
                    reason: FinishReason::Stop,
                    usage: Some(Usage::default()),
                    provider: "fake".into(),
                })))
                .await;
        });
        answer
    }

    fn warm_up(&self, prefix: Vec<Message>) {
        lock(&self.warmed).push(prefix);
    }

    fn read_ahead(&self, messages: Vec<Message>, cancel: CancellationToken) {
        let chats_before = lock(&self.requests).len();
        lock(&self.read_ahead).push(ReadAhead {
            chats_before,
            messages,
            stopped_at_start: cancel.is_cancelled(),
            cancel,
        });
    }
}

/// A voice that speaks silence: [`FakeVoice::MS_PER_WORD`] per word, at 16 kHz, one chunk
/// per piece; it fails on text containing a chosen word.
pub struct FakeVoice {
    fail_on: Option<String>,
    spoken: Arc<Mutex<Vec<String>>>,
}

impl FakeVoice {
    /// How long each word it says lasts.
    pub const MS_PER_WORD: u64 = 100;
    /// Its sample rate.
    pub const RATE: u32 = 16_000;

    /// A voice that speaks everything.
    pub fn new() -> FakeVoice {
        FakeVoice {
            fail_on: None,
            spoken: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A voice that fails on any text containing `word`.
    pub fn failing_on(word: &str) -> FakeVoice {
        FakeVoice {
            fail_on: Some(word.into()),
            ..FakeVoice::new()
        }
    }

    /// A handle to the list of everything it was asked to say, in order.
    pub fn spoken(&self) -> Arc<Mutex<Vec<String>>> {
        Arc::clone(&self.spoken)
    }

    /// Output samples (16 kHz) that `text` lasts.
    pub fn samples_for(text: &str) -> usize {
        let words = text.split_whitespace().count().max(1) as u64;
        (words * Self::MS_PER_WORD * u64::from(Self::RATE) / 1000) as usize
    }
}

impl Default for FakeVoice {
    fn default() -> Self {
        FakeVoice::new()
    }
}

impl Tts for FakeVoice {
    fn voice_id(&self) -> &str {
        "fake"
    }

    fn sample_rate(&self) -> u32 {
        Self::RATE
    }

    fn synthesize(
        &mut self,
        text: &str,
        _speed: f32,
        cancel: &CancellationToken,
        on_chunk: &mut dyn FnMut(AudioChunk),
    ) -> Result<(), TtsError> {
        if self.fail_on.as_deref().is_some_and(|w| text.contains(w)) {
            return Err(TtsError::Run(format!("cannot say {text:?}")));
        }
        if cancel.is_cancelled() {
            return Ok(());
        }
        lock(&self.spoken).push(text.to_string());
        on_chunk(AudioChunk {
            samples: vec![0.0; Self::samples_for(text)],
            sample_rate: Self::RATE,
        });
        Ok(())
    }
}

/// Instant answers for exactly one question.
pub struct FakeInstant {
    /// The question it knows (compared exactly).
    pub question: String,
    /// Its answer.
    pub answer: String,
}

impl crate::intents::InstantSource for FakeInstant {
    fn answer(&mut self, question: &str) -> Option<(String, AudioChunk)> {
        (question == self.question).then(|| {
            (
                self.answer.clone(),
                AudioChunk {
                    samples: vec![0.0; FakeVoice::samples_for(&self.answer)],
                    sample_rate: FakeVoice::RATE,
                },
            )
        })
    }
}

/// Queued and played samples of a [`FakePlayer`].
#[derive(Debug, Default)]
struct Clock {
    queued: u64,
    played: u64,
}

/// A player at 16 kHz whose clock the test moves ([`FakePlayer::advance_ms`]), or that
/// plays everything the moment it is queued ([`FakePlayer::instant`]).
pub struct FakePlayer {
    clock: Mutex<Clock>,
    instant: bool,
    drained: OnceLock<Arc<Notify>>,
    stops: AtomicUsize,
    pauses: AtomicUsize,
    paused: std::sync::atomic::AtomicBool,
}

impl FakePlayer {
    /// Its output rate.
    pub const RATE: u32 = 16_000;

    /// A player that plays only when told to.
    pub fn manual() -> FakePlayer {
        FakePlayer {
            clock: Mutex::new(Clock::default()),
            instant: false,
            drained: OnceLock::new(),
            stops: AtomicUsize::new(0),
            pauses: AtomicUsize::new(0),
            paused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A player that plays everything at once.
    pub fn instant() -> FakePlayer {
        FakePlayer {
            instant: true,
            ..FakePlayer::manual()
        }
    }

    /// Plays `ms` of what is queued (less if less is queued).
    pub fn advance_ms(&self, ms: u64) {
        self.advance(ms * u64::from(Self::RATE) / 1000);
    }

    /// Plays everything queued.
    pub fn play_all(&self) {
        self.advance(u64::MAX);
    }

    fn advance(&self, samples: u64) {
        if self.is_paused() {
            return;
        }
        let mut clock = lock(&self.clock);
        let step = samples.min(clock.queued);
        clock.queued -= step;
        clock.played += step;
        let drained = step > 0 && clock.queued == 0;
        drop(clock);
        if drained {
            if let Some(signal) = self.drained.get() {
                signal.notify_one();
            }
        }
    }

    /// How many times the output was stopped.
    pub fn stops(&self) -> usize {
        self.stops.load(Ordering::SeqCst)
    }

    /// How many times the output was paused.
    pub fn pauses(&self) -> usize {
        self.pauses.load(Ordering::SeqCst)
    }

    /// True while paused (nothing plays).
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
}

impl AudioOut for FakePlayer {
    fn output_rate(&self) -> u32 {
        Self::RATE
    }

    fn play(&self, samples: &[f32], rate: u32) -> Result<(), PlaybackError> {
        let length = samples.len() as u64 * u64::from(Self::RATE) / u64::from(rate.max(1));
        lock(&self.clock).queued += length;
        if self.instant {
            self.play_all();
        }
        Ok(())
    }

    fn end_of_stream(&self) -> Result<(), PlaybackError> {
        Ok(())
    }

    fn stop(&self) {
        self.stops.fetch_add(1, Ordering::SeqCst);
        self.paused.store(false, Ordering::SeqCst);
        lock(&self.clock).queued = 0;
    }

    fn pause(&self) {
        if !self.paused.swap(true, Ordering::SeqCst) {
            self.pauses.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        if self.instant {
            self.play_all();
        }
    }

    fn played_samples(&self) -> u64 {
        lock(&self.clock).played
    }

    fn queued_samples(&self) -> usize {
        lock(&self.clock).queued as usize
    }

    fn signal_drained(&self, drained: Arc<Notify>) {
        let _ = self.drained.set(drained);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoken_words_are_heard_back_as_far_as_the_audio_goes() {
        let audio = spoken("what time is it");
        assert_eq!(audio.len(), 4 * 4_000);
        let stt = FakeStt::new();
        let hear = |samples: &[f32]| {
            stt.transcribe(samples, &CancelFlag::default())
                .expect("fake transcribes")
                .text
        };
        assert_eq!(hear(&audio), "what time is it");
        assert_eq!(hear(&audio[..4_100]), "what time");
        assert_eq!(hear(&audio[..3]), "");
        assert_eq!(hear(&spoken("Zürich, naïve café?")), "Zürich, naïve café?");
        assert_eq!(stt.calls(), 4);
    }

    #[test]
    fn a_manual_player_plays_only_when_told_and_signals_the_drain() {
        let player = FakePlayer::manual();
        let drained = Arc::new(Notify::new());
        player.signal_drained(Arc::clone(&drained));
        player.play(&[0.0; 8_000], 8_000).expect("play");
        assert_eq!(player.queued_samples(), 16_000);
        player.advance_ms(500);
        assert_eq!(player.played_samples(), 8_000);
        player.advance_ms(5_000);
        assert_eq!(player.played_samples(), 16_000);
        assert_eq!(player.queued_samples(), 0);
        // The drain left a permit.
        let notified = drained.notified();
        tokio::pin!(notified);
        assert!(notified.as_mut().enable());
    }
}
