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

mod early;
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

    fn on_heard(&mut self, heard: Heard) {
        if matches!(heard, Heard::Started | Heard::Resumed | Heard::NoSpeech) {
            // The user is saying more: the early answer is to words they went on from.
            self.drop_early();
        }
        match heard {
            // New speech: the question's start may be read ahead again.
            Heard::Started | Heard::Resumed => {
                self.stop_reading_ahead();
                self.reading_ahead = None;
            }
            // The recogniser decodes what was said now (or the utterance is over): the
            // cores are its until the user speaks again.
            Heard::Paused | Heard::Utterance { .. } | Heard::NoSpeech | Heard::Lost(_) => {
                self.stop_reading_ahead();
            }
            _ => {}
        }
        match heard {
            Heard::Started
                if self.settings.mode.is_hands_free()
                    && self.held.is_none()
                    && self.state == AssistantState::AnalyzingSpeech
                    && self.utterance_audio.is_some() =>
            {
                // Speech again before the transcript of the last utterance is even in:
                // the user had not finished. One turn, decoded together.
                self.stale_finals += 1;
                self.held = Some(Held {
                    audio: self.utterance_audio.take().unwrap_or_default(),
                    text: String::new(),
                    until: tokio::time::Instant::now(),
                    resumed: true,
                    give_up: false,
                });
                self.set_state(AssistantState::Listening, self.state_turn);
            }
            Heard::Started if self.held.is_some() => {
                // The rest of a broken-off sentence: the same turn goes on.
                if let Some(held) = self.held.as_mut() {
                    held.resumed = true;
                }
                self.stages.stt.send(SttJob::Reset);
            }
            Heard::Utterance { audio, ended_at } if self.held.is_some() => {
                let (Some(held), Some(id)) = (self.held.take(), self.turn.as_ref().map(|t| t.id))
                else {
                    return;
                };
                let mut all = held.audio;
                all.extend_from_slice(&audio);
                let speech_end = self.ms(ended_at);
                if let Some(turn) = self.turn.as_mut() {
                    turn.timings.speech_end_ms = Some(speech_end);
                    if let Some(input) = turn.audio.input.as_mut() {
                        input.samples.clone_from(&all);
                    }
                }
                self.utterance_audio = Some(all.clone());
                self.set_state(AssistantState::AnalyzingSpeech, id);
                self.stages.stt.send(SttJob::Final(id, all));
            }
            Heard::NoSpeech if self.held.as_ref().is_some_and(|h| h.resumed) => {
                // What started again was too short to be speech: the sentence ends here.
                self.stages.stt.send(SttJob::Reset);
                self.release_held();
            }
            Heard::NoSpeech if self.held.is_some() => {
                // A click or a breath while waiting for the rest: go on waiting.
                self.stages.stt.send(SttJob::Reset);
            }
            Heard::Started => {
                if self.answering() {
                    let echo_possible = self.player.queued_samples() > 0
                        || self.last_sound.is_some_and(|t| t.elapsed() < ECHO_TAIL);
                    if echo_possible && !self.voice_barge_in() {
                        // Probably our own voice: not a new turn.
                        let _ = self.stages.ears.send(EarsControl::Cancel);
                        return;
                    }
                    self.interrupt();
                }
                self.stages.stt.send(SttJob::Reset);
                self.listen();
            }
            Heard::Audio(samples) => self.stages.stt.send(SttJob::Audio(samples)),
            Heard::Paused => self.stages.stt.send(SttJob::Paused),
            Heard::Resumed => self.stages.stt.send(SttJob::Resumed),
            Heard::Utterance { audio, ended_at } => {
                if self.answering() {
                    // Push-to-talk during an answer already interrupted it; a leftover.
                    self.interrupt();
                }
                let id = self.new_turn();
                let mut turn = self.fresh_turn(id, String::new());
                turn.timings.speech_end_ms = Some(self.ms(ended_at));
                if self.memory.as_ref().is_some_and(Memory::wants_audio) {
                    turn.audio.input = Some(AudioBuffer {
                        samples: audio.clone(),
                        channels: 1,
                        sample_rate: 16_000,
                    });
                }
                self.turn = Some(turn);
                self.set_state(AssistantState::AnalyzingSpeech, id);
                if self.settings.mode.is_hands_free() {
                    self.utterance_audio = Some(audio.clone());
                }
                self.stages.stt.send(SttJob::Final(id, audio));
            }
            Heard::NoSpeech if self.answering() => {
                // A click, an "mm-hm", or a syllable of the assistant's own voice,
                // during the answer: it goes on (listening is not opened over it). No
                // audio of it reached the recogniser, and the turn's own final may
                // still be decoding: the recogniser is left alone.
                self.play_on();
            }
            Heard::Onset => {
                if self.answering()
                    && self.voice_barge_in()
                    && self.state == AssistantState::Speaking
                    && self.resume_at.is_none()
                {
                    // Someone may be taking the turn: the voice holds (the queue is kept)
                    // until the speech lasts and interrupts, or proves short.
                    self.player.pause();
                    self.resume_at = Some(tokio::time::Instant::now() + HOLD_FOR_SPEECH);
                    self.emit_voice_paused(true);
                }
            }
            Heard::NoSpeech => {
                self.stages.stt.send(SttJob::Reset);
                let id = self.new_turn();
                self.emit(Event::TurnFinished {
                    turn_id: id,
                    outcome: TurnOutcome::NoSpeech,
                    user_text: String::new(),
                    heard_text: String::new(),
                    provider: None,
                    timings: Timings::default(),
                });
                self.rest(id);
            }
            Heard::Lost(message) => {
                // Listening waits for the microphone; the assistant goes on (typed
                // questions, the answer under way).
                self.mic_lost = Some(message.clone());
                // The rest of a held sentence cannot come now.
                self.release_held();
                let turn_id = self.turn.as_ref().map(|t| t.id);
                self.error(turn_id, ErrorKind::Microphone, message);
                if !self.answering() {
                    self.set_state(AssistantState::Idle, self.state_turn);
                }
            }
            Heard::LimitReached(limit_ms) => {
                let secs = limit_ms / 1000;
                let turn_id = self.turn.as_ref().map_or(self.upcoming, |t| t.id);
                self.error(
                    Some(turn_id),
                    ErrorKind::Limit,
                    format!(
                        "Listening stops after {secs} s: what you said until then is answered."
                    ),
                );
            }
            Heard::Restored(device) => {
                let was_lost = self.mic_lost.take().is_some();
                tracing::info!("the microphone \"{device}\" works again");
                self.emit(Event::Recovered {
                    kind: ErrorKind::Microphone,
                    message: format!("The microphone \"{device}\" works again."),
                });
                if was_lost && !self.answering() && self.state == AssistantState::Idle {
                    self.rest(self.state_turn);
                }
            }
            Heard::EchoReady => {
                tracing::info!("the echo canceller has learned the room: voice barge-in is on");
                self.echo_ready = true;
            }
            Heard::EchoStopped(reason) => {
                // The assistant hears its own voice again: speech over it must not
                // interrupt it any more (the echo guard is back).
                self.settings.barge_in_while_speaking = false;
                self.play_on();
                let turn_id = self.turn.as_ref().map(|t| t.id);
                self.error(
                    turn_id,
                    ErrorKind::Microphone,
                    format!(
                        "Echo cancellation stopped ({reason}): until Sotto restarts, talking over an answer does not interrupt it. Use the hotkey or the Interrupt button."
                    ),
                );
            }
            Heard::Ended => {
                self.source_ended = true;
                self.release_held();
                if !self.answering() {
                    self.set_state(AssistantState::Idle, self.state_turn);
                }
            }
        }
    }

    fn fresh_turn(&self, id: u64, user_text: String) -> Turn {
        Turn {
            id,
            user_text,
            answer: String::new(),
            splitter: SentenceSplitter::new(self.settings.split),
            guard: AnswerGuard::new(self.settings.answer_words),
            llm_cancel: CancellationToken::new(),
            cancel: CancellationToken::new(),
            timings: Timings::default(),
            provider: None,
            pieces: Vec::new(),
            pieces_sent: 0,
            llm_done: false,
            playback_end: None,
            failed: false,
            audio: TurnAudio::default(),
        }
    }

    fn current(&mut self, id: u64) -> Option<&mut Turn> {
        self.turn.as_mut().filter(|t| t.id == id)
    }

    fn on_stt(&mut self, reply: SttReply) {
        self.progress();
        match reply {
            SttReply::Partial { text, repeated, .. } if self.held.is_some() => {
                // The rest of a held sentence: shown after its first part, in its turn
                // (once: a decode at a pause may repeat the partial before it).
                let (Some(held), Some(turn)) = (self.held.as_ref(), self.turn.as_ref()) else {
                    return;
                };
                if repeated {
                    return;
                }
                let first = held.text.trim().trim_end_matches(['.', '?', '!', ',']);
                let text = format!("{first} {text}").trim().to_string();
                self.emit(Event::TranscriptPartial {
                    turn_id: turn.id,
                    text,
                });
            }
            SttReply::Partial {
                text,
                at_pause,
                repeated,
            } => {
                // A partial made just before the user stopped may arrive just after; it
                // never comes after the final (the recogniser answers in order).
                if matches!(
                    self.state,
                    AssistantState::Listening | AssistantState::AnalyzingSpeech
                ) {
                    let turn_id = match (&self.turn, self.state) {
                        (Some(turn), AssistantState::AnalyzingSpeech) => turn.id,
                        _ => self.upcoming,
                    };
                    if at_pause {
                        self.start_early(turn_id, &text);
                    } else {
                        self.read_ahead(&text);
                    }
                    if !repeated {
                        self.emit(Event::TranscriptPartial { turn_id, text });
                    }
                }
            }
            SttReply::Final(id, result) => {
                if self.current(id).is_none() {
                    return;
                }
                if self.stale_finals > 0 {
                    // The first part of a turn the user went on with: the whole is being
                    // decoded; this part is kept in case the rest turns out to be nothing.
                    self.stale_finals -= 1;
                    if let (Some(held), Ok(t)) = (self.held.as_mut(), &result) {
                        held.text.clone_from(&t.text);
                    }
                    if self.stale_finals == 0 && self.held.as_ref().is_some_and(|h| h.give_up) {
                        self.release_held();
                    }
                    return;
                }
                let at = self.now_ms();
                match result {
                    Ok(Transcript { text, .. }) if !text.trim().is_empty() => {
                        if let Some(turn) = self.current(id) {
                            turn.timings.stt_final_ms = Some(at);
                        }
                        let audio = self.utterance_audio.take();
                        if let Some(audio) = audio.filter(|_| {
                            self.settings.mode.is_hands_free()
                                && !self.source_ended
                                && crate::unfinished::sounds_unfinished(&text)
                        }) {
                            // "Can you tell me ...": wait for the rest before answering.
                            tracing::debug!("{text:?} sounds unfinished: waiting for more");
                            self.drop_early();
                            self.held = Some(Held {
                                audio,
                                text: text.clone(),
                                until: tokio::time::Instant::now() + UNFINISHED_WAIT,
                                resumed: false,
                                give_up: false,
                            });
                            self.emit(Event::TranscriptPartial { turn_id: id, text });
                            self.set_state(AssistantState::Listening, id);
                            return;
                        }
                        self.emit(Event::TranscriptFinal {
                            turn_id: id,
                            text: text.clone(),
                        });
                        self.answer(id, text);
                    }
                    Ok(_) => {
                        self.finish(TurnOutcome::NoSpeech);
                    }
                    Err(e) => {
                        self.error(Some(id), ErrorKind::SpeechToText, e.to_string());
                        self.finish(TurnOutcome::Failed);
                    }
                }
            }
        }
    }

    /// Answers the held broken-off sentence as it is: no more came. While its first part
    /// is still being decoded, waits for that.
    fn release_held(&mut self) {
        let Some(mut held) = self.held.take() else {
            return;
        };
        if held.text.trim().is_empty() && self.stale_finals > 0 {
            held.resumed = true;
            held.give_up = true;
            self.held = Some(held);
            return;
        }
        let Some(id) = self.turn.as_ref().map(|t| t.id) else {
            return;
        };
        if held.text.trim().is_empty() {
            self.finish(TurnOutcome::NoSpeech);
            return;
        }
        self.emit(Event::TranscriptFinal {
            turn_id: id,
            text: held.text.clone(),
        });
        self.answer(id, held.text);
    }

    /// What the language model is sent for `text`: the persona, the latest turns, `text`.
    fn messages_for(&self, text: &str) -> Vec<Message> {
        let mut messages = vec![self.persona()];
        let keep = self.settings.history_turns * 2;
        let skip = self.context.len().saturating_sub(keep);
        messages.extend(self.context[skip..].iter().cloned());
        messages.push(Message {
            role: Role::User,
            content: text.to_string(),
        });
        let room = self.settings.sampling.max_tokens as usize;
        let budget = self.settings.context_tokens.saturating_sub(room);
        sotto_llm::context::fit(&messages, budget)
    }

    /// Asks the language model for `messages`; its chunks come back tagged `tag`.
    fn ask_llm(&self, tag: u64, messages: Vec<Message>, cancel: CancellationToken) {
        // The answer needs the model now; a read-ahead would only hold it up.
        self.stop_reading_ahead();
        let request = ChatRequest {
            messages,
            sampling: self.settings.sampling.clone(),
        };
        let mut answer = self.llm.chat(request, cancel);
        let tx = self.stages.llm_tx.clone();
        tokio::spawn(async move {
            while let Some(chunk) = answer.next().await {
                if tx.send((tag, Some(chunk))).is_err() {
                    return;
                }
            }
            let _ = tx.send((tag, None));
        });
    }

    /// The user went quiet and said `text`: starts its answer now, kept back until the
    /// final transcript (see [`early`]). Not while an answer is under way, nor for words
    /// that sound broken off in hands-free (the turn will wait for more).
    fn start_early(&mut self, id: u64, text: &str) {
        if self.state != AssistantState::Listening
            || self.answering()
            || self.held.is_some()
            || text.trim().is_empty()
            || (self.settings.mode.is_hands_free() && crate::unfinished::sounds_unfinished(text))
        {
            return;
        }
        if self
            .early
            .as_ref()
            .is_some_and(|e| e.id == id && early::same_words(&e.text, text))
        {
            return;
        }
        self.drop_early();
        let cancel = CancellationToken::new();
        self.ask_llm(id | EARLY_BIT, self.messages_for(text), cancel.clone());
        tracing::debug!("turn {id}: answering {text:?} early");
        self.early = Some(Early {
            id,
            text: text.to_string(),
            cancel,
            buffered: Vec::new(),
            adopted: false,
            started_ms: self.now_ms(),
        });
    }

    /// The user is still speaking and has said `text` so far: the language model reads
    /// the question's start now, so that when it is asked only the rest is left to read.
    /// Only while nothing else wants the model (no answer, early or not, under way) and
    /// not once stopped in this stretch of speech ([`Orchestrator::stop_reading_ahead`]:
    /// a partial that comes back just after the user paused must not start it again).
    fn read_ahead(&mut self, text: &str) {
        if self.state != AssistantState::Listening
            || self.answering()
            || self.early.is_some()
            || self.held.is_some()
            || text.trim().is_empty()
            || self
                .reading_ahead
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
        {
            return;
        }
        let cancel = self
            .reading_ahead
            .get_or_insert_with(CancellationToken::new)
            .clone();
        self.llm.read_ahead(self.messages_for(text), cancel);
    }

    /// Stops reading ahead until the user speaks again (what was read stays in the
    /// model's cache): they paused or stopped, and the recogniser's decode of what they
    /// said wants the cores, or the model is asked for an answer.
    fn stop_reading_ahead(&self) {
        if let Some(cancel) = &self.reading_ahead {
            cancel.cancel();
        }
    }

    /// Forgets the early answer; stops it unless it became the turn's (the turn stops it).
    fn drop_early(&mut self) -> bool {
        match self.early.take() {
            Some(early) if !early.adopted => {
                early.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Answers `text` in turn `id`: instant-answer check, then the language model.
    fn answer(&mut self, id: u64, text: String) {
        if self.current(id).is_none() {
            self.turn = Some(self.fresh_turn(id, text.clone()));
        }
        self.set_state(AssistantState::CheckingCache, id);
        let messages = self.messages_for(&text);
        // Instant answers: a question that means one of the intents is answered from
        // audio made ahead of time, without the language model.
        let instant = self.instant.as_mut().and_then(|i| i.answer(&text));
        // Hit or miss, the decision is made now: a miss's check is not the LLM's time.
        let at = self.now_ms();
        let answer_words = self.settings.answer_words;
        let Some(turn) = self.current(id) else { return };
        turn.guard = AnswerGuard::for_question(&text, answer_words);
        turn.user_text.clone_from(&text);
        turn.timings.cache_decision_ms = Some(at);
        if let Some((answer, audio)) = instant {
            self.drop_early();
            let Some(turn) = self.current(id) else { return };
            turn.provider = Some("instant".into());
            turn.llm_done = true;
            turn.pieces_sent = 1;
            let cancel = turn.cancel.clone();
            let _ = self.stages.mouth.send(Say::Audio {
                turn: id,
                text: answer.clone(),
                samples: audio.samples,
                sample_rate: audio.sample_rate,
                cancel,
            });
            let _ = self.stages.mouth.send(Say::End { turn: id });
            self.emit(Event::LlmTextChunk {
                turn_id: id,
                text: answer,
            });
            return;
        }
        // The answer started early on these very words is this turn's: what it streamed
        // so far is let through now.
        if let Some(mut early) = self.early.take_if(|e| e.answers(id, &text)) {
            let buffered = std::mem::take(&mut early.buffered);
            let Some(turn) = self.current(id) else { return };
            turn.llm_cancel = early.cancel.clone();
            turn.timings.llm_start_ms = Some(early.started_ms);
            turn.timings.early_start = Some(true);
            early.adopted = true;
            self.early = Some(early);
            self.set_state(AssistantState::RoutingToLlm, id);
            for item in buffered {
                self.on_llm(id, item);
            }
            return;
        }
        let restarted = self.drop_early();
        let now = self.now_ms();
        let Some(turn) = self.current(id) else { return };
        if restarted {
            tracing::debug!("turn {id}: the final transcript differs; answering it instead");
            turn.timings.early_start = Some(false);
        }
        turn.timings.llm_start_ms = Some(now);
        turn.llm_cancel = turn.cancel.child_token();
        let cancel = turn.llm_cancel.clone();
        self.set_state(AssistantState::RoutingToLlm, id);
        self.ask_llm(id, messages, cancel);
    }

    /// A chunk of an early answer: kept back until the final transcript decides, the
    /// turn's own once it did, dropped when it was cancelled.
    fn on_early_llm(&mut self, id: u64, chunk: LlmItem) {
        match self.early.as_mut() {
            Some(early) if early.id == id && !early.adopted => early.buffered.push(chunk),
            Some(early) if early.id == id => self.on_llm(id, chunk),
            _ => {}
        }
    }

    fn on_llm(&mut self, id: u64, chunk: Option<Result<Chunk, LlmError>>) {
        if id & EARLY_BIT != 0 {
            self.on_early_llm(id & !EARLY_BIT, chunk);
            return;
        }
        self.progress();
        let now = self.now_ms();
        let Some(turn) = self.current(id) else { return };
        let mut pieces = Vec::new();
        let mut finished = false;
        let mut failure = None;
        let mut streamed = None;
        match chunk {
            Some(Ok(Chunk::Text(text))) => {
                turn.timings.first_token_ms.get_or_insert(now);
                turn.answer.push_str(&text);
                pieces = turn.guard.admit(turn.splitter.push(&text));
                streamed = Some(text);
            }
            Some(Ok(Chunk::FellBack { to, reason, .. })) => {
                tracing::info!("answering with {to}: {reason}");
                turn.provider = Some(to);
            }
            Some(Ok(Chunk::Done(finish))) => {
                turn.provider = Some(finish.provider);
                let at_limit = finish.reason == FinishReason::Length;
                pieces = turn.guard.finish(turn.splitter.finish(), at_limit);
                finished = true;
            }
            Some(Err(e)) => {
                failure = Some(e);
                pieces = turn.guard.admit(turn.splitter.finish());
                finished = true;
            }
            None => finished = !turn.llm_done,
        }
        if let (Some(cut), false) = (turn.guard.cut(), finished || turn.llm_done) {
            // The rest is not said: the model stops now, and the voice gets no more.
            tracing::info!("turn {id}: {}; the rest is not said", cut.describe());
            turn.llm_cancel.cancel();
            finished = true;
        }
        if let Some(text) = streamed {
            self.emit(Event::LlmTextChunk { turn_id: id, text });
        }
        let Some(turn) = self.turn.as_mut().filter(|t| t.id == id) else {
            return;
        };
        let cancel = turn.cancel.clone();
        let mut first_piece = false;
        for text in pieces {
            if turn.pieces_sent == 0 {
                turn.timings.first_sentence_ms = Some(now);
                first_piece = true;
            }
            turn.pieces_sent += 1;
            let _ = self.stages.mouth.send(Say::Piece {
                turn: id,
                text,
                cancel: cancel.clone(),
            });
        }
        if finished && !turn.llm_done {
            turn.llm_done = true;
            let _ = self.stages.mouth.send(Say::End { turn: id });
        }
        let nothing_to_say = finished && turn.pieces_sent == 0;
        if failure.is_some() {
            turn.failed = true;
        }
        if let Some(e) = &failure {
            self.error(Some(id), ErrorKind::Llm, e.to_string());
        }
        if first_piece && self.state == AssistantState::RoutingToLlm {
            self.set_state(AssistantState::GeneratingSpeech, id);
        }
        if nothing_to_say {
            let outcome = if failure.is_some() {
                TurnOutcome::Failed
            } else {
                TurnOutcome::Answered
            };
            self.finish(outcome);
        }
    }

    fn on_spoken(&mut self, spoken: Spoken) {
        self.progress();
        match spoken {
            Spoken::FirstAudio { turn, at } => {
                let at = self.ms(at);
                if let Some(t) = self.current(turn) {
                    t.timings.first_audio_ms = Some(at);
                    self.set_state(AssistantState::Speaking, turn);
                }
            }
            Spoken::Queued {
                turn,
                text,
                start,
                end,
                audio,
            } => {
                self.last_sound = Some(tokio::time::Instant::now());
                if let Some(t) = self.current(turn) {
                    t.pieces.push((text, start, end));
                    if let Some(piece) = audio {
                        append_audio(&mut t.audio.output, piece);
                    }
                }
            }
            Spoken::Done { turn, end } => {
                if let Some(t) = self.current(turn) {
                    t.playback_end = Some(end);
                    // A short answer may have played out before this report came.
                    self.end_if_played();
                }
            }
            Spoken::Failed { turn, error } => {
                if self.current(turn).is_some() {
                    self.error(Some(turn), ErrorKind::Voice, error.to_string());
                    self.interrupt_as(TurnOutcome::Failed, true);
                }
            }
        }
    }

    /// The player ran out of audio: the sound stopped now (for the echo guard), and the
    /// answer may be over.
    fn on_drained(&mut self) {
        self.progress();
        self.last_sound = Some(tokio::time::Instant::now());
        self.end_if_played();
    }

    /// Ends the turn once everything of its answer has been played.
    fn end_if_played(&mut self) {
        let played = self.player.played_samples();
        let done = self
            .turn
            .as_ref()
            .and_then(|t| t.playback_end)
            .is_some_and(|end| played >= end);
        if done {
            let now = self.now_ms();
            let outcome = match self.turn.as_ref() {
                Some(t) if t.failed => TurnOutcome::Failed,
                _ => TurnOutcome::Answered,
            };
            if let Some(t) = self.turn.as_mut() {
                t.timings.playback_end_ms = Some(now);
            }
            self.finish(outcome);
        }
    }

    /// Barge-in: silence now, drop what is queued, keep what was heard. The caller sets
    /// the next state (listening).
    fn interrupt(&mut self) {
        self.interrupt_as(TurnOutcome::Interrupted, false);
    }

    fn interrupt_as(&mut self, outcome: TurnOutcome, rest: bool) {
        let Some(turn) = self.turn.as_mut() else {
            return;
        };
        turn.cancel.cancel();
        if self.state == AssistantState::AnalyzingSpeech {
            // The final being decoded is for a question no longer asked.
            self.stages.stt.send(SttJob::Reset);
        }
        self.player.stop();
        self.last_sound = Some(tokio::time::Instant::now());
        let now = self.now_ms();
        if let Some(t) = self.turn.as_mut() {
            if t.timings.first_audio_ms.is_some() {
                t.timings.playback_end_ms = Some(now);
            }
        }
        self.end_turn(outcome, rest);
    }

    /// Ends the current turn and goes to the resting state.
    fn finish(&mut self, outcome: TurnOutcome) {
        self.end_turn(outcome, true);
    }

    /// Whether speech over the voice may pause and interrupt it now.
    fn voice_barge_in(&self) -> bool {
        self.settings.barge_in_while_speaking && self.echo_ready
    }

    /// Plays on after a pause for speech that did not last (nothing when not paused).
    fn play_on(&mut self) {
        if self.resume_at.take().is_some() {
            self.player.resume();
            self.emit_voice_paused(false);
        }
    }

    fn emit_voice_paused(&self, paused: bool) {
        let turn_id = self.turn.as_ref().map_or(0, |t| t.id);
        self.emit(Event::VoicePaused { turn_id, paused });
    }

    /// Ends the current turn: history, `turn_finished`, and (if `rest`) the resting state.
    fn end_turn(&mut self, outcome: TurnOutcome, rest: bool) {
        self.held = None;
        // A turn never ends with the voice held: the next answer must be heard.
        if self.resume_at.take().is_some() {
            self.player.resume();
        }
        self.utterance_audio = None;
        self.stale_finals = 0;
        let Some(turn) = self.turn.take() else { return };
        turn.cancel.cancel();
        // An answer that started early is not a child of the turn's token.
        turn.llm_cancel.cancel();
        self.drop_early();
        let heard = match outcome {
            TurnOutcome::Answered => turn
                .pieces
                .iter()
                .map(|(text, _, _)| text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => played_text(&turn.pieces, self.player.played_samples()),
        };
        if !turn.user_text.is_empty() && !heard.is_empty() {
            self.context.push(Message {
                role: Role::User,
                content: turn.user_text.clone(),
            });
            self.context.push(Message {
                role: Role::Assistant,
                content: heard.clone(),
            });
            // Only the latest turns are ever sent.
            let keep = self.settings.history_turns * 2;
            let older = self.context.len().saturating_sub(keep);
            self.context.drain(..older);
        }
        let timings = turn.timings.with_v2v();
        if let (Some(memory), false) = (self.memory.as_mut(), turn.user_text.is_empty()) {
            let record = TurnRecord {
                at_unix_ms: sotto_store::unix_ms(),
                outcome,
                user_text: turn.user_text.clone(),
                heard_text: heard.clone(),
                answer_text: turn.answer.clone(),
                provider: turn.provider.clone(),
                timings,
            };
            if let Err(e) = memory.remember(&record, turn.audio) {
                self.error(Some(turn.id), ErrorKind::Storage, e.to_string());
            }
        }
        self.emit(Event::TurnFinished {
            turn_id: turn.id,
            outcome,
            user_text: turn.user_text,
            heard_text: heard,
            provider: turn.provider,
            timings,
        });
        // What the turn freed goes back to the system while the assistant waits.
        crate::heap::release_free_memory();
        if rest {
            self.rest(turn.id);
        }
    }
}

/// Adds a spoken piece to the turn's recorded answer (pieces come from one voice, so one
/// rate; a piece at another rate is left out rather than played back at the wrong speed).
fn append_audio(output: &mut Option<AudioBuffer>, piece: AudioBuffer) {
    match output {
        Some(all) if all.sample_rate == piece.sample_rate => {
            all.samples.extend_from_slice(&piece.samples)
        }
        Some(_) => {}
        None => *output = Some(piece),
    }
}

#[cfg(test)]
mod tests;
