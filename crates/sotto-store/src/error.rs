//! What can go wrong with history, in words a person can act on.

use std::path::PathBuf;

/// A history failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (a second Sotto) has the database open.
    #[error("the history at {path} is in use by another Sotto; close it and try again")]
    InUse {
        /// The database folder.
        path: PathBuf,
    },
    /// The database could not be opened for a reason other than damage (permissions, a
    /// full disk): nothing was moved.
    #[error("cannot open the history at {path}: {reason}")]
    Open {
        /// The database folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The damaged database could not be moved aside, so it was left where it is.
    #[error("the history at {path} is damaged and could not be moved aside ({reason}); move or delete that folder yourself, then start Sotto again")]
    MoveAside {
        /// The database folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Reading or writing failed while running.
    #[error("cannot save or read history: {0}")]
    Database(String),
    /// A stored turn does not have the shape the caller expects (an older or newer Sotto
    /// wrote it).
    #[error("a stored turn cannot be read by this version of Sotto: {0}")]
    Decode(String),
    /// A turn log could not be written.
    #[error("cannot write the turn log {path}: {reason}")]
    TurnLog {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}
