//! Finds where an utterance starts and ends in a stream of 16 kHz audio.
//!
//! Speech opens after `start_ms` of consecutive speech frames (a click is not a word) and
//! closes after `hangover_ms` without speech (a pause between words is not the end). The
//! utterance handed on starts `pre_roll_ms` before the onset, so the first syllable, which
//! detectors tend to notice late, is never clipped. [`SpeechEvent::Started`] is announced
//! only once speech has lasted `min_speech_ms` (its `at_ms` is still the onset), so a
//! cough or a detector's misfire never flashes "listening"; shorter bursts end as
//! [`SpeechEvent::Rejected`].
//!
//! With a [`TurnDetector`] (hands-free), a pause is judged by what was said, not only by
//! its length: after `turn_check_ms` of silence the detector is asked once whether the
//! turn is complete. A complete turn ends there; an incomplete one ("Can you tell me
//! ...") is given up to `max_pause_ms` to go on. Without a detector, or if it fails,
//! `hangover_ms` of silence ends the utterance.

use crate::smart_turn::TurnDetector;
use crate::vad::Vad;
use crate::{AudioError, SPEECH_RATE};

/// Endpointing settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EndpointerConfig {
    /// Audio kept from before the detected onset.
    pub pre_roll_ms: u32,
    /// Silence that ends an utterance.
    pub hangover_ms: u32,
    /// Speech needed before an utterance opens.
    pub start_ms: u32,
    /// Utterances shorter than this are dropped as noise.
    pub min_speech_ms: u32,
    /// Audio kept after the last speech frame (whisper does better with a little tail).
    pub tail_ms: u32,
    /// Speech probability above which a frame counts as speech.
    pub threshold: f32,
    /// With a turn detector: the silence after which it is asked whether the turn is
    /// complete (and a complete turn ends).
    pub turn_check_ms: u32,
    /// With a turn detector: the silence that ends a turn it called incomplete.
    pub max_pause_ms: u32,
    /// With a turn detector: the completion probability from which a turn is complete.
    pub turn_threshold: f32,
}

impl Default for EndpointerConfig {
    fn default() -> Self {
        EndpointerConfig {
            pre_roll_ms: 300,
            hangover_ms: 600,
            start_ms: 90,
            min_speech_ms: 250,
            tail_ms: 150,
            threshold: 0.5,
            turn_check_ms: 200,
            max_pause_ms: 1_500,
            turn_threshold: 0.5,
        }
    }
}

/// What the endpointer found.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeechEvent {
    /// Speech began at `at_ms` (stream time); announced once it lasted `min_speech_ms`.
    Started {
        /// Onset, in milliseconds from the start of the stream.
        at_ms: u64,
    },
    /// An utterance ended.
    Ended {
        /// Onset.
        start_ms: u64,
        /// End of the last speech frame.
        end_ms: u64,
        /// The audio: pre-roll, the speech, and a short tail.
        audio: Vec<f32>,
    },
    /// Something looked like speech but was too short; no `Started` was announced.
    Rejected {
        /// Onset.
        start_ms: u64,
        /// End.
        end_ms: u64,
    },
}

/// What the turn detector said about the current pause.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pause {
    /// Not asked yet (or speech went on since).
    Unasked,
    /// The turn is complete: end it.
    Complete,
    /// The user is only pausing: wait up to `max_pause_ms`.
    Incomplete,
    /// The detector failed: wait the plain hangover.
    Unknown,
}

enum State {
    Silent {
        speech_run: usize,
    },
    Speaking {
        onset: usize,
        last_speech_end: usize,
        announced: bool,
        pause: Pause,
    },
}

/// Turns a stream of samples into [`SpeechEvent`]s.
pub struct Endpointer {
    vad: Box<dyn Vad + Send>,
    /// Judges pauses, when set (hands-free).
    turn: Option<Box<dyn TurnDetector>>,
    config: EndpointerConfig,
    /// Samples not yet a whole frame.
    pending: Vec<f32>,
    /// Every sample kept: the pre-roll window while silent, the utterance while speaking.
    kept: Vec<f32>,
    /// Stream position (in samples) of `kept[0]`.
    kept_from: usize,
    /// Samples consumed into frames so far.
    position: usize,
    /// Stream position where the last frame the detector called speech ended.
    last_speech: Option<usize>,
    /// With a turn detector: the last utterance's audio (its last 8 s at most) and the
    /// stream position where it ends. An utterance that follows it closely may be the
    /// rest of the same sentence ("How many ounces are in ... a pound?"): the detector
    /// hears both, as "a pound?" alone sounds unfinished.
    previous: Option<(usize, Vec<f32>)>,
    state: State,
}

/// An utterance starting this soon after the last one ended is judged together with it.
const PREVIOUS_WITHIN_MS: u32 = 2_000;

fn ms_to_samples(ms: u32) -> usize {
    (ms as usize) * SPEECH_RATE as usize / 1000
}

fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SPEECH_RATE)
}

impl Endpointer {
    /// An endpointer over `vad`.
    pub fn new(vad: Box<dyn Vad + Send>, config: EndpointerConfig) -> Endpointer {
        Endpointer {
            vad,
            turn: None,
            config,
            pending: Vec::new(),
            kept: Vec::new(),
            kept_from: 0,
            position: 0,
            last_speech: None,
            previous: None,
            state: State::Silent { speech_run: 0 },
        }
    }

    /// True when the detector heard speech in the last `ms` milliseconds of audio (its
    /// own decision lag added), whatever the utterance state: "is the user still
    /// talking right now?", where [`Endpointer::in_speech`] still says yes through the
    /// hangover.
    pub fn heard_within(&self, ms: u32) -> bool {
        let window = ms_to_samples(ms.saturating_add(self.vad.decision_lag_ms()));
        self.last_speech
            .is_some_and(|end| self.position.saturating_sub(end) <= window)
    }

    /// The same endpointer, asking `detector` whether a pause ends the turn.
    pub fn with_turn_detector(mut self, detector: Box<dyn TurnDetector>) -> Endpointer {
        self.turn = Some(detector);
        self
    }

    /// The speech probability above which a frame counts as speech now.
    pub fn threshold(&self) -> f32 {
        self.config.threshold
    }

    /// Changes the speech threshold from the next frame on (the listener lowers it while
    /// the echo canceller is taking the assistant's voice out: see
    /// [`crate::listen::DOUBLE_TALK_THRESHOLD`]).
    pub fn set_threshold(&mut self, threshold: f32) {
        self.config.threshold = threshold;
    }

    /// True while an utterance is open.
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    /// Feeds samples (any length); returns what they completed.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<SpeechEvent>, AudioError> {
        let frame_len = self.vad.frame_len();
        self.pending.extend_from_slice(samples);
        let mut events = Vec::new();
        let mut used = 0;
        while self.pending.len() - used >= frame_len {
            let frame: Vec<f32> = self.pending[used..used + frame_len].to_vec();
            used += frame_len;
            if let Some(event) = self.frame(&frame)? {
                events.push(event);
            }
        }
        self.pending.drain(..used);
        Ok(events)
    }

    /// Drops the utterance under way (nothing is reported for it) and starts over as in
    /// silence: speech that goes on must open a new one. The stream position and the
    /// detector's state go on.
    pub fn reset(&mut self) {
        if let State::Speaking { .. } = self.state {
            self.state = State::Silent { speech_run: 0 };
            self.previous = None;
            let keep = ms_to_samples(self.config.pre_roll_ms);
            if self.kept.len() > keep {
                let drop = self.kept.len() - keep;
                self.kept.drain(..drop);
                self.kept_from += drop;
            }
        }
    }

    /// The stream ended: closes an open utterance.
    pub fn finish(&mut self) -> Option<SpeechEvent> {
        match self.state {
            State::Speaking {
                onset,
                last_speech_end,
                announced,
                ..
            } => Some(self.close(onset, last_speech_end, announced)),
            State::Silent { .. } => None,
        }
    }

    fn frame(&mut self, frame: &[f32]) -> Result<Option<SpeechEvent>, AudioError> {
        self.position += frame.len();
        self.kept.extend_from_slice(frame);
        let speech = self.vad.speech_probability(frame)? >= self.config.threshold;
        if speech {
            self.last_speech = Some(self.position);
        }
        let frame_len = frame.len();
        match self.state {
            State::Silent { speech_run } => {
                let run = if speech { speech_run + 1 } else { 0 };
                let needed = ms_to_samples(self.config.start_ms)
                    .div_ceil(frame_len)
                    .max(1);
                if run >= needed {
                    self.state = State::Speaking {
                        onset: self.position - run * frame_len,
                        last_speech_end: self.position,
                        announced: false,
                        pause: Pause::Unasked,
                    };
                    return Ok(self.announce());
                }
                self.state = State::Silent { speech_run: run };
                // Keep only the pre-roll window (plus the run that may become speech).
                let keep = ms_to_samples(self.config.pre_roll_ms) + run * frame_len;
                if self.kept.len() > keep {
                    let drop = self.kept.len() - keep;
                    self.kept.drain(..drop);
                    self.kept_from += drop;
                }
            }
            State::Speaking {
                onset,
                last_speech_end,
                announced,
                pause,
            } => {
                let (last, mut pause) = if speech {
                    (self.position, Pause::Unasked)
                } else {
                    (last_speech_end, pause)
                };
                let silence = self.position - last;
                if pause == Pause::Unasked
                    && announced
                    && silence >= ms_to_samples(self.config.turn_check_ms)
                {
                    pause = self.judge_pause(onset);
                }
                self.state = State::Speaking {
                    onset,
                    last_speech_end: last,
                    announced,
                    pause,
                };
                let ends_after = match pause {
                    Pause::Complete => self.config.turn_check_ms,
                    Pause::Incomplete => self.config.max_pause_ms,
                    Pause::Unasked | Pause::Unknown => self.config.hangover_ms,
                };
                if silence >= ms_to_samples(ends_after) {
                    return Ok(Some(self.close(onset, last, announced)));
                }
                return Ok(self.announce());
            }
        }
        Ok(None)
    }

    /// Asks the turn detector whether the utterance so far is a complete turn.
    fn judge_pause(&mut self, onset: usize) -> Pause {
        let Some(detector) = self.turn.as_mut() else {
            return Pause::Unknown;
        };
        let from = onset
            .saturating_sub(ms_to_samples(self.config.pre_roll_ms))
            .max(self.kept_from);
        let current = &self.kept[from - self.kept_from..];
        let joined;
        let heard = match &self.previous {
            Some((end, audio))
                if from.saturating_sub(*end) <= ms_to_samples(PREVIOUS_WITHIN_MS)
                    && current.len() < crate::smart_turn::WINDOW_SAMPLES =>
            {
                // The gap between them was quiet: zeros stand for it. Only what the
                // detector's window holds is joined.
                let room = crate::smart_turn::WINDOW_SAMPLES - current.len();
                let gap = from.saturating_sub(*end).min(room);
                let earlier = audio.len().min(room - gap);
                joined = [&audio[audio.len() - earlier..], &vec![0.0; gap], current].concat();
                &joined[..]
            }
            _ => current,
        };
        match detector.completion(heard) {
            Ok(p) if p >= self.config.turn_threshold => Pause::Complete,
            Ok(p) => {
                tracing::debug!("turn detector: incomplete ({p:.2}), waiting for more");
                Pause::Incomplete
            }
            Err(e) => {
                tracing::warn!("turn detector failed, ending turns by silence: {e}");
                Pause::Unknown
            }
        }
    }

    /// Announces the utterance once its speech has lasted `min_speech_ms`.
    fn announce(&mut self) -> Option<SpeechEvent> {
        let min = ms_to_samples(self.config.min_speech_ms);
        match &mut self.state {
            State::Speaking {
                onset,
                last_speech_end,
                announced,
                ..
            } if !*announced && *last_speech_end - *onset >= min => {
                *announced = true;
                Some(SpeechEvent::Started {
                    at_ms: samples_to_ms(*onset),
                })
            }
            _ => None,
        }
    }

    fn close(&mut self, onset: usize, end: usize, announced: bool) -> SpeechEvent {
        // The detector kept saying "speech" for its own hangover after speech stopped.
        let lag = ms_to_samples(self.vad.decision_lag_ms());
        let spoken_end = end.saturating_sub(lag).max(onset);
        let (start_ms, end_ms) = (samples_to_ms(onset), samples_to_ms(spoken_end));
        let from = onset
            .saturating_sub(ms_to_samples(self.config.pre_roll_ms))
            .max(self.kept_from);
        let to = (end + ms_to_samples(self.config.tail_ms)).min(self.kept_from + self.kept.len());
        let audio = self.kept[from - self.kept_from..to - self.kept_from].to_vec();
        if self.turn.is_some() && announced {
            let keep = audio.len().min(crate::smart_turn::WINDOW_SAMPLES);
            self.previous = Some((to, audio[audio.len() - keep..].to_vec()));
        }
        self.kept.clear();
        self.kept_from = self.position;
        self.state = State::Silent { speech_run: 0 };
        if !announced {
            SpeechEvent::Rejected { start_ms, end_ms }
        } else {
            SpeechEvent::Ended {
                start_ms,
                end_ms,
                audio,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::Marker;

    fn signal(parts: &[(u32, f32)]) -> Vec<f32> {
        parts
            .iter()
            .flat_map(|&(ms, v)| std::iter::repeat_n(v, ms_to_samples(ms)))
            .collect()
    }

    fn run(audio: &[f32], chunk: usize) -> Vec<SpeechEvent> {
        let mut ep = Endpointer::new(Box::new(Marker), EndpointerConfig::default());
        let mut events = Vec::new();
        for c in audio.chunks(chunk) {
            events.extend(ep.push(c).unwrap());
        }
        events.extend(ep.finish());
        events
    }

    #[test]
    fn an_utterance_opens_at_its_onset_and_closes_after_the_hangover() {
        let audio = signal(&[(1000, 0.0), (800, 1.0), (300, 0.0), (700, 1.0), (1000, 0.0)]);
        for chunk in [1, 7, 160, 4096] {
            let events = run(&audio, chunk);
            assert_eq!(events.len(), 2, "chunk {chunk}: {events:?}");
            assert_eq!(events[0], SpeechEvent::Started { at_ms: 1000 });
            let SpeechEvent::Ended {
                start_ms,
                end_ms,
                audio,
            } = &events[1]
            else {
                panic!("{events:?}")
            };
            // The 300 ms pause is shorter than the hangover: one utterance.
            assert_eq!((*start_ms, *end_ms), (1000, 2800));
            // Pre-roll 300 ms + 1800 ms + tail 150 ms.
            assert_eq!(audio.len(), ms_to_samples(300 + 1800 + 150));
            assert_eq!(audio[0], 0.0);
            assert_eq!(audio[ms_to_samples(300)], 1.0);
        }
    }

    #[test]
    fn clicks_do_not_open_and_short_bursts_are_rejected() {
        let click = signal(&[(500, 0.0), (20, 1.0), (500, 0.0)]);
        assert!(run(&click, 160).is_empty());
        let burst = signal(&[(500, 0.0), (150, 1.0), (1000, 0.0)]);
        // Too short to announce: no Started ever flashed, only the rejection.
        assert_eq!(
            run(&burst, 160),
            vec![SpeechEvent::Rejected {
                start_ms: 500,
                end_ms: 650
            }]
        );
    }

    /// A turn detector that answers from a script and remembers how much it heard.
    struct Judge {
        answers: std::collections::VecDeque<Result<f32, AudioError>>,
        heard_ms: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    }

    impl TurnDetector for Judge {
        fn completion(&mut self, utterance: &[f32]) -> Result<f32, AudioError> {
            if let Ok(mut heard) = self.heard_ms.lock() {
                heard.push(samples_to_ms(utterance.len()));
            }
            self.answers.pop_front().unwrap_or(Ok(1.0))
        }
    }

    fn judged(
        audio: &[f32],
        answers: Vec<Result<f32, AudioError>>,
    ) -> (Vec<SpeechEvent>, Vec<u64>) {
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let judge = Judge {
            answers: answers.into(),
            heard_ms: std::sync::Arc::clone(&heard),
        };
        let mut ep = Endpointer::new(Box::new(Marker), EndpointerConfig::default())
            .with_turn_detector(Box::new(judge));
        let mut events = Vec::new();
        for c in audio.chunks(320) {
            events.extend(ep.push(c).unwrap());
        }
        events.extend(ep.finish());
        let heard = heard.lock().map(|h| h.clone()).unwrap_or_default();
        (events, heard)
    }

    fn ends(events: &[SpeechEvent]) -> Vec<(u64, u64)> {
        events
            .iter()
            .filter_map(|e| match e {
                SpeechEvent::Ended {
                    start_ms, end_ms, ..
                } => Some((*start_ms, *end_ms)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_pause_the_detector_calls_incomplete_does_not_end_the_turn() {
        // "Can you tell me" ... 900 ms ... "what the capital of Spain is?" ... silence.
        let audio = signal(&[(500, 0.0), (800, 1.0), (900, 0.0), (1200, 1.0), (2000, 0.0)]);
        // Without a detector the 600 ms hangover cuts the question at the pause.
        assert_eq!(ends(&run(&audio, 320)), vec![(500, 1300), (2200, 3400)]);
        // With one: asked after 200 ms of each pause; the first is a pause, the second
        // the end, which closes at once instead of after the hangover.
        let (events, heard) = judged(&audio, vec![Ok(0.1), Ok(0.9)]);
        assert_eq!(ends(&events), vec![(500, 3400)]);
        // It heard the utterance from its pre-roll to 200 ms into each silence.
        assert_eq!(heard, vec![300 + 800 + 200, 300 + 2900 + 200]);
        // The turn ended 200 ms after speech: the Ended event came with that frame.
        let SpeechEvent::Ended { audio: kept, .. } = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(kept.len(), ms_to_samples(300 + 2900 + 150));
    }

    #[test]
    fn an_utterance_soon_after_the_last_is_judged_together_with_it() {
        // "How many ounces are in" (called complete: cut), 900 ms, "a pound?".
        let audio = signal(&[(500, 0.0), (800, 1.0), (900, 0.0), (600, 1.0), (2000, 0.0)]);
        let (events, heard) = judged(&audio, vec![Ok(0.9), Ok(0.9)]);
        assert_eq!(ends(&events), vec![(500, 1300), (2200, 2800)]);
        // The second judgement heard the first utterance (pre-roll, speech, tail), the
        // gap after it, then the second from its pre-roll to 200 ms into the silence.
        let first = 300 + 800 + 150;
        let gap = 2200 - 300 - (1300 + 150);
        assert_eq!(heard, vec![300 + 800 + 200, first + gap + 300 + 600 + 200]);
        // Long after, an utterance is judged alone.
        let audio = signal(&[(500, 0.0), (800, 1.0), (3000, 0.0), (600, 1.0), (2000, 0.0)]);
        let (_, heard) = judged(&audio, vec![Ok(0.9), Ok(0.9)]);
        assert_eq!(heard, vec![300 + 800 + 200, 300 + 600 + 200]);
    }

    #[test]
    fn an_incomplete_turn_still_ends_after_the_longest_pause_and_a_failure_falls_back() {
        let audio = signal(&[(500, 0.0), (800, 1.0), (2500, 0.0)]);
        let (events, _) = judged(&audio, vec![Ok(0.2)]);
        assert_eq!(ends(&events), vec![(500, 1300)]);
        let (events, heard) = judged(
            &audio,
            vec![Err(AudioError::Detector("the model failed".into()))],
        );
        assert_eq!(ends(&events), vec![(500, 1300)]);
        assert_eq!(heard.len(), 1, "asked once per pause");
    }

    #[test]
    fn speech_running_to_the_end_of_the_stream_is_closed_by_finish() {
        let events = run(&signal(&[(200, 0.0), (600, 1.0)]), 160);
        assert!(
            matches!(
                events.last(),
                Some(SpeechEvent::Ended {
                    start_ms: 200,
                    end_ms: 800,
                    ..
                })
            ),
            "{events:?}"
        );
    }
}
