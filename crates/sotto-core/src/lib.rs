//! Sotto's voice turn.
//!
//! [`Assistant::start`] wires the engines together and starts the orchestrator: one task
//! that owns the turn state machine (the seven states of [`AssistantState`]) and emits
//! every [`Event`]. Around it, each stage runs on its own thread or task:
//!
//! - the **ears** ([`ears`]): the listener over a microphone or a WAV file;
//! - the **recogniser** ([`stt_worker`]): partial and final transcripts;
//! - the **language model**: a streamed [`sotto_llm::Llm`] answer;
//! - the **mouth** ([`mouth`]): the sentence pieces spoken and queued on the player
//!   ([`AudioOut`]), which signals when it runs out of audio.
//!
//! Every engine is a trait object ([`Engines`]); the `fakes` module (feature `fakes`) has
//! scripted ones for tests.
//!
//! A turn's [`Timings`] are stamped on one monotonic clock, so the UI chart, the logs and
//! the benchmarks read the same numbers.

pub mod answer_guard;
pub mod assemble;
pub mod budget;
pub mod ears;
pub mod embed;
pub mod event;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod heap;
pub mod intents;
pub mod memory;
pub mod mouth;
mod orchestrator;
pub mod output;
pub mod played;
pub mod restarts;
pub mod settings;
pub mod stt_worker;
pub mod unfinished;

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;

use sotto_audio::{CaptureEvent, Listener};
use sotto_llm::Llm;
use sotto_stt::SpeechToText;
use sotto_tts::Tts;
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::task::JoinHandle;

pub use event::{AssistantState, ErrorKind, Event, Timings, TurnOutcome};
pub use memory::{Memory, TurnRecord};
pub use orchestrator::{Command, TurnSettings, SPEECH_PERSONA};
pub use output::AudioOut;

/// The engines a voice turn uses: trait objects, so tests can hand in fakes (the `fakes`
/// module, with the `fakes` feature).
pub struct Engines {
    /// Speech to text (whisper).
    pub stt: Arc<dyn SpeechToText>,
    /// The language model (local, cloud, or a fallback pair).
    pub llm: Arc<dyn Llm>,
    /// The voice.
    pub voice: Box<dyn Tts>,
    /// Where the answer is played, and its clock.
    pub player: Arc<dyn AudioOut>,
    /// Instant answers, if enabled.
    pub instant: Option<Box<dyn intents::InstantSource>>,
    /// Where turns are remembered (`None`: nothing is kept after the assistant stops).
    pub memory: Option<memory::Memory>,
}

/// Why the assistant could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A worker thread could not be started.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

/// A running assistant.
pub struct Assistant {
    commands: mpsc::UnboundedSender<Command>,
    /// Weak, so the event stream closes when the orchestrator stops.
    events: broadcast::WeakSender<Event>,
    origin: Instant,
    /// The orchestrator's task; `None` once [`Assistant::ended`] has seen it end.
    task: Option<JoinHandle<()>>,
    /// How it ended, once seen.
    ended: Option<Ended>,
}

/// Why an assistant's orchestrator is no longer running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It was told to shut down, or its audio source ended and the last turn was over.
    Stopped,
    /// It panicked: a bug. The text is the panic's message.
    Panicked(String),
}

impl Ended {
    fn from_join(result: Result<(), tokio::task::JoinError>) -> Ended {
        match result {
            Ok(()) => Ended::Stopped,
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                Ended::Panicked(message)
            }
            Err(_) => Ended::Stopped,
        }
    }
}

impl Assistant {
    /// Starts the assistant listening to `input` (microphone or WAV events) through
    /// `listener`. Returns it and a receiver that sees every event from the first.
    pub fn start(
        engines: Engines,
        settings: TurnSettings,
        input: std_mpsc::Receiver<CaptureEvent>,
        listener: Listener,
    ) -> Result<(Assistant, broadcast::Receiver<Event>), CoreError> {
        let (heard_tx, heard) = mpsc::unbounded_channel();
        let (ears_tx, ears_rx) = std_mpsc::channel();
        ears::spawn(input, listener, ears_rx, heard_tx)
            .map_err(|e| CoreError::Thread("ears", e))?;
        Assistant::with_ears(engines, settings, heard, ears_tx)
    }

    /// Starts the assistant on ears of the caller's: `heard` is what they hear, `ears`
    /// takes the key presses (tests play the ears themselves).
    pub(crate) fn with_ears(
        engines: Engines,
        settings: TurnSettings,
        heard: mpsc::UnboundedReceiver<ears::Heard>,
        ears: std_mpsc::Sender<ears::EarsControl>,
    ) -> Result<(Assistant, broadcast::Receiver<Event>), CoreError> {
        let (events, first_receiver) = broadcast::channel(4096);
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (stt_tx, stt) = mpsc::unbounded_channel();
        let (llm_tx, llm) = mpsc::unbounded_channel();
        let (spoken_tx, spoken) = mpsc::unbounded_channel();
        let (mouth_tx, mouth_rx) = std_mpsc::channel();
        let stt_worker =
            stt_worker::SttWorker::spawn(engines.stt, settings.partial_interval_ms, stt_tx)
                .map_err(|e| CoreError::Thread("speech recognition", e))?;
        let record = engines.memory.as_ref().is_some_and(|m| m.wants_audio());
        mouth::spawn(
            engines.voice,
            Arc::clone(&engines.player),
            settings.speed,
            record,
            mouth_rx,
            spoken_tx,
        )
        .map_err(|e| CoreError::Thread("voice", e))?;
        let origin = Instant::now();
        let stages = orchestrator::Stages {
            ears,
            stt: stt_worker,
            mouth: mouth_tx,
            llm_tx,
        };
        let answering = orchestrator::AnswerEngines {
            llm: engines.llm,
            player: engines.player,
            instant: engines.instant,
            memory: engines.memory,
        };
        let orchestrator =
            orchestrator::Orchestrator::new(settings, origin, events.clone(), stages, answering);
        let inputs = orchestrator::Inputs {
            commands,
            heard,
            stt,
            llm,
            spoken,
            drained: Arc::new(Notify::new()),
        };
        let task = tokio::spawn(orchestrator.run(inputs));
        Ok((
            Assistant {
                commands: commands_tx,
                events: events.downgrade(),
                origin,
                task: Some(task),
                ended: None,
            },
            first_receiver,
        ))
    }

    /// Sends a command; ignored once the assistant has stopped.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// A new receiver of events from now on (`None` once the assistant has stopped).
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        self.events.upgrade().map(|sender| sender.subscribe())
    }

    /// Milliseconds on the assistant's clock (the clock of every event's times).
    pub fn now_ms(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * 1000.0
    }

    /// Waits until the assistant stops: after [`Command::Shutdown`], or when its audio
    /// source has ended and the last turn is over.
    pub async fn finished(mut self) {
        self.ended().await;
    }

    /// Waits until the orchestrator is no longer running, and says why. Cancel-safe, and
    /// answers at once when it has ended already: an owner can keep it in a `select!` to
    /// notice an assistant that stopped without being asked.
    pub async fn ended(&mut self) -> Ended {
        if let Some(task) = self.task.as_mut() {
            let result = task.await;
            self.task = None;
            self.ended = Some(Ended::from_join(result));
        }
        self.ended.clone().unwrap_or(Ended::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::Ended;

    #[tokio::test]
    async fn a_panicked_orchestrator_is_told_apart_from_one_that_stopped() {
        let stopped = tokio::spawn(async {});
        assert_eq!(Ended::from_join(stopped.await), Ended::Stopped);
        let panicked = tokio::spawn(async { panic!("the turn state broke") });
        assert_eq!(
            Ended::from_join(panicked.await),
            Ended::Panicked("the turn state broke".into())
        );
        let formatted = tokio::spawn(async {
            let turn = 7;
            panic!("turn {turn} broke")
        });
        assert_eq!(
            Ended::from_join(formatted.await),
            Ended::Panicked("turn 7 broke".into())
        );
    }
}
