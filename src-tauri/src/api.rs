//! The local API inside the app (docs/API.md): served while Settings say so, over the
//! running assistant's own engines, its WebSocket driving the assistant the window shows.
//! One task owns the server: it starts, restarts (new port, screen, persona or token) and
//! stops it as the settings change, and hands it the assistant's engines each time the
//! assistant restarts (clients stay connected).

use std::sync::Arc;
use std::time::Duration;

use sotto_api::voices::StoreVoices;
use sotto_api::{ApiConfig, ApiEngines, Limits, Server};
use sotto_core::budget::CpuBudget;
use sotto_core::settings::{ScreenPolicy, Settings};
use sotto_core::ErrorKind;
use sotto_models::ModelStore;
use tauri::{AppHandle, Emitter, State};
use tokio::sync::watch;

use crate::assistant::{sentence, AssistantHandle, SharedEngines};
use crate::protocol::{LocalApiStatus, API};
use crate::shell::MAIN_WINDOW;

/// How long requests under way may finish when the server stops or restarts.
const GRACE: Duration = Duration::from_secs(2);

/// What the Settings panel asks of the local API.
#[derive(Clone)]
pub struct ApiHandle {
    status: watch::Receiver<LocalApiStatus>,
    /// Bumped when the token is replaced: the server restarts with the new one.
    regenerated: Arc<watch::Sender<u64>>,
}

/// What the server is started with; a change restarts it. (The engines are swapped
/// without a restart: clients stay connected while the assistant restarts.)
#[derive(Debug, Clone, PartialEq)]
struct Wanted {
    port: u16,
    screen: ScreenPolicy,
    persona: String,
}

impl Wanted {
    fn from(settings: &Settings) -> Wanted {
        Wanted {
            port: settings.api_port,
            screen: settings.api_screen,
            persona: settings.persona.clone(),
        }
    }
}

/// Starts the task that serves the API while the settings ask for it; each change of its
/// status goes to the window too.
pub fn start(app: AppHandle, assistant: AssistantHandle) -> ApiHandle {
    let (status_tx, status) = watch::channel(LocalApiStatus::default());
    let (regenerated_tx, regenerated) = watch::channel(0);
    let mut changes = status.clone();
    tauri::async_runtime::spawn(async move {
        while changes.changed().await.is_ok() {
            let now = changes.borrow_and_update().clone();
            // The token is for the Settings panel only, not the overlay.
            let _ = app.emit_to(MAIN_WINDOW, API, &now);
        }
    });
    tauri::async_runtime::spawn(serve(assistant, status_tx, regenerated));
    ApiHandle {
        status,
        regenerated: Arc::new(regenerated_tx),
    }
}

async fn serve(
    assistant: AssistantHandle,
    status: watch::Sender<LocalApiStatus>,
    mut regenerated: watch::Receiver<u64>,
) {
    let mut settings = assistant.watch_settings();
    let mut shared = assistant.watch_shared();
    let mut running: Option<(Server, Wanted)> = None;
    let mut token_changed = false;
    // The engines the server was last given: a settings change that leaves them (a new
    // hotkey, the overlay) hands it nothing new.
    let mut given: Option<usize> = None;
    loop {
        let now = settings.borrow_and_update().clone();
        let engines = shared.borrow_and_update().clone();
        let wanted = Wanted::from(&now);
        let keep =
            now.api && !token_changed && running.as_ref().is_some_and(|(_, had)| *had == wanted);
        let key = engines.as_ref().map(engines_id);
        if keep {
            if let Some((server, _)) = running.as_ref().filter(|_| given != key) {
                // The same server; the assistant's engines of now (none while it restarts).
                let built = engines
                    .as_ref()
                    .map(|e| api_engines(&now, e, &assistant))
                    .transpose();
                match built {
                    Ok(built) => server.set_engines(built),
                    Err(problem) => {
                        assistant.error(
                            ErrorKind::Settings,
                            format!(
                                "The local API cannot use the models ({problem}): it answers \"try again\" until they can be read."
                            ),
                        );
                        server.set_engines(None);
                    }
                }
                given = key;
            }
        } else {
            given = key;
            if let Some((server, _)) = running.take() {
                server.shutdown(GRACE).await;
                tracing::info!("the local API stopped");
            }
            running = match (&engines, now.api) {
                (Some(engines), true) => match open(&now, engines, &assistant).await {
                    Ok((server, token)) => {
                        let _ = status.send(LocalApiStatus {
                            url: Some(server.url()),
                            token: Some(token),
                            problem: None,
                        });
                        Some((server, wanted))
                    }
                    Err(problem) => {
                        assistant.error(
                            ErrorKind::Settings,
                            format!("The local API is off: {problem}."),
                        );
                        let _ = status.send(LocalApiStatus {
                            problem: Some(problem),
                            ..LocalApiStatus::default()
                        });
                        None
                    }
                },
                (None, true) => {
                    let _ = status.send(LocalApiStatus {
                        problem: Some("it starts with the assistant".into()),
                        ..LocalApiStatus::default()
                    });
                    None
                }
                (_, false) => {
                    let _ = status.send(LocalApiStatus::default());
                    None
                }
            };
        }
        token_changed = false;
        tokio::select! {
            changed = settings.changed() => if changed.is_err() { break },
            changed = shared.changed() => if changed.is_err() { break },
            changed = regenerated.changed() => {
                if changed.is_err() { break }
                token_changed = true;
            }
        }
    }
    if let Some((server, _)) = running {
        server.shutdown(GRACE).await;
    }
}

/// Which assistant's engines these are: its language model's address. Every assistant
/// has its own (a change of model or voice restarts the assistant), and the server holds
/// the engines it was given, so a later assistant's cannot take the same address.
fn engines_id(engines: &SharedEngines) -> usize {
    Arc::as_ptr(&engines.llm).cast::<()>() as usize
}

/// The API's engines: the running assistant's language model and recogniser, the
/// installed voices, and the assistant itself for the WebSocket.
fn api_engines(
    settings: &Settings,
    engines: &SharedEngines,
    assistant: &AssistantHandle,
) -> Result<ApiEngines, String> {
    let store = ModelStore::open_default().map_err(|e| sentence(&e.to_string()))?;
    let threads = CpuBudget::detect().threads_from_env();
    Ok(ApiEngines {
        llm: Arc::clone(&engines.llm),
        stt: Arc::clone(&engines.stt),
        stt_model: settings.stt_model.clone(),
        llm_model: settings.llm_model.clone(),
        voices: Arc::new(StoreVoices::new(store, threads.voice)),
        default_voice: settings.voice.clone(),
        live: Some(assistant.live()),
    })
}

/// Starts the server for `settings` over `engines`; its token too. A problem in words.
async fn open(
    settings: &Settings,
    engines: &SharedEngines,
    assistant: &AssistantHandle,
) -> Result<(Server, String), String> {
    let token_path = sotto_api::token::default_path().map_err(|e| sentence(&e.to_string()))?;
    let token =
        sotto_api::token::load_or_create(&token_path).map_err(|e| sentence(&e.to_string()))?;
    let config = ApiConfig {
        port: settings.api_port,
        token: token.clone(),
        limits: Limits::default(),
        screen: settings.api_screen,
        persona: Some(settings.persona.clone()).filter(|p| !p.trim().is_empty()),
    };
    let server = Server::start(config, api_engines(settings, engines, assistant)?)
        .await
        .map_err(|e| sentence(&e.to_string()))?;
    if let Err(e) = sotto_api::token::write_port(&token_path, server.port()) {
        tracing::warn!("{e}");
    }
    tracing::info!("the local API listens on {}", server.url());
    Ok((server, token))
}

/// The local API now: where it listens and its token, or why it does not run.
#[tauri::command]
pub fn api_status(api: State<'_, ApiHandle>) -> LocalApiStatus {
    api.status.borrow().clone()
}

/// Replaces the API token (programs with the old one are refused from now on) and
/// restarts the server with the new one; returns the status once it has.
#[tauri::command]
pub async fn api_token_regenerate(api: State<'_, ApiHandle>) -> Result<LocalApiStatus, String> {
    let path = sotto_api::token::default_path().map_err(|e| sentence(&e.to_string()))?;
    let token = tauri::async_runtime::spawn_blocking(move || sotto_api::token::regenerate(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| sentence(&e.to_string()))?;
    let mut status = api.status.clone();
    status.mark_unchanged();
    api.regenerated.send_modify(|n| *n += 1);
    if status.borrow().url.is_some() {
        // Running: wait (briefly) for the restart with the new token.
        let restarted = tokio::time::timeout(Duration::from_secs(10), async {
            while status.borrow().token.as_deref() != Some(token.as_str()) {
                if status.changed().await.is_err() {
                    break;
                }
            }
        });
        let _ = restarted.await;
    }
    let now = status.borrow().clone();
    Ok(now)
}
