//! Transcripts while the user speaks, with a committed prefix: the one implementation,
//! used by the voice turn's recogniser thread (`sotto_core::stt_worker`), the benchmark
//! and the tests.
//!
//! An [`Utterance`] collects the audio of one utterance. Every `interval_ms` of new audio
//! a partial is due. [`Utterance::partial`] decodes only the audio after the *committed
//! point*, with the committed words as the prompt, and commits the words that this
//! decode and the one before it agree on (the LocalAgreement policy of
//! whisper_streaming): they will not change any more, so the audio up to where the last
//! of them ends is never decoded again. [`Utterance::finish`] decodes only what is left
//! after the committed point, so the final transcript after the user stops costs one
//! short decode whatever the utterance's length, and so does every partial: when the
//! words do not settle for [`MAX_UNCOMMITTED_MS`], the older ones are committed anyway.
//!
//! The schedule counts audio, not wall time, so the same input always gives the same
//! partials. Calls block for one decode: run them on their own thread, and add audio
//! without transcribing ([`Utterance::push_audio`]) while the previous one runs, so
//! capture is never held up.

use std::time::Instant;

use crate::{CancelFlag, Segment, SpeechToText, SttError, Transcript, Word, SAMPLE_RATE, UNTIMED};

/// Uncommitted audio allowed before the older words are committed without agreement:
/// bounds the audio one decode sees (and so its cost) for any utterance length.
pub const MAX_UNCOMMITTED_MS: u64 = 8_000;

/// When committing without agreement, the words in this much audio before the end stay
/// uncommitted (the last words of a decode are the least sure).
const KEEP_UNSURE_MS: u64 = 2_000;

/// A committed word must end this long before the decoded audio does: a word cut by the
/// end of the audio may still grow.
const END_GUARD_MS: u64 = 300;

/// One utterance being transcribed as it grows.
pub struct Utterance<'a> {
    stt: &'a dyn SpeechToText,
    audio: Vec<f32>,
    interval: usize,
    next_partial_at: usize,
    /// Words that will not change, times from the start of the utterance.
    committed: Vec<Word>,
    /// Sample where the audio not yet committed starts.
    committed_at: usize,
    /// The last decode's words after the committed ones, times from the utterance start.
    unsure: Vec<Word>,
    last_partial: Option<String>,
}

fn ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SAMPLE_RATE)
}

fn samples(ms: u64) -> usize {
    (ms.saturating_mul(u64::from(SAMPLE_RATE)) / 1000) as usize
}

/// A word as compared between decodes: lower case, letters and digits only.
fn norm(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn join(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl<'a> Utterance<'a> {
    /// A new utterance; a partial is due every `interval_ms` of audio (0: never).
    pub fn new(stt: &'a dyn SpeechToText, interval_ms: u32) -> Utterance<'a> {
        let interval = samples(u64::from(interval_ms));
        Utterance {
            stt,
            audio: Vec::new(),
            interval,
            next_partial_at: interval,
            committed: Vec::new(),
            committed_at: 0,
            unsure: Vec::new(),
            last_partial: None,
        }
    }

    /// Forgets the audio, the committed words and the last partial: the next utterance
    /// starts here.
    pub fn reset(&mut self) {
        self.audio.clear();
        self.next_partial_at = self.interval;
        self.committed.clear();
        self.committed_at = 0;
        self.unsure.clear();
        self.last_partial = None;
    }

    /// Adds audio without transcribing.
    pub fn push_audio(&mut self, samples: &[f32]) {
        self.audio.extend_from_slice(samples);
    }

    /// Whether a partial is due (a full interval of audio since the last one).
    pub fn partial_due(&self) -> bool {
        self.interval > 0 && self.audio.len() >= self.next_partial_at
    }

    /// The words committed so far.
    pub fn committed_text(&self) -> String {
        join(&self.committed)
    }

    /// Milliseconds of audio committed (never decoded again).
    pub fn committed_ms(&self) -> u64 {
        ms(self.committed_at)
    }

    /// Decodes the audio from the committed point to `end` (samples) with the committed
    /// words as the prompt; returns its words, times from the start of the utterance,
    /// without a repeat of the last committed words at their start.
    fn decode_tail(
        &mut self,
        end: usize,
        cancel: &CancelFlag,
    ) -> Result<(Transcript, Vec<Word>), SttError> {
        let from = self.committed_at.min(end);
        let tail = &self.audio[from..end];
        let prompt = self.committed_text();
        let transcript = self.stt.transcribe_after(tail, &prompt, cancel)?;
        let offset = ms(from);
        let mut words: Vec<Word> = if transcript.words.is_empty() {
            // A recogniser that cannot time its words: nothing of it can be committed.
            transcript
                .text
                .split_whitespace()
                .map(|w| Word {
                    text: w.to_string(),
                    start_ms: UNTIMED,
                    end_ms: UNTIMED,
                })
                .collect()
        } else {
            transcript
                .words
                .iter()
                .map(|w| Word {
                    text: w.text.clone(),
                    start_ms: w.start_ms.saturating_add(offset),
                    end_ms: w.end_ms.saturating_add(offset),
                })
                .collect()
        };
        // Only right at the cut: a word said again later is a word said again.
        let at_cut = words
            .first()
            .is_some_and(|w| w.start_ms != UNTIMED && w.start_ms < offset + 1_000);
        if at_cut {
            let repeated = self.repeated_at_start(&words);
            words.drain(..repeated);
        }
        Ok((transcript, words))
    }

    /// How many of `words`' first words repeat the last committed ones (the cut fell a
    /// little early, inside the last committed word): the longest such run of up to five.
    fn repeated_at_start(&self, words: &[Word]) -> usize {
        let max = 5.min(words.len()).min(self.committed.len());
        (1..=max)
            .rev()
            .find(|&n| {
                let tail = &self.committed[self.committed.len() - n..];
                tail.iter()
                    .zip(&words[..n])
                    .all(|(a, b)| norm(&a.text) == norm(&b.text))
            })
            .unwrap_or(0)
    }

    /// Commits `words[..n]`: the audio up to where the last of them ends is done.
    fn commit(&mut self, words: &mut Vec<Word>, n: usize) {
        if n == 0 {
            return;
        }
        let Some(last) = words.get(n - 1) else { return };
        if last.end_ms == UNTIMED {
            return;
        }
        self.committed_at = samples(last.end_ms).clamp(self.committed_at, self.audio.len());
        self.committed.extend(words.drain(..n));
    }

    /// Decodes the audio after the committed point; commits the words this decode and
    /// the previous one agree on; returns the whole text so far when it is new (not empty
    /// and not the last partial's). The next partial is due a full interval after this
    /// audio.
    pub fn partial(&mut self, cancel: &CancelFlag) -> Result<Option<String>, SttError> {
        let end = self.audio.len();
        self.next_partial_at = end + self.interval.max(1);
        let (_, mut words) = self.decode_tail(end, cancel)?;
        let end_ms = ms(end);
        // Agreement: the longest common prefix with the previous decode, among words
        // that end clear of the end of the audio.
        let agreed = words
            .iter()
            .zip(&self.unsure)
            .take_while(|(now, before)| {
                norm(&now.text) == norm(&before.text)
                    && now.end_ms != UNTIMED
                    && now.end_ms + END_GUARD_MS <= end_ms
            })
            .count();
        self.commit(&mut words, agreed);
        // Bound the next decode: when too much audio is still unsure, commit its older
        // words anyway.
        if end_ms.saturating_sub(self.committed_ms()) > MAX_UNCOMMITTED_MS {
            let settled = words
                .iter()
                .take_while(|w| w.end_ms != UNTIMED && w.end_ms + KEEP_UNSURE_MS <= end_ms)
                .count();
            self.commit(&mut words, settled);
            if end_ms.saturating_sub(self.committed_ms()) > MAX_UNCOMMITTED_MS && words.is_empty() {
                // Nothing said in all that audio: skip it, keeping the unsure end.
                self.committed_at = samples(end_ms - KEEP_UNSURE_MS).max(self.committed_at);
            }
        }
        self.unsure = words;
        let mut all = self.committed.clone();
        all.extend(self.unsure.iter().cloned());
        let text = join(&all);
        if text.is_empty() || self.last_partial.as_deref() == Some(text.as_str()) {
            return Ok(None);
        }
        self.last_partial = Some(text.clone());
        Ok(Some(text))
    }

    /// Adds audio; returns a partial transcript when one is due and its text changed.
    pub fn push(
        &mut self,
        samples: &[f32],
        cancel: &CancelFlag,
    ) -> Result<Option<String>, SttError> {
        self.push_audio(samples);
        if !self.partial_due() {
            return Ok(None);
        }
        self.partial(cancel)
    }

    /// Milliseconds of audio so far.
    pub fn audio_ms(&self) -> u64 {
        ms(self.audio.len())
    }

    /// The final transcript of everything pushed: the committed words and a decode of
    /// the audio after them.
    pub fn finish(mut self, cancel: &CancelFlag) -> Result<Transcript, SttError> {
        self.final_transcript(cancel)
    }

    /// The final transcript of `audio`, the whole utterance as the listener closed it.
    /// It usually begins with the audio pushed so far (the listener forwards what it
    /// keeps); then only the audio after the committed point is decoded. Otherwise (the
    /// utterance was reset, or the audio differs) all of `audio` is.
    pub fn finish_over(
        &mut self,
        audio: &[f32],
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        let known = self.committed_at <= audio.len()
            && self.committed_at <= self.audio.len()
            && audio[..self.committed_at] == self.audio[..self.committed_at];
        if !known {
            self.reset();
        }
        self.audio.truncate(self.committed_at);
        self.audio.extend_from_slice(&audio[self.committed_at..]);
        let result = self.final_transcript(cancel);
        self.reset();
        result
    }

    fn final_transcript(&mut self, cancel: &CancelFlag) -> Result<Transcript, SttError> {
        let started = Instant::now();
        let end = self.audio.len();
        let mut words = if self.committed_at + samples(50) >= end {
            // Nothing worth decoding after the committed words.
            Vec::new()
        } else {
            self.decode_tail(end, cancel)?.1
        };
        let mut all = std::mem::take(&mut self.committed);
        all.append(&mut words);
        let text = join(&all);
        let audio_ms = ms(end);
        Ok(Transcript {
            segments: if text.is_empty() {
                Vec::new()
            } else {
                vec![Segment {
                    start_ms: all.first().map_or(0, |w| w.start_ms.min(audio_ms)),
                    end_ms: all.last().map_or(audio_ms, |w| w.end_ms.min(audio_ms)),
                    text: text.clone(),
                }]
            },
            text,
            words: all,
            elapsed_ms: started.elapsed().as_millis() as u64,
            audio_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A recogniser over a script of timed words: it hears every word that reaches into
    /// the audio it is given (whose first sample holds its position in the utterance, see
    /// [`audio`]), and the last word only as far as the audio goes ("capi" for "capital"
    /// cut short).
    struct Scripted {
        /// (word, start ms, end ms) from the utterance start.
        words: Vec<(String, u64, u64)>,
        /// Each call: (samples given, prompt).
        calls: Mutex<Vec<(usize, String)>>,
    }

    impl Scripted {
        fn new(words: &[(&str, u64, u64)]) -> Scripted {
            Scripted {
                words: words
                    .iter()
                    .map(|&(w, start, end)| (w.to_string(), start, end))
                    .collect(),
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<(usize, String)> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }
    }

    impl SpeechToText for Scripted {
        fn transcribe_after(
            &self,
            samples: &[f32],
            prompt: &str,
            _: &CancelFlag,
        ) -> Result<Transcript, SttError> {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push((samples.len(), prompt.to_string()));
            }
            // The audio carries its own utterance position in its first sample (ms).
            let from = samples.first().map_or(0, |s| *s as u64);
            let to = from + ms(samples.len());
            let mut words = Vec::new();
            for (text, start, end) in &self.words {
                let (start, end) = (*start, *end);
                if end <= from + 20 || start >= to {
                    continue;
                }
                let text = if end <= to {
                    text.to_string()
                } else {
                    // Cut short: only the part heard.
                    let heard = ((to - start) * text.len() as u64 / (end - start)) as usize;
                    text[..heard.max(1)].to_string()
                };
                words.push(Word {
                    text,
                    start_ms: start.saturating_sub(from),
                    end_ms: end.min(to) - from,
                });
            }
            Ok(Transcript {
                text: join(&words),
                segments: Vec::new(),
                words,
                elapsed_ms: 0,
                audio_ms: to - from,
            })
        }
    }

    /// Audio whose every sample holds its own position in milliseconds.
    fn audio(from_ms: u64, to_ms: u64) -> Vec<f32> {
        (samples(from_ms)..samples(to_ms))
            .map(|i| ms(i) as f32)
            .collect()
    }

    const QUESTION: [(&str, u64, u64); 7] = [
        ("What", 100, 400),
        ("is", 450, 600),
        ("the", 650, 800),
        ("capital", 850, 1_400),
        ("of", 1_450, 1_600),
        ("France?", 1_650, 2_300),
        ("Thanks.", 2_600, 2_900),
    ];

    #[test]
    fn agreed_words_are_committed_and_never_decoded_again() {
        let stt = Scripted::new(&QUESTION);
        let mut utterance = Utterance::new(&stt, 600);
        let mut partials = Vec::new();
        for step in 0..5 {
            let from = step * 600;
            if let Some(text) = utterance
                .push(&audio(from, from + 600), &CancelFlag::default())
                .expect("push")
            {
                partials.push(text);
            }
        }
        assert_eq!(
            partials,
            [
                "What is",
                "What is the capi",
                "What is the capital of F",
                "What is the capital of France?",
                "What is the capital of France? Thanks."
            ]
        );
        let calls = stt.calls();
        // At 1200 ms "What is" agreed with the 600 ms decode: committed, and the 1800 ms
        // decode starts after "is" (600 ms) with them as its prompt.
        assert_eq!(calls[2], (samples(1_200), "What is".into()));
        assert_eq!(utterance.committed_text(), "What is the capital of France?");
        let final_transcript = utterance.finish(&CancelFlag::default()).expect("final");
        assert_eq!(
            final_transcript.text,
            "What is the capital of France? Thanks."
        );
        // The final decoded only what followed "France?".
        let last = stt.calls().last().cloned().expect("final call");
        assert_eq!(
            last,
            (
                samples(3_000 - 2_300),
                "What is the capital of France?".into()
            )
        );
    }

    #[test]
    fn every_decode_is_bounded_whatever_the_length() {
        // A 60 s dictation of 300 ms words with 100 ms gaps.
        let names: Vec<String> = (0..150).map(|i| format!("w{i}")).collect();
        let words: Vec<(&str, u64, u64)> = names
            .iter()
            .zip(0u64..)
            .map(|(w, i)| (w.as_str(), i * 400, i * 400 + 300))
            .collect();
        let stt = Scripted::new(&words);
        let mut utterance = Utterance::new(&stt, 600);
        for step in 0..100 {
            utterance
                .push(&audio(step * 600, step * 600 + 600), &CancelFlag::default())
                .expect("push");
        }
        let longest = stt.calls().iter().map(|c| c.0).max().unwrap_or(0);
        assert!(longest <= samples(2_000), "{}", ms(longest));
        let text = utterance
            .finish(&CancelFlag::default())
            .expect("final")
            .text;
        assert_eq!(text.split_whitespace().count(), 150, "{text}");
    }

    #[test]
    fn words_that_never_settle_are_committed_after_the_bound() {
        /// Hears the words, but spells the last one differently every time.
        struct Restless(Mutex<u32>);
        impl SpeechToText for Restless {
            fn transcribe_after(
                &self,
                samples: &[f32],
                _: &str,
                _: &CancelFlag,
            ) -> Result<Transcript, SttError> {
                let mut n = self.0.lock().map_err(|_| SttError::Cancelled)?;
                *n += 1;
                let len = ms(samples.len());
                let words = (0..len / 500)
                    .map(|i| Word {
                        text: format!("w{}", *n + i as u32),
                        start_ms: i * 500,
                        end_ms: i * 500 + 400,
                    })
                    .collect::<Vec<_>>();
                Ok(Transcript {
                    text: join(&words),
                    segments: Vec::new(),
                    words,
                    elapsed_ms: 0,
                    audio_ms: len,
                })
            }
        }
        let stt = Restless(Mutex::new(0));
        let mut utterance = Utterance::new(&stt, 600);
        for _ in 0..40 {
            utterance
                .push(&vec![0.0; samples(600)], &CancelFlag::default())
                .expect("push");
        }
        // 24 s of audio, no agreement ever: still at most 8 s + one interval undecided.
        assert!(
            utterance.audio_ms() - utterance.committed_ms() <= MAX_UNCOMMITTED_MS + 600,
            "{} of {}",
            utterance.committed_ms(),
            utterance.audio_ms()
        );
    }

    #[test]
    fn the_final_over_the_listener_audio_decodes_the_tail_or_all_if_it_differs() {
        let stt = Scripted::new(&QUESTION);
        let mut utterance = Utterance::new(&stt, 600);
        for step in 0..2 {
            utterance
                .push(&audio(step * 600, step * 600 + 600), &CancelFlag::default())
                .expect("push");
        }
        assert_eq!(utterance.committed_text(), "What is");
        // The listener's audio: the same start, a little more at the end.
        let whole = audio(0, 2_400);
        let t = utterance
            .finish_over(&whole, &CancelFlag::default())
            .expect("final");
        assert_eq!(t.text, "What is the capital of France?");
        assert_eq!(
            stt.calls().last().map(|c| c.0),
            Some(samples(2_400 - 600)),
            "only the tail after 'is'"
        );
        // Reset after the final: a different utterance is decoded whole.
        let other = audio(100, 2_400);
        let t = utterance
            .finish_over(&other, &CancelFlag::default())
            .expect("final");
        assert_eq!(stt.calls().last().map(|c| c.0), Some(other.len()));
        assert_eq!(t.text, "What is the capital of France?");
    }

    #[test]
    fn a_repeat_of_the_last_committed_word_at_the_cut_is_dropped_and_zero_means_never() {
        let stt = Scripted::new(&[("one", 0, 400), ("two", 500, 900), ("three", 1_000, 1_400)]);
        let mut utterance = Utterance::new(&stt, 0);
        utterance.push_audio(&audio(0, 1_500));
        assert!(!utterance.partial_due());
        utterance.committed = vec![Word {
            text: "one".into(),
            start_ms: 0,
            end_ms: 350,
        }];
        // The cut at 350 ms falls inside "one" (it ends at 400): heard again, dropped.
        utterance.committed_at = samples(350);
        let t = utterance.finish(&CancelFlag::default()).expect("final");
        assert_eq!(t.text, "one two three");
    }
}
