//! The orchestrator: one task that owns the turn state machine. Everything else (the ears,
//! the recogniser, the language model, the mouth, the player) runs on its own thread or
//! task and reports here; only this task changes state and emits [`Event`]s.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_audio::{AudioBuffer, ListenMode};
use sotto_llm::{ChatRequest, Chunk, FinishReason, Llm, LlmError, Message, Role, Sampling};
use sotto_stt::Transcript;
use sotto_tts::split::{SentenceSplitter, SplitConfig};
use tokio::sync::{broadcast, mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::answer_guard::AnswerGuard;
use crate::ears::{EarsControl, Heard};
use crate::event::{AssistantState, ErrorKind, Event, Timings, TurnOutcome};
use crate::memory::{Memory, TurnAudio, TurnRecord};
use crate::mouth::{Say, Spoken};
use crate::output::AudioOut;
use crate::played::played_text;
use crate::stt_worker::{SttJob, SttReply, SttWorker};

mod answer;
mod early;
mod heard;
mod speaking;
use early::{Early, LlmItem, EARLY_BIT};

/// The default persona: answers made to be heard (issue #18; chosen by
/// `cargo xtask bench answers`, docs/BENCHMARKS.md).
pub const SPEECH_PERSONA: &str = "You are Sotto, a voice assistant: everything you write is \
     spoken aloud. Answer in one or two short sentences unless asked for more. Never write \
     lists, numbered steps, Markdown, formulas or emoji: say the steps in one sentence \
     joined with then.";

/// How the assistant converses.
#[derive(Debug, Clone)]
pub struct TurnSettings {
    /// Push-to-talk or hands-free.
    pub mode: ListenMode,
    /// The persona.
    pub system_prompt: String,
    /// Generation settings.
    pub sampling: Sampling,
    /// Speaking rate.
    pub speed: f32,
    /// How the answer is cut into pieces for the voice.
    pub split: SplitConfig,
    /// Partial transcripts every this much new audio (0: none).
    pub partial_interval_ms: u32,
    /// Hands-free: let speech heard while the assistant speaks interrupt it (speech
    /// that lasted the endpointer's `min_speech_ms`, 250 ms: an "mm-hm" does not). Only
    /// with the echo canceller on ([`crate::settings::Settings::turn_settings`] sees to
    /// it): without it, the assistant would hear its own voice and interrupt itself, and
    /// speech while it speaks is taken for that echo.
    pub barge_in_while_speaking: bool,
    /// Voice barge-in waits for the echo canceller to have learned the room
    /// ([`Heard::EchoReady`]): until then what is heard over the voice may be the voice
    /// itself, and the echo guard applies. Set when a canceller is attached.
    pub barge_in_waits_for_canceller: bool,
    /// Earlier turns sent with each question.
    pub history_turns: usize,
    /// The most words an answer says (0: no limit), ended at a sentence; several times
    /// more when the question asks for a story or details. A spoken answer past about
    /// 60 words (25 s) is more than a listener takes in.
    pub answer_words: usize,
    /// A turn that makes no progress this long (no transcript, no word from the model,
    /// no piece from the voice) is stopped as failed, so a hung engine never leaves the
    /// assistant stuck. Longer than the engines' own limits (the local model's first
    /// token: 60 s), which say more precisely what went wrong. Zero: no watchdog.
    pub stall_timeout: Duration,
    /// While sound is queued, the player playing none of it this long means the output
    /// device stopped: the turn fails with a speaker error. Zero: not watched.
    pub playback_stall: Duration,
    /// The longest typed question, in characters; a longer one is cut and the user told.
    pub max_typed_chars: usize,
    /// The model's context in tokens: what is sent (persona, history, question) is
    /// trimmed to fit it with room for the answer, for every provider.
    pub context_tokens: usize,
}

impl Default for TurnSettings {
    fn default() -> Self {
        TurnSettings {
            mode: ListenMode::PushToTalk,
            system_prompt: SPEECH_PERSONA.into(),
            sampling: Sampling {
                temperature: 0.0,
                max_tokens: 160,
                ..Sampling::default()
            },
            speed: 1.0,
            split: SplitConfig::default(),
            partial_interval_ms: 600,
            barge_in_while_speaking: false,
            barge_in_waits_for_canceller: false,
            history_turns: 6,
            answer_words: 60,
            stall_timeout: Duration::from_secs(90),
            playback_stall: Duration::from_secs(5),
            max_typed_chars: 2000,
            context_tokens: 4096,
        }
    }
}

/// What the UI (or the CLI) asks of the assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The hotkey went down (push-to-talk): listen. Interrupts an answer in progress.
    StartListening,
    /// The hotkey came up: the user is done.
    StopListening,
    /// Stop the answer now and listen.
    Interrupt,
    /// A typed question instead of a spoken one.
    SendText(String),
    /// Start over: the next question is asked without the earlier turns (history on disk
    /// is kept). Stops an answer in progress.
    NewConversation,
    /// Stop everything.
    Shutdown,
}

/// Voice barge-in: how long the voice stays paused on a possible start of speech over it
/// (heard for 90 ms) before playing on, when the speech did not last long enough (250 ms)
/// to interrupt. An "mm-hm" costs the answer this much silence, not the answer.
const HOLD_FOR_SPEECH: Duration = Duration::from_millis(300);

/// How long after the last sound the speaker may still be heard by the microphone.
const ECHO_TAIL: Duration = Duration::from_millis(300);

/// Hands-free: how long a broken-off sentence ("Can you tell me ...") waits for the rest
/// once its transcript is in (it comes 0.2-0.6 s after the speech stopped): a thinking
/// pause of up to about 1.5 s in all.
const UNFINISHED_WAIT: Duration = Duration::from_millis(1_200);

/// Hands-free: a transcript that sounds broken off, waiting for the rest of the sentence.
struct Held {
    /// The audio of the turn so far: the rest is decoded together with it.
    audio: Vec<f32>,
    /// What it said.
    text: String,
    /// Answered as it is if no speech starts before then.
    until: tokio::time::Instant,
    /// Speech started again: the wait is over, the next utterance completes the turn.
    resumed: bool,
    /// No more is coming (the rest was a blip, or the microphone went): answer as soon
    /// as [`Held::text`] is known (it is empty while the first part is still decoded).
    give_up: bool,
}

/// Sleeps until `at`; never, for `None`.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Push-to-talk: how long listening opened by an interrupt waits for a word before it
/// closes by itself.
pub const INTERRUPT_LISTEN_LIMIT: Duration = Duration::from_secs(8);

/// The answer side of a turn: from the final transcript (or typed question) to the end of
/// playback.
pub(crate) struct Turn {
    /// The turn's id (every event of the turn carries it).
    id: u64,
    /// What the user asked.
    user_text: String,
    /// Everything the model said, spoken or not.
    answer: String,
    /// Cuts the streamed answer into pieces for the voice.
    splitter: SentenceSplitter,
    /// Which pieces are said: none after a loop or past the answer's length.
    guard: AnswerGuard,
    /// Stops the language model (and only it: what was said plays on).
    llm_cancel: CancellationToken,
    /// Cancelled when the turn ends: stops the model and the voice.
    cancel: CancellationToken,
    /// When each stage happened.
    timings: Timings,
    /// Who answered ("local", "instant", a cloud provider).
    provider: Option<String>,
    /// Each spoken piece's text and its output sample range, as queued on the player.
    pieces: Vec<(String, u64, u64)>,
    /// Pieces handed to the voice.
    pieces_sent: usize,
    /// The model finished (or failed), and the voice was told no more pieces follow.
    llm_done: bool,
    /// The output sample where playback of the whole answer ends, once known.
    playback_end: Option<u64>,
    /// Something failed: the turn ends as failed whatever else happens.
    failed: bool,
    /// Audio for the turn log (only while turn logs are on).
    audio: TurnAudio,
}

/// The stages around the orchestrator, as it talks to them.
pub(crate) struct Stages {
    /// Key presses and cancels for the listener.
    pub(crate) ears: std_mpsc::Sender<EarsControl>,
    /// The recogniser.
    pub(crate) stt: SttWorker,
    /// The voice.
    pub(crate) mouth: std_mpsc::Sender<Say>,
    /// Where the language model's chunks are sent back to the orchestrator (one task per
    /// answer feeds it).
    pub(crate) llm_tx: mpsc::UnboundedSender<(u64, Option<Result<Chunk, LlmError>>)>,
}

/// What the orchestrator answers with.
pub(crate) struct AnswerEngines {
    /// The language model.
    pub(crate) llm: Arc<dyn Llm>,
    /// Where answers are played.
    pub(crate) player: Arc<dyn AudioOut>,
    /// Instant answers, if enabled.
    pub(crate) instant: Option<Box<dyn crate::intents::InstantSource>>,
    /// Where finished turns are kept.
    pub(crate) memory: Option<Memory>,
}

/// The one task that owns the turn state machine.
pub(crate) struct Orchestrator {
    /// How the assistant converses.
    settings: TurnSettings,
    /// Time zero of every event's `at_ms` and every [`Timings`] field.
    origin: Instant,
    /// Where events go (the window, the CLI, the logs).
    events: broadcast::Sender<Event>,
    /// The stages it drives.
    stages: Stages,
    /// Where answers are played.
    player: Arc<dyn AudioOut>,
    /// The language model.
    llm: Arc<dyn Llm>,
    /// Answers made ahead of time for common questions, if enabled.
    instant: Option<Box<dyn crate::intents::InstantSource>>,
    /// Where finished turns are kept (`None`: nowhere).
    memory: Option<Memory>,
    /// The state the user sees.
    state: AssistantState,
    /// The turn the current state belongs to.
    state_turn: u64,
    /// The id the next turn gets: the utterance being listened to, if any, becomes it.
    upcoming: u64,
    /// The turn being answered, if any.
    turn: Option<Turn>,
    /// The conversation so far as the model sees it: each question and what the user
    /// heard of its answer.
    context: Vec<Message>,
    /// The audio source ended: stop once the last turn is over.
    source_ended: bool,
    /// The microphone failed and is not back yet: what the user was told. Typed questions
    /// are still answered; listening waits for [`Heard::Restored`].
    mic_lost: Option<String>,
    /// When the turn under way last moved on (a state, a transcript, a word from the
    /// model, a spoken piece, sound played), for the stall watchdog.
    progress_at: tokio::time::Instant,
    /// The player's count of played samples when the watchdog last looked.
    played_seen: u64,
    /// Push-to-talk, after an interrupt opened listening: when to close it if nothing
    /// has been said (the user may never speak, and no key will come up).
    silent_close_at: Option<tokio::time::Instant>,
    /// When the player last had sound to play (for the echo guard).
    last_sound: Option<tokio::time::Instant>,
    /// Voice barge-in: the voice is paused on speech that may be the user taking the
    /// turn; when it plays on if that speech does not last.
    resume_at: Option<tokio::time::Instant>,
    /// The echo canceller has learned the room (or none is waited for): voice barge-in
    /// may act.
    echo_ready: bool,
    /// Hands-free: the audio of the utterance being transcribed, kept in case its
    /// transcript sounds broken off.
    utterance_audio: Option<Vec<f32>>,
    /// Hands-free: the current turn's transcript sounded broken off; waiting for more.
    held: Option<Held>,
    /// Finals still to come for audio that was since decoded again with more after it.
    stale_finals: usize,
    /// The answer started on the words heard at the user's pause, if any.
    early: Option<Early>,
    /// Stops the language model reading ahead of the question being spoken, if it is.
    reading_ahead: Option<CancellationToken>,
}

/// The channels the orchestrator listens on.
pub(crate) struct Inputs {
    /// Commands from the UI or the CLI.
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    /// What the ears heard.
    pub(crate) heard: mpsc::UnboundedReceiver<Heard>,
    /// Transcripts.
    pub(crate) stt: mpsc::UnboundedReceiver<SttReply>,
    /// The model's chunks, by turn.
    pub(crate) llm: mpsc::UnboundedReceiver<(u64, Option<Result<Chunk, LlmError>>)>,
    /// What the mouth queued.
    pub(crate) spoken: mpsc::UnboundedReceiver<Spoken>,
    /// Notified each time the player runs out of audio.
    pub(crate) drained: Arc<Notify>,
}

impl Orchestrator {
    /// An orchestrator at rest, before its first turn.
    pub(crate) fn new(
        settings: TurnSettings,
        origin: Instant,
        events: broadcast::Sender<Event>,
        stages: Stages,
        engines: AnswerEngines,
    ) -> Orchestrator {
        let echo_ready = !settings.barge_in_waits_for_canceller;
        Orchestrator {
            settings,
            origin,
            events,
            stages,
            player: engines.player,
            llm: engines.llm,
            instant: engines.instant,
            memory: engines.memory,
            state: AssistantState::Idle,
            state_turn: 0,
            upcoming: 1,
            turn: None,
            context: Vec::new(),
            source_ended: false,
            mic_lost: None,
            progress_at: tokio::time::Instant::now(),
            played_seen: 0,
            silent_close_at: None,
            resume_at: None,
            echo_ready,
            last_sound: None,
            utterance_audio: None,
            held: None,
            stale_finals: 0,
            early: None,
            reading_ahead: None,
        }
    }

    fn ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64() * 1000.0
    }

    fn now_ms(&self) -> f64 {
        self.ms(Instant::now())
    }

    fn emit(&self, event: Event) {
        tracing::debug!(?event);
        let _ = self.events.send(event);
    }

    fn set_state(&mut self, state: AssistantState, turn_id: u64) {
        // A new turn in the same state (hands-free: listening, then listening to the
        // next question) is not a change the user can see.
        if self.state == state {
            self.state_turn = turn_id;
            return;
        }
        self.state = state;
        self.state_turn = turn_id;
        self.progress();
        self.emit(Event::StateChanged {
            state,
            turn_id,
            at_ms: self.now_ms(),
        });
    }

    /// Listening for the next turn.
    fn listen(&mut self) {
        self.set_state(AssistantState::Listening, self.upcoming);
    }

    fn error(&self, turn_id: Option<u64>, kind: ErrorKind, message: String) {
        tracing::warn!("{message}");
        self.emit(Event::ErrorOccurred {
            turn_id,
            kind,
            message,
        });
    }

    /// Goes to the state between turns: listening (hands-free, while there is audio) or
    /// idle; `last` is the turn that just ended.
    fn rest(&mut self, last: u64) {
        if self.settings.mode.is_hands_free() && !self.source_ended && self.mic_lost.is_none() {
            self.listen();
        } else {
            self.set_state(AssistantState::Idle, last);
        }
    }

    /// What every conversation with the language model starts with.
    fn persona(&self) -> Message {
        Message {
            role: Role::System,
            content: self.settings.system_prompt.clone(),
        }
    }

    fn answering(&self) -> bool {
        self.turn.is_some()
    }

    /// The turn under way moved on.
    fn progress(&mut self) {
        self.progress_at = tokio::time::Instant::now();
    }

    /// How long the turn may go without progress now: the playback limit while sound
    /// waits to be played, else the general one.
    fn stall_limit(&self) -> Duration {
        let playing = self.state == AssistantState::Speaking && self.player.queued_samples() > 0;
        if playing && !self.settings.playback_stall.is_zero() {
            self.settings.playback_stall
        } else {
            self.settings.stall_timeout
        }
    }

    /// When the watchdog looks next, while a turn is under way.
    fn stall_deadline(&self) -> Option<tokio::time::Instant> {
        let limit = self.stall_limit();
        (self.answering() && !limit.is_zero()).then(|| self.progress_at + limit)
    }

    /// The watchdog's look: sound played is progress; otherwise a turn stalled past its
    /// limit fails, saying which stage hung, and the assistant is free again.
    fn on_stall(&mut self) {
        let played = self.player.played_samples();
        if played != self.played_seen {
            self.played_seen = played;
            self.progress();
            return;
        }
        let limit = self.stall_limit();
        if !self.answering() || self.progress_at.elapsed() < limit {
            return;
        }
        let secs = limit.as_secs();
        let (kind, message) = match self.state {
            AssistantState::AnalyzingSpeech => (
                ErrorKind::SpeechToText,
                format!("Speech recognition did not finish within {secs} s; the question was dropped. Please ask again."),
            ),
            AssistantState::GeneratingSpeech => (
                ErrorKind::Voice,
                format!("The voice made no sound for {secs} s; the answer was stopped."),
            ),
            AssistantState::Speaking if self.player.queued_samples() > 0 => (
                ErrorKind::Speaker,
                format!("The speaker stopped playing (nothing played for {secs} s); the answer was stopped. Check the output device."),
            ),
            AssistantState::Speaking => (
                ErrorKind::Voice,
                format!("The rest of the answer did not come within {secs} s; the answer was stopped."),
            ),
            _ => (
                ErrorKind::Llm,
                format!("The model gave no answer for {secs} s; the question was dropped. Please ask again."),
            ),
        };
        let turn_id = self.turn.as_ref().map(|t| t.id);
        self.error(turn_id, kind, message);
        self.interrupt_as(TurnOutcome::Failed, true);
    }

    /// Runs until shut down, or until the audio source has ended and the last turn is over.
    pub(crate) async fn run(mut self, mut inputs: Inputs) {
        // The local model reads the persona now, so the first question reuses it from the
        // KV cache as every later one does.
        self.llm.warm_up(vec![self.persona()]);
        self.player.signal_drained(Arc::clone(&inputs.drained));
        self.rest(0);
        loop {
            if self.source_ended && !self.answering() {
                break;
            }
            // Biased: the engines' reports first, so a command acts on the latest state
            // (an interrupt knows every piece already queued); commands before what the
            // ears heard, as a key press comes before the speech it opens.
            let hold_until = self.held.as_ref().filter(|h| !h.resumed).map(|h| h.until);
            let stall_at = self.stall_deadline();
            let close_at = self.silent_close_at;
            let resume_at = self.resume_at;
            tokio::select! {
                biased;
                Some(spoken) = inputs.spoken.recv() => self.on_spoken(spoken),
                () = inputs.drained.notified() => self.on_drained(),
                Some((turn, chunk)) = inputs.llm.recv() => self.on_llm(turn, chunk),
                Some(reply) = inputs.stt.recv() => self.on_stt(reply),
                command = inputs.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some(heard) = inputs.heard.recv() => self.on_heard(heard),
                // After what the ears heard: speech already queued at the deadline
                // continues the sentence.
                () = sleep_until(hold_until) => self.release_held(),
                () = sleep_until(stall_at) => self.on_stall(),
                () = sleep_until(resume_at) => self.play_on(),
                () = sleep_until(close_at) => {
                    self.silent_close_at = None;
                    let _ = self.stages.ears.send(EarsControl::ReleaseIfSilent);
                }
            }
        }
        if self.answering() {
            self.interrupt_as(TurnOutcome::Interrupted, true);
        }
        // An answer started at a pause the user never finished is stopped too.
        self.drop_early();
        self.stop_reading_ahead();
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::StartListening if self.mic_lost.is_some() => {
                // Nothing to listen with: say so again rather than listen to nothing.
                let message = self.mic_lost.clone().unwrap_or_default();
                self.error(None, ErrorKind::Microphone, message);
            }
            Command::StartListening => {
                self.silent_close_at = None;
                if self.answering() {
                    self.interrupt();
                }
                let _ = self.stages.ears.send(EarsControl::Press);
                self.listen();
            }
            Command::StopListening => {
                self.silent_close_at = None;
                let _ = self.stages.ears.send(EarsControl::Release);
            }
            Command::Interrupt => {
                if self.answering() {
                    self.interrupt();
                    if !self.settings.mode.is_hands_free() {
                        // Interrupting is asking to speak: listen until the key (or the
                        // button) says stop, or until a while passes without a word.
                        let _ = self.stages.ears.send(EarsControl::Press);
                        self.silent_close_at =
                            Some(tokio::time::Instant::now() + INTERRUPT_LISTEN_LIMIT);
                    }
                    self.listen();
                }
            }
            Command::SendText(text) if text.trim().is_empty() => {
                tracing::debug!("an empty typed question: nothing to ask");
            }
            Command::SendText(text) => {
                let limit = self.settings.max_typed_chars;
                let (text, cut) = match text.trim().char_indices().nth(limit) {
                    Some((end, _)) => (text.trim()[..end].to_string(), true),
                    None => (text.trim().to_string(), false),
                };
                if self.answering() {
                    self.interrupt();
                }
                // The typed question replaces whatever was being said: an open utterance
                // must not come back later as a question of its own.
                let _ = self.stages.ears.send(EarsControl::Cancel);
                self.stages.stt.send(SttJob::Reset);
                let id = self.new_turn();
                if cut {
                    self.error(
                        Some(id),
                        ErrorKind::Limit,
                        format!("The question was longer than {limit} characters: only its first {limit} were asked."),
                    );
                }
                self.emit(Event::TranscriptFinal {
                    turn_id: id,
                    text: text.clone(),
                });
                self.answer(id, text);
            }
            Command::NewConversation => {
                if self.answering() {
                    self.interrupt();
                }
                self.context.clear();
            }
            Command::Shutdown => {}
        }
    }

    /// Starts turn [`Orchestrator::upcoming`]; the one after it is listened for next.
    fn new_turn(&mut self) -> u64 {
        let id = self.upcoming;
        self.upcoming += 1;
        id
    }
}

#[cfg(test)]
mod tests;
