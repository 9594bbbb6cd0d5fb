//! The assistant inside the app: one task starts the engines (`sotto_core::assemble`, the
//! same wiring as the CLI), then owns the running [`Assistant`] and relays the window's
//! commands to it; another forwards every assistant event to the window.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use sotto_audio::{AudioBuffer, Capture, CaptureEvent, ListenMode, Pace, Player};
use sotto_core::assemble::{assemble, default_intents_path, EngineChoice};
use sotto_core::{Assistant, ErrorKind, Event, Memory, TurnSettings};
use sotto_models::ModelStore;
use sotto_store::Store;
use tauri::{AppHandle, Emitter};
use tokio::sync::{mpsc, watch};

use crate::protocol::{AppStatus, UiCommand, EVENT, STATUS};

/// Test-only: a WAV file spoken into a virtual microphone each time listening starts,
/// instead of the real microphone (the end-to-end test has no microphone).
pub const TEST_INPUT_VAR: &str = "SOTTO_TEST_INPUT";

/// What the window's commands reach.
pub struct AssistantHandle {
    commands: mpsc::UnboundedSender<UiCommand>,
    status: watch::Receiver<AppStatus>,
    history: watch::Receiver<Option<Arc<Store>>>,
    notices: watch::Receiver<Vec<Event>>,
}

impl AssistantHandle {
    /// Passes a command to the assistant (ignored until it is ready).
    pub fn send(&self, command: UiCommand) {
        let _ = self.commands.send(command);
    }

    /// The current status.
    pub fn status(&self) -> AppStatus {
        self.status.borrow().clone()
    }

    /// Problems met while starting (no microphone, damaged history), for a window that
    /// opened after they were reported.
    pub fn notices(&self) -> Vec<Event> {
        self.notices.borrow().clone()
    }

    /// The history store, once open.
    pub fn history(&self) -> Option<Arc<Store>> {
        self.history.borrow().clone()
    }
}

/// Starts the assistant in the background; the window follows its progress through
/// [`STATUS`] events.
pub fn start(app: AppHandle) -> AssistantHandle {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (status_tx, status) = watch::channel(AppStatus::Starting {
        step: "Starting".into(),
    });
    let (history_tx, history) = watch::channel(None);
    let (notices_tx, notices) = watch::channel(Vec::new());
    tauri::async_runtime::spawn(async move {
        let reporter = Reporter {
            app: app.clone(),
            status: status_tx,
            notices: notices_tx,
        };
        run(app, reporter, history_tx, commands).await;
    });
    AssistantHandle {
        commands: commands_tx,
        status,
        history,
        notices,
    }
}

/// Sends status changes and errors to the window.
struct Reporter {
    app: AppHandle,
    status: watch::Sender<AppStatus>,
    notices: watch::Sender<Vec<Event>>,
}

impl Reporter {
    fn status(&self, status: AppStatus) {
        tracing::info!(?status);
        let _ = self.app.emit(STATUS, &status);
        let _ = self.status.send(status);
    }

    fn step(&self, step: &str) {
        self.status(AppStatus::Starting { step: step.into() });
    }

    fn error(&self, kind: ErrorKind, message: String) {
        tracing::warn!("{message}");
        let event = Event::ErrorOccurred {
            turn_id: None,
            kind,
            message,
        };
        let _ = self.app.emit(EVENT, &event);
        self.notices.send_modify(|all| all.push(event));
    }
}

/// Where the voice comes from. Held for as long as the assistant runs: dropping it
/// stops the capture.
enum Input {
    Microphone {
        _capture: Capture,
    },
    /// The test input: the clip is spoken into the virtual microphone at each start.
    Virtual(std_mpsc::Sender<AudioBuffer>, AudioBuffer),
    /// No microphone: silence, so typed questions still work.
    Silent {
        _microphone: std_mpsc::Sender<AudioBuffer>,
    },
}

async fn run(
    app: AppHandle,
    reporter: Reporter,
    history_tx: watch::Sender<Option<Arc<Store>>>,
    mut commands: mpsc::UnboundedReceiver<UiCommand>,
) {
    reporter.step("Opening your history");
    let memory = open_history(&reporter).map(|store| {
        let _ = history_tx.send(Some(Arc::clone(&store)));
        Memory::new(store, None)
    });

    reporter.step("Checking the models");
    let models = match ModelStore::open_default() {
        Ok(models) => models,
        Err(e) => {
            return reporter.status(AppStatus::Failed {
                kind: ErrorKind::Model,
                message: e.to_string(),
            })
        }
    };
    let missing = missing_defaults(&models);
    if !missing.is_empty() {
        return reporter.status(AppStatus::SetupNeeded { missing });
    }

    let (input, capture_events, microphone) = match open_input(&reporter) {
        Ok(opened) => opened,
        Err(message) => {
            return reporter.status(AppStatus::Failed {
                kind: ErrorKind::Microphone,
                message,
            })
        }
    };
    let player = match open_player(&reporter) {
        Ok(player) => Arc::new(player),
        Err(message) => {
            return reporter.status(AppStatus::Failed {
                kind: ErrorKind::Speaker,
                message,
            })
        }
    };
    let speaker = player.name();

    reporter.step("Loading the speech, language and voice models");
    let mode = ListenMode::PushToTalk;
    let choice = EngineChoice {
        intents: default_intents_path(),
        ..EngineChoice::default()
    };
    let (mut engines, listener) = match assemble(&models, &choice, mode, player).await {
        Ok(built) => built,
        Err(e) => {
            return reporter.status(AppStatus::Failed {
                kind: e.kind,
                message: e.message,
            })
        }
    };
    engines.memory = memory;
    let settings = TurnSettings {
        mode,
        ..TurnSettings::default()
    };
    let (assistant, mut events) =
        match Assistant::start(engines, settings, capture_events, listener) {
            Ok(started) => started,
            Err(e) => {
                return reporter.status(AppStatus::Failed {
                    kind: ErrorKind::Microphone,
                    message: e.to_string(),
                })
            }
        };
    let forward = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let _ = forward.emit(EVENT, &event);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("the window missed {n} events");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    reporter.status(AppStatus::Ready {
        microphone,
        speaker,
    });

    while let Some(command) = commands.recv().await {
        if let (UiCommand::StartListening, Input::Virtual(mic, clip)) = (&command, &input) {
            let _ = mic.send(clip.clone());
        }
        assistant.send(command.into());
    }
    assistant.send(sotto_core::Command::Shutdown);
    drop(input);
}

fn open_history(reporter: &Reporter) -> Option<Arc<Store>> {
    let Some(dir) = Store::default_dir() else {
        reporter.error(
            ErrorKind::Storage,
            "There is no data folder to keep history in; conversations will not be saved.".into(),
        );
        return None;
    };
    match Store::open(&dir) {
        Ok(opened) => {
            if let Some(moved) = opened.moved_aside {
                reporter.error(ErrorKind::Storage, moved.to_string());
            }
            Some(Arc::new(opened.store))
        }
        Err(e) => {
            reporter.error(
                ErrorKind::Storage,
                format!("{e}. Conversations will not be saved this time."),
            );
            None
        }
    }
}

/// Default models that are not installed (or not whole).
fn missing_defaults(models: &ModelStore) -> Vec<String> {
    models
        .manifest()
        .models
        .iter()
        .filter(|m| m.default && m.runs_here())
        .filter(|m| {
            models
                .check(&m.id)
                .map_or(true, |files| !sotto_models::problems(&files).is_empty())
        })
        .map(|m| m.id.clone())
        .collect()
}

type OpenedInput = (Input, std_mpsc::Receiver<CaptureEvent>, String);

fn open_input(reporter: &Reporter) -> Result<OpenedInput, String> {
    let (events_tx, events) = std_mpsc::sync_channel(256);
    let (clips, clips_rx) = std_mpsc::channel();
    if let Some(path) = std::env::var_os(TEST_INPUT_VAR) {
        let path = PathBuf::from(path);
        let clip = sotto_audio::wav::read(&path).map_err(|e| e.to_string())?;
        sotto_audio::spawn_virtual_microphone(clips_rx, events_tx)
            .map_err(|e| format!("cannot start the test input: {e}"))?;
        let name = format!("test input {}", path.display());
        return Ok((Input::Virtual(clips, clip), events, name));
    }
    match Capture::start(None) {
        Ok((capture, events)) => {
            let name = capture.device().to_string();
            Ok((Input::Microphone { _capture: capture }, events, name))
        }
        Err(e) => {
            reporter.error(
                ErrorKind::Microphone,
                format!("{}. Plug in a microphone or choose another one in Settings; until then you can type your questions.", e.to_string().trim_end_matches('.')),
            );
            sotto_audio::spawn_virtual_microphone(clips_rx, events_tx)
                .map_err(|e| format!("cannot start listening: {e}"))?;
            Ok((Input::Silent { _microphone: clips }, events, "none".into()))
        }
    }
}

/// The speakers; with none, answers go to a WAV file at real-time pace (so timings and
/// interruptions behave the same) and the window says so.
fn open_player(reporter: &Reporter) -> Result<Player, String> {
    match Player::speaker(None) {
        Ok(player) => Ok(player),
        Err(e) => {
            let path =
                std::env::temp_dir().join(format!("sotto-answers-{}.wav", std::process::id()));
            reporter.error(
                ErrorKind::Speaker,
                format!(
                    "{}. Answers are shown on screen and written to {}; connect speakers or choose another output in Settings to hear them.",
                    e.to_string().trim_end_matches('.'),
                    path.display()
                ),
            );
            Player::wav(&path, 24_000, Pace::RealTime).map_err(|e| e.to_string())
        }
    }
}
