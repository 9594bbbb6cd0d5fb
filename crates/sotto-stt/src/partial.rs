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
//! The cut also moves to a pause the user made (the listener reported it, then speech
//! again): when the first decode after it agrees with the decode made at the pause on all
//! its words, they are settled and the cut falls in the quiet before the report. No word
//! straddles that cut, so what follows is decoded without the settled words as the
//! prompt, as a fresh utterance, and without word times until 8 s build up after it; a
//! dictation's final then decodes only what followed its last pause. The pause decode
//! hears only the audio up to the pause's mark, so its words were all said before it;
//! if it missed its last word and the next decode heard it, that word is lost at the
//! cut (a known limit: nothing measured it in the stream bench's real speech).
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

/// The listener reports a pause after this much quiet at least (its level rule: 100 ms;
/// its detector's: 60 ms after a lag of 120-200 ms): a cut at a pause is looked for in
/// this much audio before the report, never after it (speech may resume there).
const PAUSE_QUIET_MS: u64 = 100;

/// The decode made at the user's last pause, once they spoke again.
#[derive(Debug, Clone)]
struct AfterPause {
    /// Its words: all said before the pause.
    words: Vec<Word>,
    /// Where the pause was reported (samples): it is cut in the [`PAUSE_QUIET_MS`] before.
    mark: usize,
    /// Decodes that may still disagree with it before the chance is given up.
    tries: u8,
}

/// Decodes after speech resumed that may disagree with the pause's decode before its
/// words are given up on: tiny.en's first decode after a pause now and then drops or
/// mishears the words before it ("S not." for "And so my fellow Americans ask not"), and
/// the next, over more audio, hears them again as the pause's decode did.
const PAUSE_TRIES: u8 = 3;

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
    /// Where the last pause was reported (samples), until speech resumes.
    paused_at: Option<usize>,
    /// The decode made at the last pause, kept after speech resumed until a decode agrees
    /// or disagrees with it (see [`Utterance::settle_at_pause`]).
    after_pause: Option<AfterPause>,
    /// The cut lies in a pause, not between two words said together: no word straddles
    /// it, so the first word after it cannot repeat a settled one, and decodes after it
    /// need no word times for that check.
    cut_in_pause: bool,
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
            paused_at: None,
            after_pause: None,
            cut_in_pause: false,
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
        self.paused_at = None;
        self.after_pause = None;
        self.cut_in_pause = false;
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
    /// prompt (none after a cut in a pause); returns its words, times from the start of
    /// the utterance, without a repeat of the last settled words at their start.
    fn decode_tail(&self, end: usize, cancel: &CancelFlag) -> Result<Vec<Word>, SttError> {
        let from = self.cut.min(end);
        let tail = &self.audio[from..end];
        // After a cut in a pause, no prompt: the words before a pause are a finished
        // thought, and tiny.en given them as the prompt dropped or garbled what followed
        // (docs/BENCHMARKS.md, "Settled at the user's pauses": real speech 14.5 -> 31 %
        // WER with the prompt, 6.4 % without).
        let prompt = if self.cut_in_pause {
            String::new()
        } else {
            self.settled_text()
        };
        // Word times place the cut (past [`MAX_UNCOMMITTED_MS`] after it words may be
        // settled) and tell whether the first word repeats the settled ones at the cut
        // (after one): elsewhere, the faster decode without them. (Untimed after a cut
        // too measured 220 -> 150 ms on the dictation's final, but whisper's own time for
        // the first word, off by up to seconds, would decide the repeat check.)
        let timed = (from > 0 && !self.cut_in_pause)
            || ms(end).saturating_sub(ms(from)) > MAX_UNCOMMITTED_MS;
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
        // Not after a cut in a pause: no word straddles it, and an untimed decode's rough
        // times would take a word said again for a repeat.
        let at_cut = !self.cut_in_pause
            && words
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
        self.cut_in_pause = false;
        // A pause before the new cut is past; one after it counted its words from the old.
        self.after_pause = None;
        self.settled.extend(words.drain(..n));
    }

    /// The first decode after the user spoke again that agrees with the pause's decode
    /// on all its words, and hears more after them, settles those words with the cut in
    /// the pause: two decodes agree (LocalAgreement), and the cut falls in silence, so no
    /// word is lost or heard twice at it, whisper's word times aside. A decode that does
    /// not hear past the pause yet waits for the next; after [`PAUSE_TRIES`] that
    /// disagree, the chance is given up. So a dictation's final decodes only what follows
    /// its last pause.
    fn settle_at_pause(&mut self, words: &mut Vec<Word>) {
        let Some(mut pause) = self.after_pause.take() else {
            return;
        };
        let n = pause.words.len();
        let agreed = words
            .iter()
            .zip(&pause.words)
            .take_while(|(now, before)| norm(&now.text) == norm(&before.text))
            .count();
        if agreed < n.min(words.len()) {
            // They disagree: a later decode may still agree.
            pause.tries = pause.tries.saturating_sub(1);
            if pause.tries > 0 {
                self.after_pause = Some(pause);
            }
            return;
        }
        if words.len() <= n {
            self.after_pause = Some(pause); // Nothing heard past the pause yet.
            return;
        }
        let from = pause
            .mark
            .saturating_sub(samples(PAUSE_QUIET_MS))
            .max(self.cut);
        let (energy, at) = quietest(&self.audio, from, pause.mark);
        if !energy.is_finite() || at <= self.cut {
            return;
        }
        self.cut = at;
        self.cut_in_pause = true;
        self.settled.extend(words.drain(..n));
        // The decode before this one, from the same old cut: its words after the settled
        // ones are what the next agreement compares with.
        let drop = n.min(self.previous.len());
        self.previous.drain(..drop);
    }

    /// Decodes the audio after the cut; settles the words before the user's last pause
    /// when this decode agrees with the pause's ([`Utterance::settle_at_pause`]); when
    /// more than [`MAX_UNCOMMITTED_MS`] of it has built up, settles the older words this
    /// decode and the one before agree on (or, if they never agree, the older words
    /// anyway); returns the whole text so far when it is new (not empty and not the last
    /// partial's). The next partial is due a full interval after this audio.
    pub fn partial(&mut self, cancel: &CancelFlag) -> Result<Option<String>, SttError> {
        self.decode_to(self.audio.len(), cancel)
    }

    /// [`Utterance::partial`] over the audio up to `end` (samples).
    fn decode_to(&mut self, end: usize, cancel: &CancelFlag) -> Result<Option<String>, SttError> {
        let end = end.min(self.audio.len());
        self.next_partial_at = end + self.interval.max(1);
        let mut words = self.decode_tail(end, cancel)?;
        self.settle_at_pause(&mut words);
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
    /// the audio up to the pause's mark ([`Utterance::mark_pause`]; all of it when not
    /// marked), as a partial, and keeps it as the final in case they have
    /// finished: if the utterance then ends with nothing more said
    /// ([`Utterance::resumed`] not called), [`Utterance::finish_over`] returns at once.
    /// The final starts when the user stops, not when the turn is judged over. Returns
    /// the words heard (`None`: none), even when the last partial said the same: an
    /// answer may start on them before the final is asked for.
    pub fn paused(&mut self, cancel: &CancelFlag) -> Result<Option<String>, SttError> {
        self.ready = None;
        // Up to where the pause was marked: audio pushed after the mark may hold the
        // start of speech again, and the words kept for a cut at this pause must all be
        // said before it.
        self.mark_pause();
        let end = self.paused_at.unwrap_or(self.audio.len());
        self.decode_to(end, cancel)?;
        self.ready = Some(end);
        let text = self.text_so_far();
        Ok((!text.is_empty()).then_some(text))
    }

    /// The listener reported a pause here: the audio pushed so far ends in quiet. Called
    /// in order with the audio (a pause decode may start later, over more audio); the
    /// first mark of a pause counts.
    pub fn mark_pause(&mut self) {
        self.paused_at.get_or_insert(self.audio.len());
    }

    /// Speech again after a pause: the decode made at the pause is not the final; its
    /// words may be settled at the pause by the next decode that agrees with them.
    pub fn resumed(&mut self) {
        if let Some(at) = self.paused_at.take().filter(|_| self.ready.is_some()) {
            self.after_pause = (!self.previous.is_empty()).then(|| AfterPause {
                words: self.previous.clone(),
                mark: at,
                tries: PAUSE_TRIES,
            });
        }
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
mod tests;
