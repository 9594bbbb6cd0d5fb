//! Listening sessions: turning a source's blocks into utterances, in either of two modes.
//!
//! - **Push-to-talk**: the caller opens the utterance on key press and closes it on
//!   release. A little audio from before the press and after the release is kept, because
//!   people start speaking as they press and release while finishing the last word.
//! - **Hands-free**: the endpointer (a [`Vad`](crate::Vad) with pre-roll and hangover)
//!   opens and closes it.
//!
//! [`Listener`] is a plain state machine: feed it blocks and key presses, read back
//! [`ListenEvent`]s. It never blocks and never sees a clock (times are stream times), so
//! the same input always gives the same events, and a test can drive it sample by sample.

use serde::Serialize;

use crate::capture::CaptureEvent;
use crate::echo::{EchoCanceller, EchoStats};
use crate::endpoint::{Endpointer, EndpointerConfig, SpeechEvent};
use crate::level::{Level, LevelMeter};
use crate::quiet::QuietTracker;
use crate::resample::StreamResampler;
use crate::{AudioBuffer, AudioError, SPEECH_RATE};

/// Who opens and closes an utterance: the one listening-mode type, used by the listener,
/// the voice turn, the settings file, the window (TypeScript binding) and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ListenMode {
    /// Hold the hotkey while speaking: press opens, release closes.
    #[default]
    PushToTalk,
    /// Press once to start, once to stop (for desktops that cannot report a key release).
    /// The listener treats it as push-to-talk; only the hotkey reads it differently.
    Toggle,
    /// Voice activity detection opens and closes turns.
    HandsFree,
}

impl ListenMode {
    /// Every mode, in the order the settings list them.
    pub const ALL: [ListenMode; 3] = [
        ListenMode::PushToTalk,
        ListenMode::Toggle,
        ListenMode::HandsFree,
    ];

    /// True when voice activity detection, not a key, opens and closes turns.
    pub fn is_hands_free(self) -> bool {
        self == ListenMode::HandsFree
    }

    /// The name in settings files and on the command line (`push_to_talk`, `toggle`,
    /// `hands_free`).
    pub fn id(self) -> &'static str {
        match self {
            ListenMode::PushToTalk => "push_to_talk",
            ListenMode::Toggle => "toggle",
            ListenMode::HandsFree => "hands_free",
        }
    }
}

impl std::str::FromStr for ListenMode {
    type Err = String;

    /// Reads a mode's [`ListenMode::id`]; `ptt` and `handsfree` are accepted too.
    fn from_str(text: &str) -> Result<ListenMode, String> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        match wanted.as_str() {
            "ptt" => return Ok(ListenMode::PushToTalk),
            "handsfree" => return Ok(ListenMode::HandsFree),
            _ => {}
        }
        ListenMode::ALL
            .into_iter()
            .find(|m| m.id() == wanted)
            .ok_or_else(|| {
                format!("`{text}` is not a listening mode (push_to_talk, toggle or hands_free)")
            })
    }
}

/// Listening settings.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Who opens and closes utterances.
    pub mode: ListenMode,
    /// Endpointing (hands-free; in push-to-talk it only tells whether anything was said).
    pub endpointer: EndpointerConfig,
    /// Push-to-talk: audio kept from before the key press.
    pub ptt_pre_roll_ms: u32,
    /// Push-to-talk: audio still taken after the key is released, when the detector hears
    /// speech at the release (the user released while finishing a word). In silence the
    /// utterance closes at the release: the tail would only delay the answer.
    pub ptt_tail_ms: u32,
    /// Level meter window.
    pub level_window_ms: u32,
    /// Hands-free: the longest utterance; at the limit it closes with what was said so
    /// far ([`ListenEvent::LimitReached`]). 0: no limit.
    pub max_hands_free_ms: u32,
    /// Push-to-talk: the longest the key may keep an utterance open, as above.
    pub max_push_to_talk_ms: u32,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            mode: ListenMode::default(),
            endpointer: EndpointerConfig::default(),
            ptt_pre_roll_ms: 200,
            ptt_tail_ms: 200,
            level_window_ms: 50,
            max_hands_free_ms: 30_000,
            max_push_to_talk_ms: 60_000,
        }
    }
}

/// What listening produced. Times are milliseconds of stream time (audio received since
/// the listener was created).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ListenEvent {
    /// The input level, every `level_window_ms`.
    Level(Level),
    /// An utterance opened: speech onset (hands-free) or key press (push-to-talk).
    UtteranceStarted {
        /// When.
        at_ms: u64,
    },
    /// Hands-free: the detector has heard speech for the endpointer's `start_ms` (90 ms)
    /// that is not an utterance yet: someone may be starting to talk. An
    /// [`ListenEvent::UtteranceStarted`] follows if it lasts, a [`ListenEvent::NoSpeech`]
    /// if it stops short. (Voice barge-in holds the answer's voice on it.)
    SpeechOnset {
        /// When it was noticed.
        at_ms: u64,
    },
    /// More audio of the open utterance, in order from its first sample (pre-roll
    /// included): what partial transcripts are made from.
    UtteranceAudio {
        /// 16 kHz mono samples.
        #[serde(skip)]
        samples: Vec<f32>,
    },
    /// The utterance is complete.
    Utterance {
        /// Onset (hands-free) or key press (push-to-talk).
        start_ms: u64,
        /// End of speech (hands-free) or key release (push-to-talk): the moment the
        /// user stopped, from which the answer's latency is counted.
        end_ms: u64,
        /// The whole utterance, 16 kHz mono, pre-roll and tail included.
        #[serde(skip)]
        audio: Vec<f32>,
    },
    /// The user stopped speaking inside the open utterance (the detector has heard
    /// silence for [`PAUSE_REPORT_MS`], or the microphone has been quiet by level for
    /// [`QUIET_PAUSE_MS`]): the utterance may be over, or only paused. The
    /// recogniser starts the final transcript now, so it is ready when the turn ends.
    Paused {
        /// When the pause was noticed.
        at_ms: u64,
    },
    /// Speech again after a [`ListenEvent::Paused`], in the same utterance.
    Resumed {
        /// When.
        at_ms: u64,
    },
    /// An utterance closed without speech in it (a cough, or a key tapped in silence).
    NoSpeech {
        /// Onset or key press.
        start_ms: u64,
        /// End or key release.
        end_ms: u64,
    },
    /// The open utterance reached the longest allowed: it is closed now (the
    /// [`ListenEvent::Utterance`] with what was said follows). Push-to-talk: the rest of
    /// the key press is not listened to.
    LimitReached {
        /// The limit.
        limit_ms: u64,
    },
    /// The audio source failed (a microphone unplugged). Listening stops until
    /// [`ListenEvent::SourceRestored`]; an open utterance is dropped.
    SourceLost {
        /// What happened, for a person.
        message: String,
        /// True if an utterance was open and is now lost.
        utterance_dropped: bool,
    },
    /// The audio source works again after [`ListenEvent::SourceLost`] (or after failing to
    /// open at first).
    SourceRestored {
        /// The device.
        device: String,
    },
    /// The echo canceller has heard enough of the assistant's voice to take it out
    /// (`EchoCanceller::has_learned`): from now on speech over the voice is the user's.
    EchoCancellerReady,
    /// The echo canceller failed and was dropped: listening goes on without it, so what
    /// the speakers play is heard again (voice barge-in must stop).
    EchoCancellerStopped {
        /// What went wrong.
        reason: String,
    },
}

#[derive(Clone, Copy)]
enum PushToTalk {
    Idle,
    Held {
        start: usize,
        heard_speech: bool,
    },
    Releasing {
        start: usize,
        release: usize,
        heard_speech: bool,
    },
}

/// One listening session over one source.
pub struct Listener {
    config: ListenerConfig,
    endpointer: Endpointer,
    meter: LevelMeter,
    resampler: Option<(u32, StreamResampler)>,
    /// Takes what the assistant plays out of the source's audio, when set.
    echo: Option<EchoCanceller>,
    /// [`ListenEvent::EchoCancellerReady`] was sent.
    echo_ready_told: bool,
    /// The endpointer's own speech threshold (lowered while the assistant's voice is
    /// taken out, [`DOUBLE_TALK_THRESHOLD`]).
    threshold: f32,
    /// The last few seconds of audio, for pre-roll.
    recent: Vec<f32>,
    /// Stream position (samples) of `recent[0]`.
    recent_from: usize,
    /// Samples received so far.
    position: usize,
    /// Hands-free: an utterance is open (its audio is being forwarded).
    open: bool,
    /// Hands-free: where the open utterance's audio starts (pre-roll included).
    open_from: usize,
    ptt: PushToTalk,
    /// Push-to-talk: the open utterance's audio.
    utterance: Vec<f32>,
    /// A pause in the open utterance was reported and no speech came since.
    paused: bool,
    /// How long the microphone has been quiet, against the open utterance's loudest.
    quiet: QuietTracker,
    lost: bool,
}

/// Silence after speech in an open utterance that is reported as a pause
/// ([`ListenEvent::Paused`]), on top of the detector's own decision lag: longer than the
/// gaps inside words, as short as possible, since the final transcript starts then.
pub const PAUSE_REPORT_MS: u32 = 60;

/// Speech heard this recently at a key release means the user is still finishing a word,
/// unless the microphone has been quiet for [`RELEASE_QUIET_MS`].
const STILL_SPEAKING_MS: u32 = 100;

/// The microphone quiet this long by level ([`QuietTracker`]) at a key release: no tail,
/// whatever the detector says. Its probability stays up for 120-200 ms after the sound
/// ends, so a key released a quarter second after the last word took the tail, and the
/// answer waited 200 ms for it.
const RELEASE_QUIET_MS: u32 = 100;

/// The microphone quiet this long after speech is reported as a pause even while the
/// detector still hears speech (its probability lags the sound by 120-200 ms): the final
/// transcript starts then. Longer than the silence inside a stop consonant ("p", "t":
/// 50-80 ms). A pause reported wrongly costs a decode that speech again abandons.
pub const QUIET_PAUSE_MS: u32 = 100;

/// How far the level may run ahead of the detector: past this much more quiet by level,
/// a detector still hearing speech is believed (soft speech after a loud cough or a bump
/// reads as quiet by level; a pause that hid it would lose its words, since the decode
/// made at a pause is the final unless speech comes again, and a release would drop the
/// tail).
const DETECTOR_LAG_MAX_MS: u32 = 250;

/// The speech threshold while the echo canceller takes the assistant's voice out (once it
/// has learned the room): during double talk AEC3's suppressor turns the user down by
/// 10-30 dB with the echo, and Silero's probability on what is left of a word falls to
/// 0.3-0.5; the voice's own residue stays under 0.05 (crates/sotto-audio/tests/echo.rs).
pub const DOUBLE_TALK_THRESHOLD: f32 = 0.35;

/// Audio kept for pre-roll: enough for the longest pre-roll plus the endpointer's
/// announcement delay.
const RECENT_MS: usize = 3_000;

fn ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SPEECH_RATE)
}

fn samples(ms: u64) -> usize {
    (ms * u64::from(SPEECH_RATE) / 1000) as usize
}

impl Listener {
    /// A listener using `endpointer`'s detector (hands-free) and settings from `config`.
    pub fn new(config: ListenerConfig, endpointer: Endpointer) -> Listener {
        let threshold = endpointer.threshold();
        Listener {
            meter: LevelMeter::new(config.level_window_ms),
            config,
            endpointer,
            resampler: None,
            echo: None,
            echo_ready_told: false,
            threshold,
            recent: Vec::new(),
            recent_from: 0,
            position: 0,
            open: false,
            open_from: 0,
            ptt: PushToTalk::Idle,
            utterance: Vec::new(),
            paused: false,
            quiet: QuietTracker::default(),
            lost: false,
        }
    }

    /// The same listener, hearing the source through `canceller`: what the player it
    /// copies plays is taken out before anything else hears the audio.
    pub fn with_echo_canceller(mut self, canceller: EchoCanceller) -> Listener {
        self.echo = Some(canceller);
        self
    }

    /// What the echo canceller measured; `None` without one.
    pub fn echo_stats(&self) -> Option<EchoStats> {
        self.echo.as_ref().map(EchoCanceller::stats)
    }

    /// The mode.
    pub fn mode(&self) -> ListenMode {
        self.config.mode
    }

    /// Milliseconds of audio received.
    pub fn stream_ms(&self) -> u64 {
        ms(self.position)
    }

    /// True while an utterance is open.
    pub fn in_utterance(&self) -> bool {
        self.open || !matches!(self.ptt, PushToTalk::Idle)
    }

    /// Handles one event from a source.
    pub fn on_capture(&mut self, event: CaptureEvent) -> Result<Vec<ListenEvent>, AudioError> {
        match event {
            CaptureEvent::Audio(block) => self.push_block(&block),
            CaptureEvent::Lost(error) => Ok(self.source_lost(error.to_string())),
            CaptureEvent::Restored { device } => Ok(self.source_restored(device)),
        }
    }

    /// Takes a block in the source's own format (any rate, any channel count).
    pub fn push_block(&mut self, block: &AudioBuffer) -> Result<Vec<ListenEvent>, AudioError> {
        if block.channels == 0 {
            return Err(AudioError::Unsupported("a block with 0 channels".into()));
        }
        let mono = block.downmix();
        let rate_changed = self
            .resampler
            .as_ref()
            .is_none_or(|(rate, _)| *rate != block.sample_rate);
        if rate_changed {
            self.resampler = Some((
                block.sample_rate,
                StreamResampler::new(block.sample_rate, SPEECH_RATE)?,
            ));
        }
        let Some((_, resampler)) = self.resampler.as_mut() else {
            return Ok(Vec::new());
        };
        let speech_rate = resampler.push(&mono)?;
        match self.echo.as_mut().map(|c| c.process(&speech_rate)) {
            Some(Ok(clean)) => {
                let learned = self.echo.as_ref().is_some_and(EchoCanceller::has_learned);
                let playing = self.echo.as_ref().is_some_and(EchoCanceller::playing);
                // Over the assistant's voice, AEC3's suppressor turns the user down with
                // the echo: what is left of them is heard more readily.
                self.endpointer.set_threshold(if learned && playing {
                    self.threshold.min(DOUBLE_TALK_THRESHOLD)
                } else {
                    self.threshold
                });
                let mut events = self.push(&clean)?;
                if learned && !self.echo_ready_told {
                    self.echo_ready_told = true;
                    events.insert(0, ListenEvent::EchoCancellerReady);
                }
                Ok(events)
            }
            Some(Err(e)) => {
                // Listening goes on without it: the microphone is not lost.
                tracing::warn!("echo cancellation stopped: {e}");
                self.echo = None;
                self.endpointer.set_threshold(self.threshold);
                let mut events = vec![ListenEvent::EchoCancellerStopped {
                    reason: e.to_string(),
                }];
                events.extend(self.push(&speech_rate)?);
                Ok(events)
            }
            None => self.push(&speech_rate),
        }
    }

    /// Takes 16 kHz mono samples.
    pub fn push(&mut self, block: &[f32]) -> Result<Vec<ListenEvent>, AudioError> {
        if self.lost {
            return Ok(Vec::new());
        }
        let mut events: Vec<ListenEvent> = self
            .meter
            .push(block)
            .into_iter()
            .map(ListenEvent::Level)
            .collect();
        self.remember(block);
        self.quiet.push(block);
        let was_open = self.open;
        let was_in_speech = self.endpointer.in_speech();
        let speech = self.endpointer.push(block)?;
        match self.config.mode {
            ListenMode::HandsFree => {
                if was_open && !block.is_empty() {
                    events.push(ListenEvent::UtteranceAudio {
                        samples: block.to_vec(),
                    });
                }
                for event in speech {
                    self.hands_free(event, &mut events);
                }
                if !was_in_speech && self.endpointer.in_speech() && !self.open {
                    events.push(ListenEvent::SpeechOnset {
                        at_ms: ms(self.position),
                    });
                }
            }
            ListenMode::PushToTalk | ListenMode::Toggle => {
                let heard = !speech.is_empty() || self.endpointer.in_speech();
                self.push_to_talk_audio(block, heard, &mut events);
            }
        }
        self.enforce_limit(&mut events);
        self.report_pause(&mut events);
        Ok(events)
    }

    /// Closes an utterance that reached its mode's longest, keeping what was said.
    fn enforce_limit(&mut self, events: &mut Vec<ListenEvent>) {
        let (from, limit) = match (self.config.mode, self.ptt) {
            (ListenMode::HandsFree, _) if self.open => {
                (self.open_from, self.config.max_hands_free_ms)
            }
            (
                ListenMode::PushToTalk | ListenMode::Toggle,
                PushToTalk::Held { start, .. } | PushToTalk::Releasing { start, .. },
            ) => (start, self.config.max_push_to_talk_ms),
            _ => return,
        };
        if limit == 0 || self.position.saturating_sub(from) < samples(u64::from(limit)) {
            return;
        }
        events.push(ListenEvent::LimitReached {
            limit_ms: u64::from(limit),
        });
        match self.ptt {
            PushToTalk::Held {
                start,
                heard_speech,
            }
            | PushToTalk::Releasing {
                start,
                heard_speech,
                ..
            } => {
                let end = self.position;
                events.push(self.close_push_to_talk(start, end, heard_speech));
            }
            PushToTalk::Idle => {
                if let Some(event) = self.endpointer.finish() {
                    self.hands_free(event, events);
                }
                self.open = false;
            }
        }
        self.paused = false;
    }

    /// Reports the user going quiet, or speaking again, inside an open utterance that
    /// has had speech.
    fn report_pause(&mut self, events: &mut Vec<ListenEvent>) {
        let spoken = match self.ptt {
            PushToTalk::Held { heard_speech, .. } | PushToTalk::Releasing { heard_speech, .. } => {
                heard_speech
            }
            PushToTalk::Idle => self.open,
        };
        if !spoken {
            self.paused = false;
            return;
        }
        let quiet = !self.endpointer.heard_within(PAUSE_REPORT_MS)
            || self.level_ahead_of_detector(QUIET_PAUSE_MS);
        let at_ms = ms(self.position);
        if quiet && !self.paused {
            self.paused = true;
            events.push(ListenEvent::Paused { at_ms });
        } else if !quiet && self.paused {
            self.paused = false;
            events.push(ListenEvent::Resumed { at_ms });
        }
    }

    /// Push-to-talk: the key went down.
    pub fn press(&mut self) -> Vec<ListenEvent> {
        if self.lost || self.config.mode.is_hands_free() {
            return Vec::new();
        }
        if !matches!(self.ptt, PushToTalk::Idle) {
            // A second press while open (key repeat) changes nothing.
            if let PushToTalk::Releasing {
                start,
                heard_speech,
                ..
            } = self.ptt
            {
                // Pressed again within the tail: the same utterance goes on.
                self.ptt = PushToTalk::Held {
                    start,
                    heard_speech,
                };
            }
            return Vec::new();
        }
        let start = self
            .position
            .saturating_sub(samples(u64::from(self.config.ptt_pre_roll_ms)))
            .max(self.recent_from);
        self.utterance = self.recent[start - self.recent_from..].to_vec();
        self.quiet.reset();
        self.quiet.push(&self.utterance);
        self.ptt = PushToTalk::Held {
            start,
            heard_speech: self.endpointer.in_speech(),
        };
        let mut events = vec![ListenEvent::UtteranceStarted {
            at_ms: ms(self.position),
        }];
        if !self.utterance.is_empty() {
            events.push(ListenEvent::UtteranceAudio {
                samples: self.utterance.clone(),
            });
        }
        events
    }

    /// The microphone has been quiet by level for `ms`, and not so long that a detector
    /// still hearing speech could only be hearing soft speech. Never while the echo
    /// canceller takes the assistant's voice out: its suppressor turns the user down with
    /// the echo, so the level says nothing about the user's silence.
    fn level_ahead_of_detector(&self, ms: u32) -> bool {
        !self.echo.as_ref().is_some_and(EchoCanceller::playing)
            && self.quiet.quiet_for(ms)
            && !self.quiet.quiet_for(ms + DETECTOR_LAG_MAX_MS)
    }

    /// Push-to-talk: the key came up. The utterance closes now, or after the tail when
    /// speech is still heard at the release.
    pub fn release(&mut self) -> Vec<ListenEvent> {
        if let PushToTalk::Held {
            start,
            heard_speech,
        } = self.ptt
        {
            if !self.endpointer.heard_within(STILL_SPEAKING_MS)
                || self.level_ahead_of_detector(RELEASE_QUIET_MS)
            {
                return vec![self.close_push_to_talk(start, self.position, heard_speech)];
            }
            self.ptt = PushToTalk::Releasing {
                start,
                release: self.position,
                heard_speech,
            };
            let mut events = Vec::new();
            self.push_to_talk_audio(&[], false, &mut events);
            return events;
        }
        Vec::new()
    }

    /// Push-to-talk: closes the open utterance as [`ListenEvent::NoSpeech`] if nothing
    /// has been said in it (listening that no key will end); otherwise nothing changes.
    pub fn release_if_silent(&mut self) -> Vec<ListenEvent> {
        match self.ptt {
            PushToTalk::Held {
                start,
                heard_speech: false,
            } if !self.endpointer.in_speech() => {
                let end = self.position;
                vec![self.close_push_to_talk(start, end, false)]
            }
            _ => Vec::new(),
        }
    }

    /// Drops an open utterance without a result (the user cancelled).
    pub fn cancel(&mut self) {
        // The endpointer forgets the speech it was in: its end must not close into an
        // utterance after all (the echo guard cancels the assistant's own voice).
        self.endpointer.reset();
        self.ptt = PushToTalk::Idle;
        self.utterance.clear();
        self.open = false;
        self.paused = false;
    }

    /// The source ended (a file played out): closes an open utterance.
    pub fn finish(&mut self) -> Vec<ListenEvent> {
        let mut events = Vec::new();
        if self.lost {
            return events;
        }
        match self.config.mode {
            ListenMode::HandsFree => {
                if let Some(event) = self.endpointer.finish() {
                    self.hands_free(event, &mut events);
                }
            }
            ListenMode::PushToTalk | ListenMode::Toggle => {
                if let PushToTalk::Held {
                    start,
                    heard_speech,
                }
                | PushToTalk::Releasing {
                    start,
                    heard_speech,
                    ..
                } = self.ptt
                {
                    let release = match self.ptt {
                        PushToTalk::Releasing { release, .. } => release,
                        _ => self.position,
                    };
                    events.push(self.close_push_to_talk(start, release, heard_speech));
                }
            }
        }
        events
    }

    /// The source failed: listening is over.
    pub fn source_lost(&mut self, message: String) -> Vec<ListenEvent> {
        let utterance_dropped = self.in_utterance();
        self.cancel();
        self.lost = true;
        vec![ListenEvent::SourceLost {
            message,
            utterance_dropped,
        }]
    }

    /// The source works again (a microphone plugged back in): listening goes on, from a
    /// clean start.
    pub fn source_restored(&mut self, device: String) -> Vec<ListenEvent> {
        self.cancel();
        // Speech cut off by the loss is over.
        let _ = self.endpointer.finish();
        self.lost = false;
        self.resampler = None;
        vec![ListenEvent::SourceRestored { device }]
    }

    fn remember(&mut self, block: &[f32]) {
        self.recent.extend_from_slice(block);
        self.position += block.len();
        let keep = samples(RECENT_MS as u64);
        if self.recent.len() > 2 * keep {
            let drop = self.recent.len() - keep;
            self.recent.drain(..drop);
            self.recent_from += drop;
        }
    }

    fn hands_free(&mut self, event: SpeechEvent, events: &mut Vec<ListenEvent>) {
        match event {
            SpeechEvent::Started { at_ms } => {
                self.open = true;
                events.push(ListenEvent::UtteranceStarted { at_ms });
                // Everything from the pre-roll before the onset up to now.
                let from = samples(at_ms)
                    .saturating_sub(samples(u64::from(self.config.endpointer.pre_roll_ms)))
                    .max(self.recent_from);
                self.open_from = from;
                // The level's scale is the utterance's, its first words included.
                self.quiet.reset();
                self.quiet.push(&self.recent[from - self.recent_from..]);
                events.push(ListenEvent::UtteranceAudio {
                    samples: self.recent[from - self.recent_from..].to_vec(),
                });
            }
            SpeechEvent::Ended {
                start_ms,
                end_ms,
                audio,
            } => {
                self.open = false;
                events.push(ListenEvent::Utterance {
                    start_ms,
                    end_ms,
                    audio,
                });
            }
            SpeechEvent::Rejected { start_ms, end_ms } => {
                self.open = false;
                events.push(ListenEvent::NoSpeech { start_ms, end_ms });
            }
        }
    }

    fn push_to_talk_audio(&mut self, block: &[f32], heard: bool, events: &mut Vec<ListenEvent>) {
        match &mut self.ptt {
            PushToTalk::Idle => {}
            PushToTalk::Held { heard_speech, .. } => {
                *heard_speech |= heard;
                self.utterance.extend_from_slice(block);
                if !block.is_empty() {
                    events.push(ListenEvent::UtteranceAudio {
                        samples: block.to_vec(),
                    });
                }
            }
            PushToTalk::Releasing {
                start,
                release,
                heard_speech,
            } => {
                *heard_speech |= heard;
                let (start, release, heard_speech) = (*start, *release, *heard_speech);
                let end = release + samples(u64::from(self.config.ptt_tail_ms));
                let wanted = end.saturating_sub(start + self.utterance.len());
                let take = wanted.min(block.len());
                self.utterance.extend_from_slice(&block[..take]);
                if take > 0 {
                    events.push(ListenEvent::UtteranceAudio {
                        samples: block[..take].to_vec(),
                    });
                }
                if start + self.utterance.len() >= end {
                    events.push(self.close_push_to_talk(start, release, heard_speech));
                }
            }
        }
    }

    fn close_push_to_talk(&mut self, start: usize, release: usize, heard: bool) -> ListenEvent {
        self.ptt = PushToTalk::Idle;
        let audio = std::mem::take(&mut self.utterance);
        let (start_ms, end_ms) = (ms(start), ms(release));
        if heard {
            ListenEvent::Utterance {
                start_ms,
                end_ms,
                audio,
            }
        } else {
            ListenEvent::NoSpeech { start_ms, end_ms }
        }
    }
}

#[cfg(test)]
mod tests;
