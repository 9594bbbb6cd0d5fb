//! Start on login (opt-in): an XDG autostart entry on Linux desktops. The entry starts
//! Sotto with its window hidden (`--minimized`): it waits in the tray for the hotkey.

use std::path::{Path, PathBuf};

/// The flag the autostart entry passes: start without showing the main window.
pub const MINIMIZED_FLAG: &str = "--minimized";

/// The autostart folder (`$XDG_CONFIG_HOME/autostart`, usually `~/.config/autostart`).
pub fn default_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("autostart"))
}

/// The desktop entry that starts `exe` on login.
fn entry(exe: &Path) -> String {
    // The Exec key needs quoting when the path has spaces; quotes and backslashes escaped.
    let path = exe.display().to_string();
    let exec = if path.contains(' ') {
        format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        path
    };
    format!(
        "[Desktop Entry]\nType=Application\nName=Sotto\nComment=Voice assistant, waiting for the hotkey\nExec={exec} {MINIMIZED_FLAG}\nIcon=sotto-app\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
    )
}

/// Turns start-on-login on (writes the entry for `exe` into `dir`) or off (removes it).
pub fn apply(enabled: bool, dir: &Path, exe: &Path) -> Result<(), String> {
    let file = dir.join("sotto.desktop");
    if enabled {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&file, entry(exe)))
            .map_err(|e| format!("Could not turn on start on login ({}: {e})", file.display()))
    } else {
        match std::fs::remove_file(&file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!(
                "Could not turn off start on login ({}: {e})",
                file.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turning_it_on_writes_an_entry_that_starts_minimized_and_off_removes_it() {
        let dir = std::env::temp_dir().join(format!("sotto-autostart-{}", std::process::id()));
        let exe = Path::new("/opt/Sotto App/sotto-app");
        apply(true, &dir, exe).unwrap();
        let text = std::fs::read_to_string(dir.join("sotto.desktop")).unwrap();
        assert!(text.starts_with("[Desktop Entry]\n"));
        assert!(text.contains("\nExec=\"/opt/Sotto App/sotto-app\" --minimized\n"));
        apply(false, &dir, exe).unwrap();
        assert!(!dir.join("sotto.desktop").exists());
        // Turning off what is already off is fine.
        apply(false, &dir, exe).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
