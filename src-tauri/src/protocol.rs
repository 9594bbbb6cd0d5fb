//! What the window and the app say to each other beyond the assistant's own events
//! (`sotto_core::Event`, sent as they are). Every type here has generated TypeScript
//! bindings in `ui/src/bindings/`.

use serde::{Deserialize, Serialize};
use sotto_core::ErrorKind;
use ts_rs::TS;

/// The Tauri event that carries every `sotto_core::Event`.
pub const EVENT: &str = "sotto://event";
/// The Tauri event that carries [`AppStatus`] changes.
pub const STATUS: &str = "sotto://status";
/// The Tauri event that carries [`SetupProgress`] while the first-run download runs.
pub const SETUP: &str = "sotto://setup";
/// The Tauri event that carries [`LocalApiStatus`] changes.
pub const API: &str = "sotto://api";

/// What the user asks of the assistant from the window (or the hotkey).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum UiCommand {
    /// Start listening (the talk button or hotkey went down).
    StartListening,
    /// Stop listening: the user is done speaking.
    StopListening,
    /// Stop the answer now and listen.
    Interrupt,
    /// A typed question.
    SendText {
        /// The question.
        text: String,
    },
}

impl From<UiCommand> for sotto_core::Command {
    fn from(command: UiCommand) -> Self {
        match command {
            UiCommand::StartListening => sotto_core::Command::StartListening,
            UiCommand::StopListening => sotto_core::Command::StopListening,
            UiCommand::Interrupt => sotto_core::Command::Interrupt,
            UiCommand::SendText { text } => sotto_core::Command::SendText(text),
        }
    }
}

/// Whether the assistant can be used yet.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum AppStatus {
    /// Loading; `step` says what.
    Starting {
        /// For a person ("Loading the language model").
        step: String,
    },
    /// Ready to talk.
    Ready {
        /// Who answers: the local model's or the cloud provider's name.
        answers: String,
        /// Where the voice comes from (a device name, or "test input").
        microphone: String,
        /// Where answers go (a device name, or a file when there are no speakers).
        speaker: String,
    },
    /// Default models are missing: the setup screen offers to download them.
    SetupNeeded {
        /// The missing model ids.
        missing: Vec<String>,
        /// How much there is to download, in bytes.
        #[ts(type = "number")]
        bytes: u64,
        /// Why the last download attempt failed, for a person (`None`: not tried yet).
        problem: Option<String>,
    },
    /// The first-run download is running; [`SETUP`] events tell its progress.
    Downloading,
    /// The assistant could not start; `message` says what to do.
    Failed {
        /// What failed.
        kind: ErrorKind,
        /// For a person.
        message: String,
    },
}

/// How far the first-run download has got.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct SetupProgress {
    /// The model being fetched.
    pub model: String,
    /// Models finished so far.
    pub models_done: u32,
    /// Models to fetch in all.
    pub models_total: u32,
    /// Bytes downloaded so far, over every model.
    #[ts(type = "number")]
    pub bytes_done: u64,
    /// Bytes to download in all (known from the manifest).
    #[ts(type = "number")]
    pub bytes_total: u64,
}

/// The local API as the Settings panel shows it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, TS)]
#[ts(export)]
pub struct LocalApiStatus {
    /// Where it listens (`http://127.0.0.1:PORT`), while it runs.
    pub url: Option<String>,
    /// The token other programs send (`Authorization: Bearer <token>`), while it runs.
    pub token: Option<String>,
    /// Why it does not run though switched on, for a person.
    pub problem: Option<String>,
}
