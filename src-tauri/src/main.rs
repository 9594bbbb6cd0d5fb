//! Sotto's desktop app. The shell stays thin: the assistant (`sotto_core`) runs in
//! background tasks; the webview gets its typed events and sends typed commands.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod api;
mod assistant;
mod autostart;
mod choices;
mod devices;
mod history;
mod hotkey;
mod models;
mod protocol;
mod setup;
mod shell;
mod single_instance;
mod tray;
mod webview_env;

use std::sync::OnceLock;

use tauri::{Manager, State, WindowEvent};

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

/// First run: download the missing default models (progress comes as events).
#[tauri::command]
fn setup_download(handle: State<'_, AssistantHandle>) {
    handle.download();
}

/// Problems reported while starting, for a window that opened after them.
#[tauri::command]
fn startup_notices(handle: State<'_, AssistantHandle>) -> Vec<sotto_core::Event> {
    handle.notices()
}

/// Whether the tray icon is there (closing the window then hides it).
struct HasTray(bool);

fn main() {
    // Before any thread starts: setting the environment is only sound then.
    webview_env::apply();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sotto=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // A second Sotto brings the first one's window forward and leaves.
    static APP: OnceLock<tauri::AppHandle> = OnceLock::new();
    let instance = single_instance::acquire(&single_instance::default_socket(), || {
        if let Some(app) = APP.get() {
            shell::show_main(app);
        }
    });
    let _guard = match instance {
        Ok(single_instance::Instance::First(guard)) => Some(guard),
        Ok(single_instance::Instance::Second) => {
            eprintln!("Sotto is already running: its window was brought forward.");
            return;
        }
        Err(e) => {
            // Better two instances than none.
            tracing::warn!("cannot check for another running Sotto: {e}");
            None
        }
    };
    let minimized = std::env::args().any(|a| a == autostart::MINIMIZED_FLAG);
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_global_shortcut::Builder::new().build())
        .setup(move |app| {
            let _ = APP.set(app.handle().clone());
            let handle = assistant::start(app.handle().clone());
            let has_tray = shell::install(app.handle(), &handle);
            app.manage(api::start(app.handle().clone(), handle.clone()));
            app.manage(handle);
            app.manage(HasTray(has_tray));
            if minimized && has_tray {
                if let Some(window) = app.get_webview_window(shell::MAIN_WINDOW) {
                    let _ = window.hide();
                }
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            if window.label() != shell::MAIN_WINDOW {
                return;
            }
            if let WindowEvent::CloseRequested { api, .. } = event {
                // With a tray, Sotto keeps listening for the hotkey; without one, closing
                // the window is the only way out, so it quits (the overlay goes too).
                let has_tray = window.try_state::<HasTray>().is_some_and(|t| t.0);
                if has_tray {
                    api.prevent_close();
                    let _ = window.hide();
                } else {
                    window.app_handle().exit(0);
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            command,
            app_status,
            startup_notices,
            settings_get,
            settings_set,
            setup_download,
            choices::settings_choices,
            choices::api_key_status,
            choices::api_key_set,
            choices::api_key_delete,
            api::api_status,
            api::api_token_regenerate,
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
