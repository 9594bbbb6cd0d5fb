//! The one error type of this crate. Every message is written for the person at the
//! keyboard: what went wrong, and the command or step that fixes it.

use std::path::PathBuf;

/// What can go wrong while listing, fetching, verifying or converting models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The id names no model in the manifest.
    #[error("unknown model id `{id}`; known models: {known}")]
    UnknownModel {
        /// The id that was asked for.
        id: String,
        /// The ids the manifest knows, comma separated.
        known: String,
    },

    /// The manifest file does not parse or breaks one of its rules.
    #[error("the model manifest is invalid: {0}")]
    Manifest(String),

    /// Every source of a file failed; the message lists each attempt and says how to
    /// place the file by hand.
    #[error(
        "could not fetch `{file}` of model `{model}` from any source:\n{attempts}\n\
         To install it by hand, download it from one of the URLs above, place it at\n  {target}\n\
         (sha256 {sha256}) and run `sotto models verify {model}`."
    )]
    NoSource {
        /// The model id.
        model: String,
        /// The file name inside the model.
        file: String,
        /// One line per source tried: its label, URL and why it failed.
        attempts: String,
        /// Where the file belongs.
        target: PathBuf,
        /// The checksum the file must have (or "computed at conversion").
        sha256: String,
    },

    /// The disk holding the models has too little space.
    #[error(
        "not enough disk space in {dir}: {needed} needed, {available} free. \
         Free some space, or set SOTTO_MODELS_DIR to a folder on a larger disk."
    )]
    DiskFull {
        /// The folder being written.
        dir: PathBuf,
        /// Human-readable size needed.
        needed: String,
        /// Human-readable size available.
        available: String,
    },

    /// A model file is present but is not what it must be.
    #[error(
        "model file {path} is damaged: {reason}. Run `sotto models fetch {model}` to repair it."
    )]
    Corrupt {
        /// The model id.
        model: String,
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A model file is not on disk.
    #[error(
        "model `{model}` is not installed ({path} is missing). Run `sotto models fetch {model}`."
    )]
    Missing {
        /// The model id.
        model: String,
        /// The file that is missing.
        path: PathBuf,
    },

    /// A model file could not be converted.
    #[error("cannot convert {path} to {into}: {reason}")]
    Convert {
        /// The input being converted.
        path: PathBuf,
        /// What it was being converted to.
        into: &'static str,
        /// Why it failed.
        reason: String,
    },

    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ModelError {
    /// Wraps an I/O error with what was being done. A full disk becomes [`ModelError::DiskFull`],
    /// so the user hears the one thing that helps.
    pub fn io(context: impl Into<String>, path: &std::path::Path, source: std::io::Error) -> Self {
        if is_disk_full(&source) {
            return ModelError::DiskFull {
                dir: path.parent().unwrap_or(path).to_path_buf(),
                needed: "more space".into(),
                available: crate::space::available_text(path),
            };
        }
        ModelError::Io {
            context: format!("{} {}", context.into(), path.display()),
            source,
        }
    }
}

/// True when an I/O error means "no space left on device" (or a quota was hit).
pub fn is_disk_full(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
