//! The orchestrator: one task that owns the turn state machine. Everything else (the ears,
//! the recogniser, the language model, the mouth, the player) runs on its own thread or
//! task and reports here; only this task changes state and emits [`Event`]s.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_audio::{AudioBuffer, ListenMode, Player};
use sotto_llm::{ChatRequest, Chunk, Llm, LlmError, Message, Role, Sampling};
use sotto_stt::Transcript;
use sotto_tts::split::{SentenceSplitter, SplitConfig};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::ears::{EarsControl, Heard};
use crate::event::{AssistantState, ErrorKind, Event, Timings, TurnOutcome};
use crate::heard::heard_text;
use crate::memory::{Memory, TurnAudio, TurnRecord};
use crate::mouth::{Say, Spoken};
use crate::stt_worker::{SttJob, SttReply, SttWorker};

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
    /// Hands-free: let speech heard while the assistant speaks interrupt it. Off unless
    /// the user wears headphones: with no echo canceller, the assistant would hear its
    /// own voice and interrupt itself.
    pub barge_in_while_speaking: bool,
    /// Earlier turns sent with each question.
    pub history_turns: usize,
}

impl Default for TurnSettings {
    fn default() -> Self {
        TurnSettings {
            mode: ListenMode::PushToTalk,
            system_prompt: "You are a helpful assistant.".into(),
            sampling: Sampling {
                temperature: 0.2,
                max_tokens: 160,
                ..Sampling::default()
            },
            speed: 1.0,
            split: SplitConfig::default(),
            partial_interval_ms: 600,
            barge_in_while_speaking: false,
            history_turns: 6,
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
    /// Stop everything.
    Shutdown,
}

/// How long after the last sound the speaker may still be heard by the microphone.
const ECHO_TAIL: Duration = Duration::from_millis(300);

/// The answer side of a turn.
pub(crate) struct Turn {
    id: u64,
    user_text: String,
    answer: String,
    splitter: SentenceSplitter,
    cancel: CancellationToken,
    timings: Timings,
    provider: Option<String>,
    pieces: Vec<(String, u64, u64)>,
    pieces_sent: usize,
    llm_done: bool,
    playback_end: Option<u64>,
    failed: bool,
    /// Audio for the turn log (only while turn logs are on).
    audio: TurnAudio,
}

pub(crate) struct Orchestrator {
    pub(crate) settings: TurnSettings,
    pub(crate) origin: Instant,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) ears: std_mpsc::Sender<EarsControl>,
    pub(crate) stt: SttWorker,
    pub(crate) mouth: std_mpsc::Sender<Say>,
    pub(crate) player: Arc<Player>,
    pub(crate) llm: Arc<dyn Llm>,
    pub(crate) instant: Option<crate::intents::InstantAnswers>,
    pub(crate) memory: Option<Memory>,
    pub(crate) llm_tx: mpsc::UnboundedSender<(u64, Option<Result<Chunk, LlmError>>)>,
    pub(crate) state: AssistantState,
    pub(crate) state_turn: u64,
    pub(crate) next_turn: u64,
    pub(crate) turn: Option<Turn>,
    pub(crate) history: Vec<Message>,
    pub(crate) source_ended: bool,
    pub(crate) last_sound: Option<Instant>,
}

/// The channels the orchestrator listens on.
pub(crate) struct Inputs {
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) heard: mpsc::UnboundedReceiver<Heard>,
    pub(crate) stt: mpsc::UnboundedReceiver<SttReply>,
    pub(crate) llm: mpsc::UnboundedReceiver<(u64, Option<Result<Chunk, LlmError>>)>,
    pub(crate) spoken: mpsc::UnboundedReceiver<Spoken>,
}

impl Orchestrator {
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
        self.emit(Event::StateChanged {
            state,
            turn_id,
            at_ms: self.now_ms(),
        });
    }

    fn error(&self, turn_id: Option<u64>, kind: ErrorKind, message: String) {
        tracing::warn!("{message}");
        self.emit(Event::ErrorOccurred {
            turn_id,
            kind,
            message,
        });
    }

    /// The state between turns.
    fn resting_state(&self) -> AssistantState {
        match self.settings.mode {
            ListenMode::HandsFree if !self.source_ended => AssistantState::Listening,
            _ => AssistantState::Idle,
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

    /// Runs until shut down, or until the audio source has ended and the last turn is over.
    pub(crate) async fn run(mut self, mut inputs: Inputs) {
        // The local model reads the persona now, so the first question reuses it from the
        // KV cache as every later one does.
        self.llm.warm_up(vec![self.persona()]);
        let state = self.resting_state();
        self.set_state(state, 0);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.source_ended && !self.answering() {
                break;
            }
            tokio::select! {
                command = inputs.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                Some(heard) = inputs.heard.recv() => self.on_heard(heard),
                Some(reply) = inputs.stt.recv() => self.on_stt(reply),
                Some((turn, chunk)) = inputs.llm.recv() => self.on_llm(turn, chunk),
                Some(spoken) = inputs.spoken.recv() => self.on_spoken(spoken),
                _ = tick.tick() => self.on_tick(),
            }
        }
        if self.answering() {
            self.interrupt_as(TurnOutcome::Interrupted, true);
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::StartListening => {
                if self.answering() {
                    self.interrupt();
                }
                let _ = self.ears.send(EarsControl::Press);
                self.set_state(AssistantState::Listening, self.next_turn + 1);
            }
            Command::StopListening => {
                let _ = self.ears.send(EarsControl::Release);
            }
            Command::Interrupt => {
                if self.answering() {
                    self.interrupt();
                    if self.settings.mode == ListenMode::PushToTalk {
                        // Interrupting is asking to speak: listen until the key (or the
                        // button) says stop.
                        let _ = self.ears.send(EarsControl::Press);
                    }
                    self.set_state(AssistantState::Listening, self.next_turn + 1);
                }
            }
            Command::SendText(text) => {
                if self.answering() {
                    self.interrupt();
                }
                let id = self.new_turn();
                self.emit(Event::TranscriptFinal {
                    turn_id: id,
                    text: text.clone(),
                });
                self.answer(id, text);
            }
            Command::Shutdown => {}
        }
    }

    fn new_turn(&mut self) -> u64 {
        self.next_turn += 1;
        self.next_turn
    }

    fn on_heard(&mut self, heard: Heard) {
        match heard {
            Heard::Started => {
                if self.answering() {
                    let echo_possible = self.player.queued_samples() > 0
                        || self.last_sound.is_some_and(|t| t.elapsed() < ECHO_TAIL);
                    if echo_possible && !self.settings.barge_in_while_speaking {
                        // Probably our own voice: not a new turn.
                        let _ = self.ears.send(EarsControl::Cancel);
                        return;
                    }
                    self.interrupt();
                }
                self.stt.send(SttJob::Reset);
                self.set_state(AssistantState::Listening, self.next_turn + 1);
            }
            Heard::Audio(samples) => self.stt.send(SttJob::Audio(samples)),
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
                self.stt.send(SttJob::Final(id, audio));
            }
            Heard::NoSpeech => {
                self.stt.send(SttJob::Reset);
                let id = self.new_turn();
                self.emit(Event::TurnFinished {
                    turn_id: id,
                    outcome: TurnOutcome::NoSpeech,
                    user_text: String::new(),
                    heard_text: String::new(),
                    provider: None,
                    timings: Timings::default(),
                });
                let state = self.resting_state();
                self.set_state(state, id);
            }
            Heard::Lost(message) => {
                self.source_ended = true;
                let turn_id = self.turn.as_ref().map(|t| t.id);
                self.error(turn_id, ErrorKind::Microphone, message);
                if !self.answering() {
                    self.set_state(AssistantState::Idle, self.state_turn);
                }
            }
            Heard::Ended => {
                self.source_ended = true;
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
        match reply {
            SttReply::Partial(text) => {
                // A partial made just before the user stopped may arrive just after; it
                // never comes after the final (the recogniser answers in order).
                if matches!(
                    self.state,
                    AssistantState::Listening | AssistantState::AnalyzingSpeech
                ) {
                    let turn_id = match self.state {
                        AssistantState::AnalyzingSpeech => self.next_turn,
                        _ => self.next_turn + 1,
                    };
                    self.emit(Event::TranscriptPartial { turn_id, text });
                }
            }
            SttReply::Final(id, result) => {
                if self.current(id).is_none() {
                    return;
                }
                let at = self.now_ms();
                match result {
                    Ok(Transcript { text, .. }) if !text.trim().is_empty() => {
                        if let Some(turn) = self.current(id) {
                            turn.timings.stt_final_ms = Some(at);
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

    /// Answers `text` in turn `id`: instant-answer check, then the language model.
    fn answer(&mut self, id: u64, text: String) {
        if self.current(id).is_none() {
            self.turn = Some(self.fresh_turn(id, text.clone()));
        }
        self.set_state(AssistantState::CheckingCache, id);
        let mut messages = vec![self.persona()];
        let keep = self.settings.history_turns * 2;
        let skip = self.history.len().saturating_sub(keep);
        messages.extend(self.history[skip..].iter().cloned());
        messages.push(Message {
            role: Role::User,
            content: text.clone(),
        });
        // Instant answers: a question that means one of the intents is answered from
        // audio made ahead of time, without the language model.
        let instant = self.instant.as_mut().and_then(|i| i.answer(&text));
        // Hit or miss, the decision is made now: a miss's check is not the LLM's time.
        let at = self.now_ms();
        let Some(turn) = self.current(id) else { return };
        turn.user_text = text;
        turn.timings.cache_decision_ms = Some(at);
        if let Some((answer, audio)) = instant {
            turn.provider = Some("instant".into());
            turn.llm_done = true;
            turn.pieces_sent = 1;
            let cancel = turn.cancel.clone();
            let _ = self.mouth.send(Say::Audio {
                turn: id,
                text: answer.clone(),
                samples: audio.samples,
                sample_rate: audio.sample_rate,
                cancel,
            });
            let _ = self.mouth.send(Say::End { turn: id });
            self.emit(Event::LlmTextChunk {
                turn_id: id,
                text: answer,
            });
            return;
        }
        let Some(turn) = self.current(id) else { return };
        let cancel = turn.cancel.child_token();
        self.set_state(AssistantState::RoutingToLlm, id);
        let request = ChatRequest {
            messages,
            sampling: self.settings.sampling.clone(),
        };
        let mut answer = self.llm.chat(request, cancel);
        let tx = self.llm_tx.clone();
        tokio::spawn(async move {
            while let Some(chunk) = answer.next().await {
                if tx.send((id, Some(chunk))).is_err() {
                    return;
                }
            }
            let _ = tx.send((id, None));
        });
    }

    fn on_llm(&mut self, id: u64, chunk: Option<Result<Chunk, LlmError>>) {
        let now = self.now_ms();
        let Some(turn) = self.current(id) else { return };
        let mut pieces = Vec::new();
        let mut finished = false;
        let mut failure = None;
        match chunk {
            Some(Ok(Chunk::Text(text))) => {
                turn.timings.first_token_ms.get_or_insert(now);
                turn.answer.push_str(&text);
                pieces = turn.splitter.push(&text);
                let _ = self.events.send(Event::LlmTextChunk { turn_id: id, text });
            }
            Some(Ok(Chunk::FellBack { to, reason, .. })) => {
                tracing::info!("answering with {to}: {reason}");
                turn.provider = Some(to);
            }
            Some(Ok(Chunk::Done(finish))) => {
                turn.provider = Some(finish.provider);
                pieces = turn.splitter.finish();
                finished = true;
            }
            Some(Err(e)) => {
                failure = Some(e);
                pieces = turn.splitter.finish();
                finished = true;
            }
            None => finished = !turn.llm_done,
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
            let _ = self.mouth.send(Say::Piece {
                turn: id,
                text,
                cancel: cancel.clone(),
            });
        }
        if finished && !turn.llm_done {
            turn.llm_done = true;
            let _ = self.mouth.send(Say::End { turn: id });
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
                self.last_sound = Some(Instant::now());
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

    fn on_tick(&mut self) {
        let played = self.player.played_samples();
        if self.player.queued_samples() > 0 {
            self.last_sound = Some(Instant::now());
        }
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
        self.player.stop();
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

    /// Ends the current turn: history, `turn_finished`, and (if `rest`) the resting state.
    fn end_turn(&mut self, outcome: TurnOutcome, rest: bool) {
        let Some(turn) = self.turn.take() else { return };
        turn.cancel.cancel();
        let heard = match outcome {
            TurnOutcome::Answered => turn
                .pieces
                .iter()
                .map(|(text, _, _)| text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => heard_text(&turn.pieces, self.player.played_samples()),
        };
        if !turn.user_text.is_empty() && !heard.is_empty() {
            self.history.push(Message {
                role: Role::User,
                content: turn.user_text.clone(),
            });
            self.history.push(Message {
                role: Role::Assistant,
                content: heard.clone(),
            });
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
        if rest {
            let state = self.resting_state();
            self.set_state(state, turn.id);
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
