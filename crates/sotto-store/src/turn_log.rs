//! Opt-in turn logs: for each turn, a folder with what the microphone heard
//! (`input.wav`), what the assistant said (`output.wav`) and the turn's record
//! (`turn.json`). Only the newest `keep` turns are kept; older folders are deleted as new
//! ones arrive. Off unless the user turns it on: these are recordings of their voice.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sotto_audio::AudioBuffer;

use crate::error::StoreError;

/// How many turns are kept unless the user says otherwise.
pub const DEFAULT_KEEP: usize = 50;

/// One turn's log.
pub struct TurnLog<'a, T: Serialize> {
    /// What the microphone heard (none for a typed question).
    pub input: Option<&'a AudioBuffer>,
    /// What the assistant said (none when it said nothing).
    pub output: Option<&'a AudioBuffer>,
    /// The turn's record: transcript, answer, timings.
    pub record: &'a T,
}

/// The turn-logs folder.
#[derive(Debug, Clone)]
pub struct TurnLogs {
    dir: PathBuf,
    keep: usize,
}

impl TurnLogs {
    /// Logs in `dir`, keeping the newest `keep` turns (at least one).
    pub fn new(dir: PathBuf, keep: usize) -> TurnLogs {
        TurnLogs {
            dir,
            keep: keep.max(1),
        }
    }

    /// `$SOTTO_DATA_DIR/turn-logs`, else `<data dir>/sotto/turn-logs`.
    pub fn default_dir() -> Option<PathBuf> {
        crate::Store::default_dir().and_then(|h| h.parent().map(|p| p.join("turn-logs")))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes turn `name` (e.g. `c3-t2`) into a new folder `<unix ms>-<name>` and prunes
    /// the oldest beyond the limit. The folder appears whole or not at all.
    pub fn write<T: Serialize>(
        &self,
        name: &str,
        log: &TurnLog<'_, T>,
    ) -> Result<PathBuf, StoreError> {
        let folder = format!("{:013}-{name}", crate::unix_ms());
        let partial = self.dir.join(format!(".partial-{folder}"));
        let done = self.dir.join(&folder);
        let fail = |path: &Path, reason: String| StoreError::TurnLog {
            path: path.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(&partial).map_err(|e| fail(&partial, e.to_string()))?;
        let written = (|| {
            for (file, audio) in [("input.wav", log.input), ("output.wav", log.output)] {
                if let Some(audio) = audio {
                    sotto_audio::wav::write(&partial.join(file), audio)
                        .map_err(|e| fail(&partial.join(file), e.to_string()))?;
                }
            }
            let json = serde_json::to_vec_pretty(log.record)
                .map_err(|e| fail(&partial.join("turn.json"), e.to_string()))?;
            std::fs::write(partial.join("turn.json"), json)
                .map_err(|e| fail(&partial.join("turn.json"), e.to_string()))?;
            std::fs::rename(&partial, &done).map_err(|e| fail(&done, e.to_string()))
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
        self.prune();
        Ok(done)
    }

    /// The kept turn folders, oldest first.
    pub fn list(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut folders: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        folders.sort();
        folders
    }

    /// Deletes the oldest folders beyond the limit. A folder that will not go is left for
    /// next time (the log is best effort; the history itself is in the store).
    fn prune(&self) {
        let folders = self.list();
        let excess = folders.len().saturating_sub(self.keep);
        for old in &folders[..excess] {
            if let Err(e) = std::fs::remove_dir_all(old) {
                tracing::warn!("cannot delete the old turn log {}: {e}", old.display());
            }
        }
    }
}
