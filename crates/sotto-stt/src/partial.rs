//! Transcripts while the user speaks, each decode bounded: the one implementation, used
//! by the voice turn's recogniser thread (`sotto_core::stt_worker`), the benchmark and
//! the tests.
//!
//! An [`Utterance`] collects the audio of one utterance. Every `interval_ms` of new audio
//! a partial is due. [`Utterance::partial`] decodes the audio after the *cut*, with the
//! words before it as the prompt. The cut stays at the start until more than
//! [`MAX_UNCOMMITTED_MS`] of audio follows it; then it moves forward past the words that
//! two consecutive decodes agree on (the LocalAgreement policy of whisper_streaming),
//! keeping the last [`KEEP_UNSURE_MS`] undecided, to the quietest point between two of
//! them. Those words are settled: never decoded again. So every decode, partial or final,
//! hears at most about 8 s whatever the utterance's length, and a 60 s dictation does not
//! slow down; the final after the user stops decodes only the audio after the cut.
//!
//! Why not cut after every agreed word, as whisper_streaming's committed prefix does:
//! measured on tiny.en (`sotto-core/tests/streaming.rs`), a cut at a word boundary
//! inside fluent speech loses the words next to it ("Tell me a long story" became
//! "Tell long story"): whisper does not transcribe a word it hears only the end of, and
//! its word times are off by 100 ms and more. Below 8 s a decode costs the same anyway
//! (the encoder never runs on less than [`crate::MIN_AUDIO_CTX`] frames, about 7.7 s), so
//! the final of a short utterance is the whole decode, word for word.
//!
//! The schedule counts audio, not wall time, so the same input always gives the same
//! partials. Calls block for one decode: run them on their own thread, and add audio
//! without transcribing ([`Utterance::push_audio`]) while the previous one runs, so
//! capture is never held up.

use std::time::Instant;

use crate::{CancelFlag, Segment, SpeechToText, SttError, Transcript, Word, SAMPLE_RATE, UNTIMED};

/// Audio after the cut allowed before the cut moves forward: bounds the audio one decode
/// sees (and so its cost) for any utterance length.
pub const MAX_UNCOMMITTED_MS: u64 = 8_000;

/// When the cut moves, the words in this much audio before the end stay undecided (the
/// last words of a decode are the least sure).
pub const KEEP_UNSURE_MS: u64 = 2_000;

/// An agreed word must end this long before the decoded audio does: a word cut by the
/// end of the audio may still grow.
const END_GUARD_MS: u64 = 300;

/// The cut between two words is put in the quietest [`QUIET_MS`] within this much
/// before the next word's aligned start (not before the last settled word starts).
const CUT_SEARCH_MS: u64 = 500;

/// The window the cut looks for quiet in: longer than the silence inside a stop
/// consonant ("p", "t": 50-80 ms), shorter than a pause between sentences.
const QUIET_MS: u64 = 80;

/// One utterance being transcribed as it grows.
pub struct Utterance<'a> {
    stt: &'a dyn SpeechToText,
    audio: Vec<f32>,
    interval: usize,
    next_partial_at: usize,
    /// Words before the cut: they will not change. Times from the utterance start.
    settled: Vec<Word>,
    /// Sample where decoding starts: the audio before it is settled.
    cut: usize,
    /// The last decode's words after the cut, times from the utterance start.
    previous: Vec<Word>,
    last_partial: Option<String>,
    /// The user paused: `previous` is a decode of all the audio up to this sample, and
    /// nothing said since. The final is ready if they said nothing more.
    ready: Option<usize>,
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

/// The quietest [`QUIET_MS`] window of `audio[from..to]`: its energy and the sample at
/// its middle (`from`, and infinite energy, when the range is shorter than a window).
fn quietest(audio: &[f32], from: usize, to: usize) -> (f32, usize) {
    let window = samples(QUIET_MS);
    let to = to.min(audio.len());
    let mut best = (f32::INFINITY, from.min(audio.len()));
    let mut at = from;
    while at + window <= to {
        let energy: f32 = audio[at..at + window].iter().map(|s| s * s).sum();
        if energy < best.0 {
            best = (energy, at + window / 2);
        }
        at += samples(10);
    }
    best
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
            settled: Vec::new(),
            cut: 0,
            previous: Vec::new(),
            last_partial: None,
            ready: None,
        }
    }

    /// Forgets the audio, the settled words and the last partial: the next utterance
    /// starts here.
    pub fn reset(&mut self) {
        self.audio.clear();
        self.next_partial_at = self.interval;
        self.settled.clear();
        self.cut = 0;
        self.previous.clear();
        self.last_partial = None;
        self.ready = None;
    }

    /// Adds audio without transcribing.
    pub fn push_audio(&mut self, samples: &[f32]) {
        self.audio.extend_from_slice(samples);
    }

    /// Whether a partial is due (a full interval of audio since the last one).
    pub fn partial_due(&self) -> bool {
        self.interval > 0 && self.audio.len() >= self.next_partial_at
    }

    /// The settled words: those before the cut.
    pub fn settled_text(&self) -> String {
        join(&self.settled)
    }

    /// Where decoding starts, in ms from the utterance start (the audio before it is
    /// never decoded again).
    pub fn cut_ms(&self) -> u64 {
        ms(self.cut)
    }

    /// Decodes the audio from the cut to `end` (samples) with the settled words as the
    /// prompt; returns its words, times from the start of the utterance, without a repeat
    /// of the last settled words at their start.
    fn decode_tail(&self, end: usize, cancel: &CancelFlag) -> Result<Vec<Word>, SttError> {
        let from = self.cut.min(end);
        let tail = &self.audio[from..end];
        let prompt = self.settled_text();
        // Word times place the cut (past [`MAX_UNCOMMITTED_MS`] after it words may be
        // settled) and tell whether the first word repeats the settled ones at the cut
        // (after one): elsewhere, the faster decode without them. (Untimed after a cut
        // too measured 220 -> 150 ms on the dictation's final, but whisper's own time for
        // the first word, off by up to seconds, would decide the repeat check.)
        let timed = from > 0 || ms(end).saturating_sub(ms(from)) > MAX_UNCOMMITTED_MS;
        let transcript = if timed {
            self.stt.transcribe_after(tail, &prompt, cancel)?
        } else {
            self.stt.transcribe_untimed_after(tail, &prompt, cancel)?
        };
        let offset = ms(from);
        let mut words: Vec<Word> = if transcript.words.is_empty() {
            // A recogniser that cannot time its words: nothing of it can be settled.
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
        Ok(words)
    }

    /// How many of `words`' first words repeat the last settled ones (the cut fell a
    /// little early, inside the last settled word): the longest such run of up to five.
    fn repeated_at_start(&self, words: &[Word]) -> usize {
        let max = 5.min(words.len()).min(self.settled.len());
        (1..=max)
            .rev()
            .find(|&n| {
                let tail = &self.settled[self.settled.len() - n..];
                tail.iter()
                    .zip(&words[..n])
                    .all(|(a, b)| norm(&a.text) == norm(&b.text))
            })
            .unwrap_or(0)
    }

    /// Where the audio is cut to settle `words[..n]`: the quietest point before the next
    /// word (after where the last of them ends, when none follows), and how quiet it is.
    fn boundary(&self, words: &[Word], n: usize) -> Option<(f32, usize)> {
        let last = n.checked_sub(1).and_then(|i| words.get(i))?;
        if last.end_ms == UNTIMED {
            return None;
        }
        let (from, to) = match words.get(n).filter(|w| w.start_ms != UNTIMED) {
            Some(next) => (
                next.start_ms
                    .saturating_sub(CUT_SEARCH_MS)
                    .max(last.start_ms),
                next.start_ms,
            ),
            None => (last.end_ms, last.end_ms + CUT_SEARCH_MS),
        };
        Some(quietest(&self.audio, samples(from), samples(to)))
    }

    /// How many of the first `n` of `words` to settle. Only boundaries that leave at
    /// most half of [`MAX_UNCOMMITTED_MS`] after the cut are candidates (the cut must move
    /// well forward, or the bound leaks); among them the last sentence end, else the last
    /// clause end (a comma, semicolon or colon), else the quietest boundary (the latest
    /// of equals); none: all `n`. A cut in fluent speech,
    /// between two words said together, makes whisper mishear the word after it ("the
    /// movers" heard from "movers" on became "covers"); at a sentence end or a pause
    /// there is silence to cut in.
    fn best_cut(&self, words: &[Word], n: usize) -> usize {
        let earliest = self
            .audio
            .len()
            .saturating_sub(samples(MAX_UNCOMMITTED_MS / 2));
        let candidates: Vec<(usize, f32)> = (1..=n)
            .rev()
            .filter_map(|k| self.boundary(words, k).map(|(energy, at)| (k, energy, at)))
            .filter(|&(_, _, at)| at >= earliest)
            .map(|(k, energy, _)| (k, energy))
            .collect();
        // The recogniser's punctuation marks where the speaker's voice broke off: a
        // sentence end first, then a clause end; a cut inside fluent speech loses short
        // words ("pack your desks | by Friday" came back as "desks Friday").
        for marks in [&['.', '?', '!'][..], &[',', ';', ':'][..]] {
            let found = candidates
                .iter()
                .find(|(k, _)| words[k - 1].text.ends_with(marks));
            if let Some(&(k, _)) = found {
                return k;
            }
        }
        candidates
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(n, |&(k, _)| k)
    }

    /// Settles `words[..n]`: the cut moves to their [`Utterance::boundary`].
    fn settle(&mut self, words: &mut Vec<Word>, n: usize) {
        let Some((_, cut)) = self.boundary(words, n) else {
            return;
        };
        self.cut = cut.clamp(self.cut, self.audio.len());
        self.settled.extend(words.drain(..n));
    }

    /// Decodes the audio after the cut; when more than [`MAX_UNCOMMITTED_MS`] of it has
    /// built up, settles the older words this decode and the one before agree on (or,
    /// if they never agree, the older words anyway); returns the whole text so far when
    /// it is new (not empty and not the last partial's). The next partial is due a full
    /// interval after this audio.
    pub fn partial(&mut self, cancel: &CancelFlag) -> Result<Option<String>, SttError> {
        let end = self.audio.len();
        self.next_partial_at = end + self.interval.max(1);
        let mut words = self.decode_tail(end, cancel)?;
        let end_ms = ms(end);
        if end_ms.saturating_sub(self.cut_ms()) > MAX_UNCOMMITTED_MS {
            // Agreement: the longest common prefix with the previous decode, among words
            // that end clear of the end of the audio, and before the unsure end.
            let older =
                |w: &Word| w.end_ms != UNTIMED && w.end_ms.saturating_add(KEEP_UNSURE_MS) <= end_ms;
            let agreed = words
                .iter()
                .zip(&self.previous)
                .take_while(|(now, before)| {
                    norm(&now.text) == norm(&before.text)
                        && now.end_ms.saturating_add(END_GUARD_MS) <= end_ms
                        && older(now)
                })
                .count();
            let n = if agreed > 0 {
                agreed
            } else {
                words.iter().take_while(|w| older(w)).count()
            };
            let n = self.best_cut(&words, n);
            self.settle(&mut words, n);
            if end_ms.saturating_sub(self.cut_ms()) > MAX_UNCOMMITTED_MS && words.is_empty() {
                // Nothing said in all that audio: skip it, keeping the unsure end.
                self.cut = samples(end_ms - KEEP_UNSURE_MS).max(self.cut);
            }
        }
        self.previous = words;
        if self.ready.is_some() {
            // Still in the pause: this decode is as good a final, and newer.
            self.ready = Some(end);
        }
        let text = self.text_so_far();
        if text.is_empty() || self.last_partial.as_deref() == Some(text.as_str()) {
            return Ok(None);
        }
        self.last_partial = Some(text.clone());
        Ok(Some(text))
    }

    /// The settled words and the last decode's, as one text.
    fn text_so_far(&self) -> String {
        let mut all = self.settled.clone();
        all.extend(self.previous.iter().cloned());
        join(&all)
    }

    /// The user paused (the voice activity detector hears silence after speech): decodes
    /// all the audio so far, as a partial, and keeps it as the final in case they have
    /// finished: if the utterance then ends with nothing more said
    /// ([`Utterance::resumed`] not called), [`Utterance::finish_over`] returns at once.
    /// The final starts when the user stops, not when the turn is judged over. Returns
    /// the words heard (`None`: none), even when the last partial said the same: an
    /// answer may start on them before the final is asked for.
    pub fn paused(&mut self, cancel: &CancelFlag) -> Result<Option<String>, SttError> {
        self.ready = None;
        self.partial(cancel)?;
        self.ready = Some(self.audio.len());
        let text = self.text_so_far();
        Ok((!text.is_empty()).then_some(text))
    }

    /// Speech again after a pause: the decode made at the pause is not the final.
    pub fn resumed(&mut self) {
        self.ready = None;
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

    /// The final transcript of everything pushed: the settled words and a decode of the
    /// audio after the cut.
    pub fn finish(mut self, cancel: &CancelFlag) -> Result<Transcript, SttError> {
        self.final_transcript(cancel)
    }

    /// The final transcript of `audio`, the whole utterance as the listener closed it.
    /// It usually begins with the audio pushed so far (the listener forwards what it
    /// keeps); then only the audio after the cut is decoded, or nothing at all when the
    /// decode made at the user's pause covers it ([`Utterance::paused`]). Otherwise (the
    /// utterance was reset, or the audio differs) all of `audio` is. Resets for the next
    /// utterance.
    pub fn finish_over(
        &mut self,
        audio: &[f32],
        cancel: &CancelFlag,
    ) -> Result<Transcript, SttError> {
        let started = Instant::now();
        let same_until =
            |n: usize| n <= audio.len() && n <= self.audio.len() && audio[..n] == self.audio[..n];
        // The pause decode covers the utterance when the utterance goes on from it (in
        // silence: speech again would have cleared it) or ends inside it (the listener
        // closed the utterance before all the quiet the decode saw).
        let covered = |n: usize| same_until(n.min(audio.len()));
        if let Some(ready) = self.ready.filter(|&n| covered(n)) {
            let words = std::mem::take(&mut self.previous);
            let result = self.transcript(words, ms(ready.max(audio.len())), started);
            self.reset();
            return Ok(result);
        }
        if !same_until(self.cut) {
            self.reset();
        }
        self.audio.truncate(self.cut);
        self.audio.extend_from_slice(&audio[self.cut..]);
        let result = self.final_transcript(cancel);
        self.reset();
        result
    }

    fn final_transcript(&mut self, cancel: &CancelFlag) -> Result<Transcript, SttError> {
        let started = Instant::now();
        let end = self.audio.len();
        let words = if self.cut + samples(50) >= end {
            // Nothing worth decoding after the settled words.
            Vec::new()
        } else {
            self.decode_tail(end, cancel)?
        };
        Ok(self.transcript(words, ms(end), started))
    }

    /// The settled words and then `words`, as a transcript of `audio_ms` of audio.
    fn transcript(&mut self, mut words: Vec<Word>, audio_ms: u64, started: Instant) -> Transcript {
        let mut all = std::mem::take(&mut self.settled);
        all.append(&mut words);
        let text = join(&all);
        Transcript {
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
        }
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
        /// Each call: whether word times were asked for.
        timed: Mutex<Vec<bool>>,
    }

    impl Scripted {
        fn new(words: &[(&str, u64, u64)]) -> Scripted {
            Scripted {
                words: words
                    .iter()
                    .map(|&(w, start, end)| (w.to_string(), start, end))
                    .collect(),
                calls: Mutex::new(Vec::new()),
                timed: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<(usize, String)> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }

        fn timed(&self) -> Vec<bool> {
            self.timed.lock().map(|c| c.clone()).unwrap_or_default()
        }

        /// The words heard in `samples`; with `timed` false every word's time is
        /// useless (the whole clip), as whisper's own times can be.
        fn script(&self, samples: &[f32], prompt: &str, timed: bool) -> Transcript {
            if let (Ok(mut calls), Ok(mut t)) = (self.calls.lock(), self.timed.lock()) {
                calls.push((samples.len(), prompt.to_string()));
                t.push(timed);
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
                    start_ms: if timed { start.saturating_sub(from) } else { 0 },
                    end_ms: if timed { end.min(to) - from } else { to - from },
                });
            }
            Transcript {
                text: join(&words),
                segments: Vec::new(),
                words,
                elapsed_ms: 0,
                audio_ms: to - from,
            }
        }
    }

    impl SpeechToText for Scripted {
        fn transcribe_after(
            &self,
            samples: &[f32],
            prompt: &str,
            _: &CancelFlag,
        ) -> Result<Transcript, SttError> {
            Ok(self.script(samples, prompt, true))
        }

        fn transcribe_untimed_after(
            &self,
            samples: &[f32],
            prompt: &str,
            _: &CancelFlag,
        ) -> Result<Transcript, SttError> {
            Ok(self.script(samples, prompt, false))
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
    fn a_short_utterance_is_decoded_whole_and_so_is_its_final() {
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
        // Under the bound nothing is cut: each partial hears all, with no prompt.
        let calls = stt.calls();
        assert_eq!(calls[2], (samples(1_800), String::new()));
        assert_eq!(
            (utterance.cut_ms(), utterance.settled_text()),
            (0, String::new())
        );
        let final_transcript = utterance.finish(&CancelFlag::default()).expect("final");
        assert_eq!(
            final_transcript.text,
            "What is the capital of France? Thanks."
        );
        assert_eq!(stt.calls().last(), Some(&(samples(3_000), String::new())));
        // Nothing can be settled under the bound: no decode asked for word times.
        assert!(stt.timed().iter().all(|t| !t), "{:?}", stt.timed());
    }

    /// A dictation of `n` 300 ms words with 100 ms gaps: "w0 w1 ...".
    fn dictation(n: u64) -> Scripted {
        let names: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
        let words: Vec<(&str, u64, u64)> = names
            .iter()
            .zip(0u64..)
            .map(|(w, i)| (w.as_str(), i * 400, i * 400 + 300))
            .collect();
        Scripted::new(&words)
    }

    #[test]
    fn every_decode_is_bounded_whatever_the_length() {
        // A 60 s dictation.
        let stt = dictation(150);
        let mut utterance = Utterance::new(&stt, 600);
        for step in 0..100 {
            utterance
                .push(&audio(step * 600, step * 600 + 600), &CancelFlag::default())
                .expect("push");
        }
        let longest = stt.calls().iter().map(|c| c.0).max().unwrap_or(0);
        assert!(
            longest <= samples(MAX_UNCOMMITTED_MS + 600),
            "{}",
            ms(longest)
        );
        let text = utterance
            .finish(&CancelFlag::default())
            .expect("final")
            .text;
        let expected: Vec<String> = (0..150).map(|i| format!("w{i}")).collect();
        assert_eq!(text, expected.join(" "));
        let last = stt.calls().last().map_or(usize::MAX, |c| c.0);
        assert!(last <= samples(MAX_UNCOMMITTED_MS + 600), "{}", ms(last));
        // Word times are asked for only where words may be settled or repeat the settled
        // ones: past 8 s, and after a cut (the scripted untimed times are useless, so a
        // cut made on them would have lost words above).
        let (calls, timed) = (stt.calls(), stt.timed());
        assert!(!timed[0] && timed.iter().any(|t| *t), "{timed:?}");
        for (call, timed) in calls.iter().zip(&timed) {
            let expected = !call.1.is_empty() || call.0 > samples(MAX_UNCOMMITTED_MS);
            assert_eq!(*timed, expected, "{} ms after {:?}", ms(call.0), call.1);
        }
    }

    #[test]
    fn a_recogniser_that_cannot_time_its_words_is_transcribed_past_the_bound() {
        /// Hears "hello there" in anything, without word times.
        struct Untimed;
        impl SpeechToText for Untimed {
            fn transcribe_after(
                &self,
                samples: &[f32],
                _: &str,
                _: &CancelFlag,
            ) -> Result<Transcript, SttError> {
                Ok(Transcript {
                    text: "hello there".into(),
                    segments: Vec::new(),
                    words: Vec::new(),
                    elapsed_ms: 0,
                    audio_ms: ms(samples.len()),
                })
            }
        }
        let mut utterance = Utterance::new(&Untimed, 600);
        // 12 s: past the bound, where agreement reads the words' times (none: no
        // arithmetic on the "untimed" mark, nothing settled on them).
        for _ in 0..20 {
            utterance
                .push(&vec![0.0; samples(600)], &CancelFlag::default())
                .expect("push");
        }
        assert_eq!(utterance.settled_text(), "");
        let t = utterance.finish(&CancelFlag::default()).expect("final");
        assert_eq!(t.text, "hello there");
    }

    #[test]
    fn words_that_never_agree_are_settled_after_the_bound() {
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
            utterance.audio_ms() - utterance.cut_ms() <= MAX_UNCOMMITTED_MS + 600,
            "{} of {}",
            utterance.cut_ms(),
            utterance.audio_ms()
        );
    }

    #[test]
    fn the_final_over_the_listener_audio_decodes_the_tail_or_all_if_it_differs() {
        let stt = dictation(30);
        let mut utterance = Utterance::new(&stt, 600);
        for step in 0..20 {
            utterance
                .push(&audio(step * 600, step * 600 + 600), &CancelFlag::default())
                .expect("push");
        }
        // 12 s heard: the older words are settled, the cut between two of them.
        let cut = utterance.cut_ms();
        assert!(cut > 0 && utterance.settled_text().starts_with("w0 w1"));
        // The listener's audio: the same start, a little more at the end.
        let whole = audio(0, 12_300);
        let t = utterance
            .finish_over(&whole, &CancelFlag::default())
            .expect("final");
        let expected: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
        assert_eq!(t.text, expected.join(" "));
        assert_eq!(
            stt.calls().last().map(|c| c.0),
            Some(samples(12_300) - samples(cut)),
            "only the tail after the cut"
        );
        // Reset after the final: a different utterance is decoded whole.
        let other = audio(100, 2_400);
        let t = utterance
            .finish_over(&other, &CancelFlag::default())
            .expect("final");
        assert_eq!(stt.calls().last().map(|c| c.0), Some(other.len()));
        assert!(t.text.starts_with("w0 w1"), "{}", t.text);
    }

    #[test]
    fn the_decode_made_at_a_pause_is_the_final_unless_speech_resumed() {
        let stt = Scripted::new(&QUESTION);
        let cancel = CancelFlag::default();
        let mut utterance = Utterance::new(&stt, 600);
        utterance.push_audio(&audio(0, 2_400));
        let at_pause = utterance.paused(&cancel).expect("pause");
        assert_eq!(at_pause.as_deref(), Some("What is the capital of France?"));
        let decodes = stt.calls().len();
        // Silence until the turn ends: the final is the pause's decode, no new one.
        utterance.push_audio(&audio(2_400, 2_550));
        let t = utterance
            .finish_over(&audio(0, 2_550), &cancel)
            .expect("final");
        assert_eq!(t.text, "What is the capital of France?");
        assert_eq!(stt.calls().len(), decodes);

        // Speech again after the pause ("Thanks."): decoded afresh.
        utterance.push_audio(&audio(0, 2_400));
        utterance.paused(&cancel).expect("pause");
        utterance.push_audio(&audio(2_400, 3_000));
        utterance.resumed();
        let t = utterance
            .finish_over(&audio(0, 3_000), &cancel)
            .expect("final");
        assert_eq!(t.text, "What is the capital of France? Thanks.");
        assert_eq!(stt.calls().last(), Some(&(samples(3_000), String::new())));
        // A different utterance than the one paused in is decoded too.
        utterance.push_audio(&audio(0, 2_400));
        utterance.paused(&cancel).expect("pause");
        let other = audio(2_600, 3_000);
        let t = utterance.finish_over(&other, &cancel).expect("final");
        assert_eq!(t.text, "Thanks.");
    }

    #[test]
    fn the_decode_at_a_pause_reports_its_words_even_when_the_last_partial_said_them() {
        // The answer starts on the words heard at the pause (sotto-core's early start):
        // a pause whose decode only confirms the last partial must still say so.
        let stt = Scripted::new(&QUESTION[..6]);
        let cancel = CancelFlag::default();
        let mut utterance = Utterance::new(&stt, 600);
        utterance.push_audio(&audio(0, 2_400));
        let partial = utterance.partial(&cancel).expect("partial");
        assert_eq!(partial.as_deref(), Some("What is the capital of France?"));
        // A partial that says nothing new is not repeated ...
        assert_eq!(utterance.partial(&cancel).expect("partial"), None);
        // ... but the decode at the pause is always reported.
        let at_pause = utterance.paused(&cancel).expect("pause");
        assert_eq!(at_pause.as_deref(), Some("What is the capital of France?"));
        // Nothing heard at all: nothing to report.
        let mut silent = Utterance::new(&stt, 600);
        silent.push_audio(&audio(2_400, 3_000));
        assert_eq!(silent.paused(&cancel).expect("pause"), None);
    }

    #[test]
    fn a_repeat_of_the_last_settled_word_at_the_cut_is_dropped_and_zero_means_never() {
        let stt = Scripted::new(&[("one", 0, 400), ("two", 500, 900), ("three", 1_000, 1_400)]);
        let mut utterance = Utterance::new(&stt, 0);
        utterance.push_audio(&audio(0, 1_500));
        assert!(!utterance.partial_due());
        utterance.settled = vec![Word {
            text: "one".into(),
            start_ms: 0,
            end_ms: 350,
        }];
        // The cut at 350 ms falls inside "one" (it ends at 400): heard again, dropped.
        utterance.cut = samples(350);
        let t = utterance.finish(&CancelFlag::default()).expect("final");
        assert_eq!(t.text, "one two three");
    }
}
