//! The global hotkey: what a press or a release means in each talk mode, and the
//! registration with the desktop (X11, Windows, macOS; Wayland compositors do not let
//! applications grab keys, which the user is told).

use sotto_audio::ListenMode;
use sotto_core::AssistantState;
use tauri::AppHandle;
use tauri_plugin_global_shortcut::{GlobalShortcutExt, Shortcut, ShortcutState};

use crate::protocol::UiCommand;

/// Whether the key went down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The hotkey went down.
    Down,
    /// The hotkey came up.
    Up,
}

/// The command a hotkey press or release stands for, given the mode and what the
/// assistant is doing (`None`: nothing to do).
pub fn command_for(mode: ListenMode, key: Key, state: AssistantState) -> Option<UiCommand> {
    let answering = state.is_answering();
    match (mode, key) {
        // Hold to talk; pressing during an answer interrupts it and listens (barge-in).
        (ListenMode::PushToTalk, Key::Down) => Some(UiCommand::StartListening),
        (ListenMode::PushToTalk, Key::Up) => Some(UiCommand::StopListening),
        // Press to start, press again to stop: for desktops that never report the release.
        (ListenMode::Toggle, Key::Down) if state == AssistantState::Listening => {
            Some(UiCommand::StopListening)
        }
        (ListenMode::Toggle, Key::Down) => Some(UiCommand::StartListening),
        // Hands-free listens on its own; the key only cuts an answer short.
        (ListenMode::HandsFree, Key::Down) if answering => Some(UiCommand::Interrupt),
        (ListenMode::Toggle | ListenMode::HandsFree, _) => None,
    }
}

/// Registers `hotkey` (e.g. "Ctrl+Alt+Space"), replacing any earlier one; `on_key` gets
/// every press and release. Errors are worded for the settings screen.
pub fn register(
    app: &AppHandle,
    hotkey: &str,
    on_key: impl Fn(Key) + Send + Sync + 'static,
) -> Result<(), String> {
    let shortcuts = app.global_shortcut();
    let _ = shortcuts.unregister_all();
    let shortcut: Shortcut = hotkey.parse().map_err(|e| {
        format!("The hotkey \"{hotkey}\" is not a key combination Sotto understands ({e}). Choose another in Settings, e.g. Ctrl+Alt+Space")
    })?;
    shortcuts
        .on_shortcut(shortcut, move |_, _, event| {
            on_key(match event.state() {
                ShortcutState::Pressed => Key::Down,
                ShortcutState::Released => Key::Up,
            })
        })
        .map_err(|e| {
            let wayland = std::env::var_os("WAYLAND_DISPLAY").is_some()
                && std::env::var_os("DISPLAY").is_none();
            if wayland {
                format!("The hotkey \"{hotkey}\" could not be registered: Wayland does not let applications listen for keys ({e}). Use the Talk button, the tray menu, or hands-free mode")
            } else {
                format!("The hotkey \"{hotkey}\" could not be registered ({e}); another program may be using it. Choose another in Settings; the Talk button still works")
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AssistantState::*;

    #[test]
    fn push_to_talk_listens_while_the_key_is_held() {
        let ptt = ListenMode::PushToTalk;
        assert_eq!(
            command_for(ptt, Key::Down, Idle),
            Some(UiCommand::StartListening)
        );
        assert_eq!(
            command_for(ptt, Key::Up, Listening),
            Some(UiCommand::StopListening)
        );
        // Pressing during an answer interrupts it by listening again.
        assert_eq!(
            command_for(ptt, Key::Down, Speaking),
            Some(UiCommand::StartListening)
        );
    }

    #[test]
    fn toggle_starts_and_stops_on_presses_and_ignores_releases() {
        let toggle = ListenMode::Toggle;
        assert_eq!(
            command_for(toggle, Key::Down, Idle),
            Some(UiCommand::StartListening)
        );
        assert_eq!(command_for(toggle, Key::Up, Listening), None);
        assert_eq!(
            command_for(toggle, Key::Down, Listening),
            Some(UiCommand::StopListening)
        );
        assert_eq!(
            command_for(toggle, Key::Down, Speaking),
            Some(UiCommand::StartListening)
        );
    }

    #[test]
    fn hands_free_uses_the_key_only_to_interrupt() {
        let free = ListenMode::HandsFree;
        assert_eq!(command_for(free, Key::Down, Idle), None);
        assert_eq!(command_for(free, Key::Down, Listening), None);
        assert_eq!(
            command_for(free, Key::Down, Speaking),
            Some(UiCommand::Interrupt)
        );
        assert_eq!(command_for(free, Key::Up, Speaking), None);
    }
}
