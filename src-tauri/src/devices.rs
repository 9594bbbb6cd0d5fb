//! Where the app's voice comes from and where its answers go: the microphone (kept open
//! and reopened when lost), or the test input's recordings; the speakers, or a WAV file
//! when there are none; and the test-only events file.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;

use sotto_audio::capture::Microphone;
use sotto_audio::{CaptureEvent, Pace, PlaybackError, Player, SpokenClips};
use sotto_core::{ErrorKind, Event};

use crate::assistant::{sentence, Reporter};

/// Test-only: a WAV file spoken into a virtual microphone each time listening starts,
/// instead of the real microphone (the end-to-end test has no microphone); or a folder
/// of them, spoken one after the other in the order of their names, one per start (the
/// app bench).
pub const TEST_INPUT_VAR: &str = "SOTTO_TEST_INPUT";

/// Test-only: every event of the assistant is also appended to this file, one JSON
/// object per line with the wall-clock time it left (`{"unix_ms": .., "event": ..}`), so
/// the app bench reads each turn's own timings without touching the window.
pub const EVENTS_FILE_VAR: &str = "SOTTO_EVENTS_FILE";

/// Where the voice comes from. Held for as long as the assistant runs: dropping it
/// stops the capture.
pub(crate) enum Input {
    /// The microphone, opened again whenever it is lost (or missing at start).
    Microphone { _microphone: Microphone },
    /// The test input: the next clip is spoken into the virtual microphone at each start
    /// (after the last, the first again).
    Virtual(SpokenClips),
}

/// The input, its events, and its name for the window.
pub(crate) type OpenedInput = (Input, std_mpsc::Receiver<CaptureEvent>, String);

pub(crate) fn open_input(reporter: &Reporter, device: Option<&str>) -> Result<OpenedInput, String> {
    if let Some(path) = std::env::var_os(TEST_INPUT_VAR) {
        let (events_tx, events) = std_mpsc::sync_channel(256);
        let clips =
            SpokenClips::open(std::path::Path::new(&path), events_tx).map_err(|e| e.to_string())?;
        let name = clips.name().to_string();
        return Ok((Input::Virtual(clips), events, name));
    }
    // The microphone is kept open: one lost or missing is tried again until it works.
    let (microphone, opened, events) = Microphone::start(device.map(str::to_owned))
        .map_err(|e| format!("cannot start listening: {e}"))?;
    let name = match opened {
        Ok(name) => name,
        Err(e) => {
            reporter.error(
                ErrorKind::Microphone,
                format!(
                    "{}. Plug one in or choose another microphone; until then you can type your questions.",
                    sentence(&e.to_string())
                ),
            );
            "none".into()
        }
    };
    Ok((
        Input::Microphone {
            _microphone: microphone,
        },
        events,
        name,
    ))
}

/// The speakers; with none, answers go to a WAV file at real-time pace (so timings and
/// interruptions behave the same) and the window says so.
pub(crate) fn open_player(reporter: &Reporter, device: Option<&str>) -> Result<Player, String> {
    match Player::speaker(device) {
        Ok(player) => Ok(player),
        Err(e) => {
            let path =
                std::env::temp_dir().join(format!("sotto-answers-{}.wav", std::process::id()));
            reporter.error(ErrorKind::Speaker, no_speaker_message(&e, &path));
            Player::wav(&path, 24_000, Pace::RealTime).map_err(|e| e.to_string())
        }
    }
}

/// What the window says when answers cannot be played: the audio library's message (what
/// is wrong and what to do), then where the answers go instead.
fn no_speaker_message(error: &PlaybackError, wav: &std::path::Path) -> String {
    format!(
        "{}. Connect one or choose another output. Answers are shown on screen and written to {}.",
        sentence(&error.to_string()),
        wav.display()
    )
}

/// The file [`EVENTS_FILE_VAR`] names, opened for appending.
pub(crate) fn events_file() -> Option<std::fs::File> {
    let path = std::env::var_os(EVENTS_FILE_VAR)?;
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!(
                "cannot write events to {}: {e}",
                PathBuf::from(path).display()
            );
            None
        }
    }
}

/// Appends `event` to `file` as one line, stamped with the wall clock.
pub(crate) fn log_event(file: &mut std::fs::File, event: &Event) {
    use std::io::Write;
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = serde_json::json!({ "unix_ms": unix_ms, "event": event });
    if let Err(e) = writeln!(file, "{line}") {
        tracing::warn!("cannot write an event: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_speaker_is_said_once_with_where_the_answers_go() {
        let wav = std::path::Path::new("/tmp/answers.wav");
        let none = no_speaker_message(&PlaybackError::NoDevice { name: None }, wav);
        assert_eq!(
            none,
            "No speaker or headphones found. Connect one or choose another output. \
             Answers are shown on screen and written to /tmp/answers.wav."
        );
        let named = PlaybackError::NoDevice {
            name: Some("USB headset".into()),
        };
        let named = no_speaker_message(&named, wav);
        assert!(named.starts_with("No speaker or headphones found named \"USB headset\". "));
        // The advice once, and no command-line advice in the window.
        assert_eq!(named.matches("choose another output").count(), 1, "{named}");
        assert!(!named.contains("headless"), "{named}");
        let busy = PlaybackError::Open {
            name: "hw:0".into(),
            reason: "device busy".into(),
        };
        assert!(no_speaker_message(&busy, wav)
            .starts_with("The output device \"hw:0\" could not be opened: device busy. "));
    }
}
