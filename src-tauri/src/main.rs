//! Sotto's desktop app. The shell stays thin: the assistant (`sotto_core`) runs in
//! background tasks; the webview gets its typed events and sends typed commands.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod assistant;
mod history;
mod models;
mod protocol;

use tauri::{Manager, State};

use assistant::AssistantHandle;
use protocol::{AppStatus, UiCommand};
use sotto_core::settings::Settings;

/// The window asks the assistant to do something.
#[tauri::command]
fn command(command: UiCommand, handle: State<'_, AssistantHandle>) {
    handle.send(command);
}

/// Where the assistant is (the window may open after the last status event).
#[tauri::command]
fn app_status(handle: State<'_, AssistantHandle>) -> AppStatus {
    handle.status()
}

/// The settings in use.
#[tauri::command]
fn settings_get(handle: State<'_, AssistantHandle>) -> Settings {
    handle.settings()
}

/// Saves new settings (atomically) and restarts the assistant with them.
#[tauri::command]
fn settings_set(settings: Settings, handle: State<'_, AssistantHandle>) -> Result<(), String> {
    handle.apply(settings)
}

/// Problems reported while starting, for a window that opened after them.
#[tauri::command]
fn startup_notices(handle: State<'_, AssistantHandle>) -> Vec<sotto_core::Event> {
    handle.notices()
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sotto=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tauri::Builder::default()
        .setup(|app| {
            let handle = assistant::start(app.handle().clone());
            app.manage(handle);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            command,
            app_status,
            startup_notices,
            settings_get,
            settings_set,
            models::models_status,
            history::history_search,
            history::history_turns,
            history::history_export,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("Sotto could not start its window: {e}");
        std::process::exit(1);
    }
}
