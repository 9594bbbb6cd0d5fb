//! The assistant inside the app: one task starts the engines (`sotto_core::assemble`, the
//! same wiring as the CLI), then owns the running [`Assistant`] and relays the window's
//! commands (and the local API's) to it; another forwards every assistant event to the
//! window and to the local API's clients. An assistant that stops without being asked is
//! started again (`sotto_core::restarts`), and the window told.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sotto_api::LiveAssistant;
use sotto_audio::ListenMode;
use sotto_core::assemble::{self, default_intents_path, Launch};
use sotto_core::restarts::{Decision, Restarts};
use sotto_core::settings::Settings;
use sotto_core::{Assistant, AssistantState, Command, Ended, ErrorKind, Event, Memory};
use sotto_llm::Llm;
use sotto_models::ModelStore;
use sotto_store::turn_log::TurnLogs;
use sotto_store::Store;
use sotto_stt::SpeechToText;
use tauri::{AppHandle, Emitter};
use tokio::sync::{mpsc, watch};

use crate::devices::{events_file, log_event, open_input, open_player, Input};
use crate::protocol::{AppStatus, UiCommand, EVENT, SETUP, STATUS};
use crate::setup;

/// What the owner task is asked to do.
enum Control {
    /// A command for the running assistant.
    Ui(UiCommand),
    /// A command from the local API's WebSocket.
    Api(Command),
    /// New settings: saved already; restart the assistant with them.
    Apply(Box<Settings>),
    /// First run: download the missing default models, then start.
    Download,
}

/// What the window's commands, the hotkey and the tray reach.
#[derive(Clone)]
pub struct AssistantHandle {
    commands: mpsc::UnboundedSender<Control>,
    /// The settings as last saved, current as soon as a save returns: the Settings panel
    /// shows them and the next change starts from them. (`settings` below follows a
    /// moment later, once the owner task has taken them up.) Held through a save, so two
    /// at once (the window and the tray) cannot leave the file, this and the assistant's
    /// settings disagreeing.
    saved: Arc<std::sync::Mutex<Settings>>,
    /// The settings the assistant runs with.
    settings: watch::Receiver<Settings>,
    status: watch::Receiver<AppStatus>,
    state: watch::Receiver<AssistantState>,
    history: watch::Receiver<Option<Arc<Store>>>,
    notices: watch::Receiver<Vec<Event>>,
    reporter: Arc<Reporter>,
    live: Arc<LiveAssistant>,
    shared: watch::Receiver<Option<SharedEngines>>,
}

/// The running assistant's engines that the local API answers with too.
#[derive(Clone)]
pub struct SharedEngines {
    /// Its language model.
    pub llm: Arc<dyn Llm>,
    /// Its speech to text.
    pub stt: Arc<dyn SpeechToText>,
}

impl AssistantHandle {
    /// Passes a command to the assistant (ignored until it is ready).
    pub fn send(&self, command: UiCommand) {
        let _ = self.commands.send(Control::Ui(command));
    }

    /// The settings as last saved (the assistant takes them up a moment after the save:
    /// reading the ones in use here showed the window the old values right after a save).
    pub fn settings(&self) -> Settings {
        self.lock_saved().clone()
    }

    /// The settings as last saved, locked. (A save that panicked left them as they were:
    /// they are replaced only after the file is written.)
    fn lock_saved(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.saved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Saves `settings` and restarts the assistant with them; an invalid value or a
    /// failed save changes nothing and says why.
    pub fn apply(&self, settings: Settings) -> Result<(), String> {
        let problems = settings.problems();
        if !problems.is_empty() {
            return Err(format!("Not saved: {}.", problems.join("; ")));
        }
        let path = settings_path().ok_or("there is no configuration folder to save to")?;
        let mut saved = self.lock_saved();
        settings.save(&path).map_err(|e| e.to_string())?;
        *saved = settings.clone();
        self.commands
            .send(Control::Apply(Box::new(settings)))
            .map_err(|_| "the assistant has stopped".to_string())
    }

    /// Tells the window about a problem (a toast, kept for a window that opens later).
    pub fn error(&self, kind: ErrorKind, message: String) {
        self.reporter.error(kind, message);
    }

    /// Starts the first-run download of the missing default models.
    pub fn download(&self) {
        let _ = self.commands.send(Control::Download);
    }

    /// The current status.
    pub fn status(&self) -> AppStatus {
        self.status.borrow().clone()
    }

    /// Status changes, for the tray.
    pub fn watch_status(&self) -> watch::Receiver<AppStatus> {
        self.status.clone()
    }

    /// What the assistant is doing now.
    pub fn state(&self) -> AssistantState {
        *self.state.borrow()
    }

    /// State changes, for the tray.
    pub fn watch_state(&self) -> watch::Receiver<AssistantState> {
        self.state.clone()
    }

    /// Settings changes (after each save), for the shell.
    pub fn watch_settings(&self) -> watch::Receiver<Settings> {
        self.settings.clone()
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

    /// The assistant as the local API's WebSocket sees and drives it.
    pub fn live(&self) -> Arc<LiveAssistant> {
        Arc::clone(&self.live)
    }

    /// The running assistant's engines (`None` while none runs), for the local API.
    pub fn watch_shared(&self) -> watch::Receiver<Option<SharedEngines>> {
        self.shared.clone()
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
    let (state_tx, state) = watch::channel(AssistantState::Idle);
    let (shared_tx, shared) = watch::channel(None);
    let api_commands = commands_tx.clone();
    let live = Arc::new(LiveAssistant::new(move |command| {
        let _ = api_commands.send(Control::Api(command));
    }));
    let loaded = settings_path().map(|p| Settings::load(&p));
    let (settings_tx, settings) = watch::channel(
        loaded
            .as_ref()
            .map_or_else(Settings::default, |l| l.settings.clone()),
    );
    let reporter = Arc::new(Reporter {
        app: app.clone(),
        status: status_tx,
        notices: notices_tx,
    });
    let owner_reporter = reporter.clone();
    let owner_live = Arc::clone(&live);
    tauri::async_runtime::spawn(async move {
        let reporter = owner_reporter;
        if let Some(loaded) = loaded {
            for line in loaded.reset {
                reporter.error(ErrorKind::Settings, format!("Settings: {line}."));
            }
        }
        let channels = Channels {
            history: history_tx,
            settings: settings_tx,
            state: Arc::new(state_tx),
            shared: shared_tx,
            live: owner_live,
        };
        run(app, reporter, channels, commands).await;
    });
    let saved = Arc::new(std::sync::Mutex::new(settings.borrow().clone()));
    AssistantHandle {
        commands: commands_tx,
        saved,
        settings,
        status,
        state,
        history,
        notices,
        reporter,
        live,
        shared,
    }
}

/// Sends status changes and errors to the window.
pub(crate) struct Reporter {
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

    pub(crate) fn error(&self, kind: ErrorKind, message: String) {
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

/// `<config dir>/sotto/settings.toml` (`XDG_CONFIG_HOME` moves it, as it does the
/// intents file).
fn settings_path() -> Option<PathBuf> {
    Settings::default_path()
}

/// What the owner task publishes besides status and notices.
struct Channels {
    history: watch::Sender<Option<Arc<Store>>>,
    settings: watch::Sender<Settings>,
    state: Arc<watch::Sender<AssistantState>>,
    /// The running assistant's engines, for the local API.
    shared: watch::Sender<Option<SharedEngines>>,
    /// The local API's view of the assistant.
    live: Arc<LiveAssistant>,
}

async fn run(
    app: AppHandle,
    reporter: Arc<Reporter>,
    channels: Channels,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    reporter.step("Opening your history");
    let history = open_history(&reporter);
    let _ = channels.history.send(history.clone());

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
    if !first_run_setup(&app, &reporter, &models, &channels.settings, &mut control).await {
        return;
    }

    let mut restarts = Restarts::default();
    loop {
        let settings = channels.settings.borrow().clone();
        let started = start_assistant(
            &app,
            &reporter,
            &models,
            &settings,
            history.clone(),
            channels.state.clone(),
            Arc::clone(&channels.live),
        )
        .await;
        // How long it ran counts from when it was ready, not from loading the models.
        let started_at = Instant::now();
        let mut running = match started {
            Ok(running) => {
                let _ = channels.shared.send(Some(running.shared.clone()));
                Some(running)
            }
            Err(failed) => {
                reporter.status(failed);
                None
            }
        };
        // Serve commands until new settings arrive, the assistant stops unasked, or the
        // app closes.
        let next = loop {
            let woke = {
                let ended = ended_unasked(&mut running);
                tokio::select! {
                    control = control.recv() => Woke::Control(control),
                    why = ended => Woke::Ended(why),
                }
            };
            let control = match woke {
                Woke::Control(control) => control,
                Woke::Ended(why) => {
                    // Whatever it was doing (thinking, speaking) is over.
                    forget_turn(&app, &channels);
                    match restarts.stopped_after(started_at.elapsed()) {
                        Decision::Restart(n) => {
                            reporter.error(ErrorKind::Assistant, stopped_message(&why, Some(n)));
                            break Next::Restart;
                        }
                        Decision::GiveUp => {
                            retire(running.take(), &channels).await;
                            reporter.status(AppStatus::Failed {
                                kind: ErrorKind::Assistant,
                                message: stopped_message(&why, None),
                            });
                            continue;
                        }
                    }
                }
            };
            match control {
                Some(Control::Ui(command)) => {
                    if let Some(running) = &running {
                        running.send(command.into());
                    }
                }
                Some(Control::Api(command)) => {
                    if let Some(running) = &running {
                        running.send(command);
                    }
                }
                // The hotkey, overlay and autostart are the shell's: no restart for them.
                Some(Control::Apply(new)) if !needs_restart(&settings, &new) => {
                    let _ = channels.settings.send(*new);
                }
                Some(Control::Apply(settings)) => break Next::Apply(settings),
                Some(Control::Download) => {}
                None => break Next::Close,
            }
        };
        retire(running, &channels).await;
        match next {
            Next::Apply(settings) => {
                // Whatever made it stop may be gone with the old settings.
                restarts.forgive();
                let _ = channels.settings.send(*settings);
            }
            Next::Restart => {}
            Next::Close => return,
        }
    }
}

/// What woke the owner task.
enum Woke {
    /// The window, the hotkey or the local API; `None`: the app is closing.
    Control(Option<Control>),
    /// The assistant stopped without being asked.
    Ended(Ended),
}

/// What the owner task does after serving a running assistant.
enum Next {
    /// Start one with these settings.
    Apply(Box<Settings>),
    /// Start one again with the same settings: the last stopped unasked.
    Restart,
    /// The app is closing.
    Close,
}

/// Takes the local API off `running`'s engines and stops it, if there is one.
async fn retire(running: Option<Running>, channels: &Channels) {
    if let Some(running) = running {
        let _ = channels.shared.send(None);
        running.stop().await;
    }
}

/// Resolves when the running assistant stops (only [`Running::stop`] asks it to, and that
/// is never awaited here); never while none runs.
async fn ended_unasked(running: &mut Option<Running>) -> Ended {
    match running {
        Some(running) => running.assistant.ended().await,
        None => std::future::pending().await,
    }
}

/// An assistant that stopped mid-turn left the window, the tray and the local API's
/// clients in its last state: they are told it is idle now.
fn forget_turn(app: &AppHandle, channels: &Channels) {
    let _ = channels.state.send(AssistantState::Idle);
    // Not listening either, hands-free or not: a new assistant says so when it starts.
    channels.live.reset(false);
    let idle = Event::StateChanged {
        state: AssistantState::Idle,
        turn_id: 0,
        at_ms: 0.0,
    };
    channels.live.publish(&idle);
    let _ = app.emit(EVENT, &idle);
}

/// What the window says when the assistant stopped unasked: restarted (the `n`th time in a
/// row), or given up on (`None`).
fn stopped_message(why: &Ended, restart: Option<u32>) -> String {
    let cause = match why {
        Ended::Stopped => "its audio input ended".to_string(),
        Ended::Panicked(message) => format!("a fault in Sotto: {message}"),
    };
    match restart {
        Some(1) => format!("The assistant stopped ({cause}). It is starting again."),
        Some(n) => format!(
            "The assistant stopped again ({cause}). It is starting again (try {n} of {}).",
            sotto_core::restarts::MAX_QUICK_RESTARTS
        ),
        None => format!(
            "The assistant keeps stopping ({cause}). Change a setting (another microphone or model) to try again, or restart Sotto; if it goes on, please report it with this message."
        ),
    }
}

/// Whether going from `old` to `new` changes anything the running assistant uses.
fn needs_restart(old: &Settings, new: &Settings) -> bool {
    let engine = |s: &Settings| Settings {
        hotkey: String::new(),
        overlay: false,
        start_on_login: false,
        // The local API is served beside the assistant (crate::api).
        api: false,
        api_port: 0,
        api_screen: sotto_core::settings::ScreenPolicy::Refuse,
        mode: match s.mode {
            // Both listen the same way; only the hotkey reads them differently.
            ListenMode::Toggle => ListenMode::PushToTalk,
            mode => mode,
        },
        ..s.clone()
    };
    engine(old) != engine(new)
}

/// Until every default model is installed: shows the setup screen and downloads when
/// asked (again after a failure). False if the app closed first.
async fn first_run_setup(
    app: &AppHandle,
    reporter: &Reporter,
    models: &ModelStore,
    settings: &watch::Sender<Settings>,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> bool {
    let mut problem = None;
    loop {
        let missing = setup::missing_defaults(models);
        if missing.is_empty() {
            return true;
        }
        reporter.status(AppStatus::SetupNeeded {
            bytes: setup::bytes_to_fetch(models, &missing),
            missing: missing.clone(),
            problem: problem.take(),
        });
        loop {
            match control.recv().await {
                Some(Control::Download) => break,
                Some(Control::Apply(new)) => {
                    let _ = settings.send(*new);
                }
                Some(Control::Ui(_) | Control::Api(_)) => {}
                None => return false,
            }
        }
        reporter.status(AppStatus::Downloading);
        let window = app.clone();
        let report = move |progress| {
            let _ = window.emit(SETUP, &progress);
        };
        if let Err(e) = setup::download(models, &missing, report).await {
            reporter.error(ErrorKind::Model, format!("{}.", sentence(&e)));
            problem = Some(e);
        }
    }
}

/// A started assistant and what keeps its input alive.
struct Running {
    assistant: Assistant,
    input: Input,
    shared: SharedEngines,
    /// Forwards the assistant's events; ends after the last.
    forwarder: tauri::async_runtime::JoinHandle<()>,
}

impl Running {
    fn send(&self, command: Command) {
        if let (Command::StartListening, Input::Virtual(clips)) = (&command, &self.input) {
            clips.speak_next();
        }
        self.assistant.send(command);
    }

    /// Stops the assistant and waits for it (the language model's worker goes with it).
    async fn stop(self) {
        self.assistant.send(sotto_core::Command::Shutdown);
        self.assistant.finished().await;
        drop(self.input);
        // Its last events are passed on before the next assistant's first (the channel
        // closes with the assistant; bounded all the same).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.forwarder).await;
    }
}

/// Builds the engines for `settings` and starts the assistant.
async fn start_assistant(
    app: &AppHandle,
    reporter: &Reporter,
    models: &ModelStore,
    settings: &Settings,
    history: Option<Arc<Store>>,
    state: Arc<watch::Sender<AssistantState>>,
    live: Arc<LiveAssistant>,
) -> Result<Running, AppStatus> {
    // Whatever the last assistant was doing is over, started or not.
    live.reset(settings.mode.is_hands_free());
    let (input, capture_events, microphone) = open_input(reporter, settings.microphone.as_deref())
        .map_err(|message| AppStatus::Failed {
            kind: ErrorKind::Microphone,
            message,
        })?;
    let player = Arc::new(open_player(reporter, settings.speaker.as_deref()).map_err(
        |message| AppStatus::Failed {
            kind: ErrorKind::Speaker,
            message,
        },
    )?);
    let speaker = player.name();

    reporter.step("Loading the speech, language and voice models");
    let logs = settings
        .turn_logs
        .then(TurnLogs::default_dir)
        .flatten()
        .map(|dir| TurnLogs::new(dir, settings.keep_turn_logs as usize));
    let launch = Launch {
        intents: default_intents_path(),
        memory: history.map(|store| Memory::new(store, logs)),
        ..Launch::new(player, capture_events)
    };
    let started = assemble::start(models, settings, launch)
        .await
        .map_err(|e| AppStatus::Failed {
            kind: e.kind,
            message: e.message,
        })?;
    let (assistant, mut events, answers) = (started.assistant, started.events, started.answers);
    let shared = SharedEngines {
        llm: started.llm,
        stt: started.stt,
    };
    let forward = app.clone();
    let mut events_file = events_file();
    let forwarder = tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Event::StateChanged { state: now, .. } = &event {
                        let _ = state.send(*now);
                    }
                    if let Some(file) = events_file.as_mut() {
                        log_event(file, &event);
                    }
                    live.publish(&event);
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
        answers,
        microphone,
        speaker,
    });
    Ok(Running {
        assistant,
        input,
        shared,
        forwarder,
    })
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

/// `message` as the start of a sentence: capitalised, without its closing full stop.
pub fn sentence(message: &str) -> String {
    let trimmed = message.trim().trim_end_matches('.');
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_engine_settings_restart_the_assistant() {
        let old = Settings::default();
        let shell_only = Settings {
            hotkey: "Ctrl+Shift+T".into(),
            overlay: !old.overlay,
            start_on_login: true,
            mode: ListenMode::Toggle,
            api: true,
            api_port: 0,
            api_screen: sotto_core::settings::ScreenPolicy::Warn,
            ..old.clone()
        };
        assert!(!needs_restart(&old, &shell_only));
        let hands_free = Settings {
            mode: ListenMode::HandsFree,
            ..old.clone()
        };
        assert!(needs_restart(&old, &hands_free));
        let warmer = Settings {
            temperature: 1.2,
            ..old.clone()
        };
        assert!(needs_restart(&old, &warmer));
    }

    #[test]
    fn an_assistant_that_stops_unasked_is_restarted_and_the_user_told_why() {
        let panicked = Ended::Panicked("index out of bounds".into());
        assert_eq!(
            stopped_message(&panicked, Some(1)),
            "The assistant stopped (a fault in Sotto: index out of bounds). It is starting again."
        );
        assert!(stopped_message(&Ended::Stopped, Some(2))
            .contains("stopped again (its audio input ended). It is starting again (try 2 of 3)"));
        let given_up = stopped_message(&panicked, None);
        assert!(
            given_up.starts_with("The assistant keeps stopping"),
            "{given_up}"
        );
        assert!(given_up.contains("Change a setting"), "{given_up}");
    }
}
