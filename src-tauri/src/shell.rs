//! The desktop around the assistant: tray icon, global hotkey, always-on-top overlay,
//! start on login, and what closing the window means. Each follows the assistant's
//! state and the saved settings through the handle's watch channels.

use std::sync::Arc;

use sotto_audio::ListenMode;
use sotto_core::settings::Settings;
use sotto_core::ErrorKind;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

use crate::assistant::AssistantHandle;
use crate::autostart;
use crate::hotkey::{self, Key};
use crate::protocol::{AppStatus, UiCommand};
use crate::tray::{Tray, TrayAction};

/// The main window's label (tauri.conf.json).
pub const MAIN_WINDOW: &str = "main";
/// The overlay window's label.
pub const OVERLAY_WINDOW: &str = "overlay";

/// Sets up the tray, overlay, hotkey and autostart; returns whether there is a tray (then
/// closing the window hides it rather than quitting).
pub fn install(app: &AppHandle, handle: &AssistantHandle) -> bool {
    let settings = handle.settings();
    if let Err(e) = open_overlay(app, settings.overlay) {
        handle.error(
            ErrorKind::Settings,
            format!("The overlay could not open ({e})."),
        );
    }
    let actions = handle.clone();
    let tray = match Tray::build(app, settings.overlay, move |app, action| {
        on_tray_action(app, &actions, action)
    }) {
        Ok(tray) => Some(Arc::new(tray)),
        Err(message) => {
            tracing::warn!("{message}");
            None
        }
    };
    if let Some(tray) = &tray {
        follow_state(handle, tray.clone());
    }
    follow_settings(app, handle, tray.clone());
    tray.is_some()
}

/// Shows and focuses the main window.
pub fn show_main(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

fn on_tray_action(app: &AppHandle, handle: &AssistantHandle, action: TrayAction) {
    match action {
        TrayAction::Talk => {
            // The tray has no key to hold: it toggles, whatever the mode.
            if let Some(command) =
                hotkey::command_for(ListenMode::Toggle, Key::Down, handle.state())
            {
                handle.send(command);
            }
        }
        TrayAction::Interrupt => handle.send(UiCommand::Interrupt),
        TrayAction::ShowWindow => show_main(app),
        TrayAction::ToggleOverlay => {
            let mut settings = handle.settings();
            settings.overlay = !settings.overlay;
            if let Err(e) = handle.apply(settings) {
                handle.error(ErrorKind::Settings, e);
            }
        }
        TrayAction::Quit => app.exit(0),
    }
}

/// The small always-on-top window with the state, top right of the screen.
fn open_overlay(app: &AppHandle, visible: bool) -> Result<(), tauri::Error> {
    const WIDTH: f64 = 210.0;
    const HEIGHT: f64 = 56.0;
    let window =
        WebviewWindowBuilder::new(app, OVERLAY_WINDOW, WebviewUrl::App("overlay.html".into()))
            .title("Sotto overlay")
            .inner_size(WIDTH, HEIGHT)
            .resizable(false)
            .decorations(false)
            .always_on_top(true)
            .skip_taskbar(true)
            .focused(false)
            .visible(false)
            .build()?;
    if let Ok(Some(monitor)) = window.primary_monitor() {
        let scale = monitor.scale_factor();
        let width = monitor.size().width as f64 / scale;
        let _ = window.set_position(tauri::LogicalPosition::new(width - WIDTH - 24.0, 24.0));
    }
    if visible {
        window.show()?;
    }
    Ok(())
}

/// Keeps the tray's icon and menu on the assistant's state (or its start-up status).
fn follow_state(handle: &AssistantHandle, tray: Arc<Tray>) {
    let mut state = handle.watch_state();
    let mut status = handle.watch_status();
    tauri::async_runtime::spawn(async move {
        loop {
            match &*status.borrow_and_update() {
                AppStatus::Ready { .. } => tray.show_state(*state.borrow_and_update()),
                AppStatus::Starting { .. } => tray.show_status("starting"),
                AppStatus::SetupNeeded { .. } => tray.show_status("needs its models"),
                AppStatus::Downloading => tray.show_status("downloading its models"),
                AppStatus::Failed { .. } => tray.show_status("could not start (open Sotto)"),
            }
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return },
                changed = status.changed() => if changed.is_err() { return },
            }
        }
    });
}

/// Applies the shell's settings now and after every save: hotkey, overlay, autostart.
fn follow_settings(app: &AppHandle, handle: &AssistantHandle, tray: Option<Arc<Tray>>) {
    let app = app.clone();
    let handle = handle.clone();
    let mut settings = handle.watch_settings();
    tauri::async_runtime::spawn(async move {
        let mut applied: Option<Settings> = None;
        loop {
            let now = settings.borrow_and_update().clone();
            apply_shell_settings(&app, &handle, applied.as_ref(), &now, tray.as_deref());
            applied = Some(now);
            if settings.changed().await.is_err() {
                return;
            }
        }
    });
}

fn apply_shell_settings(
    app: &AppHandle,
    handle: &AssistantHandle,
    before: Option<&Settings>,
    now: &Settings,
    tray: Option<&Tray>,
) {
    if before.is_none_or(|b| b.hotkey != now.hotkey || b.mode != now.mode) {
        let mode = now.mode;
        let on_key = handle.clone();
        let registered = hotkey::register(app, &now.hotkey, move |key| {
            if let Some(command) = hotkey::command_for(mode, key, on_key.state()) {
                on_key.send(command);
            }
        });
        if let Err(message) = registered {
            handle.error(ErrorKind::Settings, format!("{message}."));
        }
    }
    if before.is_none_or(|b| b.overlay != now.overlay) {
        if let Some(overlay) = app.get_webview_window(OVERLAY_WINDOW) {
            let _ = if now.overlay {
                overlay.show()
            } else {
                overlay.hide()
            };
        }
        if let Some(tray) = tray {
            tray.show_overlay_checked(now.overlay);
        }
    }
    // The first time only when on: the entry is rewritten so it points at this build.
    let autostart_changed = before.map_or(now.start_on_login, |b| {
        b.start_on_login != now.start_on_login
    });
    if autostart_changed {
        let result = match (autostart::default_dir(), std::env::current_exe()) {
            (Some(dir), Ok(exe)) => autostart::apply(now.start_on_login, &dir, &exe),
            _ => Err("Start on login is not available: no configuration folder".into()),
        };
        if let Err(message) = result {
            handle.error(ErrorKind::Settings, format!("{message}."));
        }
    }
}
