//! The tray icon: a dot in the colour of the assistant's state (the same colours as the
//! window's orb), the state in words, and quick actions.
//!
//! On Linux the tray needs libayatana-appindicator3 at run time; the library is looked
//! for first, because the tray crate aborts the process when it is missing.

use sotto_core::AssistantState;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Wry};

/// What the user picked in the tray menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Start listening, or stop if listening.
    Talk,
    /// Stop the answer.
    Interrupt,
    /// Bring the main window forward.
    ShowWindow,
    /// Show or hide the overlay.
    ToggleOverlay,
    /// Quit Sotto.
    Quit,
}

impl TrayAction {
    const ALL: [TrayAction; 5] = [
        TrayAction::Talk,
        TrayAction::Interrupt,
        TrayAction::ShowWindow,
        TrayAction::ToggleOverlay,
        TrayAction::Quit,
    ];

    /// The menu item id.
    fn id(self) -> &'static str {
        match self {
            TrayAction::Talk => "talk",
            TrayAction::Interrupt => "interrupt",
            TrayAction::ShowWindow => "show",
            TrayAction::ToggleOverlay => "overlay",
            TrayAction::Quit => "quit",
        }
    }

    /// The action for a menu item id.
    pub fn from_id(id: &str) -> Option<TrayAction> {
        TrayAction::ALL.into_iter().find(|a| a.id() == id)
    }
}

/// Side of the tray icon, in pixels.
const ICON_SIZE: u32 = 32;

/// RGBA pixels of a filled, anti-aliased disc of `colour` on transparency.
fn disc(colour: [u8; 3], size: u32) -> Vec<u8> {
    let centre = size as f32 / 2.0;
    let radius = centre - 1.5;
    let mut pixels = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let dx = x as f32 + 0.5 - centre;
            let dy = y as f32 + 0.5 - centre;
            let distance = (dx * dx + dy * dy).sqrt();
            // One pixel of soft edge.
            let coverage = (radius + 0.5 - distance).clamp(0.0, 1.0);
            pixels.extend_from_slice(&colour);
            pixels.push((coverage * 255.0).round() as u8);
        }
    }
    pixels
}

/// The tray icon for `state`.
fn icon(state: AssistantState) -> Image<'static> {
    Image::new_owned(disc(state.colour(), ICON_SIZE), ICON_SIZE, ICON_SIZE)
}

/// Whether this desktop can show a tray icon (on Linux: the indicator library is there).
pub fn available() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        const LIBRARIES: [&str; 2] = ["libayatana-appindicator3.so.1", "libappindicator3.so.1"];
        // Loading it is the only reliable test; it is unloaded again right away.
        // SAFETY: these libraries run no code on load beyond GLib type registration.
        let found = LIBRARIES
            .iter()
            .any(|name| unsafe { libloading::Library::new(name) }.is_ok());
        if !found {
            return Err("No tray icon: the indicator library is missing. Install libayatana-appindicator3-1 to get one; everything else works without it".into());
        }
    }
    Ok(())
}

/// The tray icon and the menu items that change with the state.
pub struct Tray {
    icon: TrayIcon,
    status: MenuItem<Wry>,
    overlay: CheckMenuItem<Wry>,
}

impl Tray {
    /// Builds the tray; `on_action` gets every menu pick.
    pub fn build(
        app: &AppHandle,
        overlay_shown: bool,
        on_action: impl Fn(&AppHandle, TrayAction) + Send + Sync + 'static,
    ) -> Result<Tray, String> {
        available()?;
        let fail = |e: tauri::Error| format!("No tray icon: {e}");
        let status = MenuItem::with_id(app, "status", "Sotto: starting", false, None::<&str>)
            .map_err(fail)?;
        let item = |action: TrayAction, text: &str| {
            MenuItem::with_id(app, action.id(), text, true, None::<&str>)
        };
        let talk = item(TrayAction::Talk, "Talk / stop listening").map_err(fail)?;
        let interrupt = item(TrayAction::Interrupt, "Interrupt").map_err(fail)?;
        let show = item(TrayAction::ShowWindow, "Show Sotto").map_err(fail)?;
        let overlay = CheckMenuItem::with_id(
            app,
            TrayAction::ToggleOverlay.id(),
            "Overlay",
            true,
            overlay_shown,
            None::<&str>,
        )
        .map_err(fail)?;
        let quit = item(TrayAction::Quit, "Quit Sotto").map_err(fail)?;
        let separator = || PredefinedMenuItem::separator(app);
        let menu = Menu::with_items(
            app,
            &[
                &status,
                &separator().map_err(fail)?,
                &talk,
                &interrupt,
                &separator().map_err(fail)?,
                &show,
                &overlay,
                &quit,
            ],
        )
        .map_err(fail)?;
        let icon = TrayIconBuilder::with_id("sotto")
            .icon(icon(AssistantState::Idle))
            .tooltip("Sotto")
            .menu(&menu)
            .on_menu_event(move |app, event| {
                if let Some(action) = TrayAction::from_id(event.id().as_ref()) {
                    on_action(app, action);
                }
            })
            .build(app)
            .map_err(fail)?;
        Ok(Tray {
            icon,
            status,
            overlay,
        })
    }

    /// Shows `state` in the icon, tooltip and menu.
    pub fn show_state(&self, state: AssistantState) {
        let words = state.label();
        let _ = self.icon.set_icon(Some(icon(state)));
        let _ = self.icon.set_tooltip(Some(format!("Sotto: {words}")));
        let _ = self.status.set_text(format!("Sotto: {words}"));
    }

    /// Shows a status that is not an assistant state ("starting", "needs setup").
    pub fn show_status(&self, text: &str) {
        let _ = self.icon.set_tooltip(Some(format!("Sotto: {text}")));
        let _ = self.status.set_text(format!("Sotto: {text}"));
    }

    /// Ticks or unticks the overlay item.
    pub fn show_overlay_checked(&self, shown: bool) {
        let _ = self.overlay.set_checked(shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_is_an_opaque_disc_on_transparency() {
        let size = ICON_SIZE as usize;
        let pixels = disc([10, 20, 30], ICON_SIZE);
        assert_eq!(pixels.len(), size * size * 4);
        let at = |x: usize, y: usize| &pixels[(y * size + x) * 4..(y * size + x) * 4 + 4];
        assert_eq!(at(size / 2, size / 2), &[10, 20, 30, 255]);
        assert_eq!(at(0, 0)[3], 0, "corners are transparent");
        let edge = at(size / 2, 1)[3];
        assert!(edge > 0 && edge < 255, "the edge is soft: {edge}");
    }

    #[test]
    fn every_menu_action_round_trips_through_its_id() {
        for action in TrayAction::ALL {
            assert_eq!(TrayAction::from_id(action.id()), Some(action));
        }
        assert_eq!(TrayAction::from_id("status"), None);
    }
}
