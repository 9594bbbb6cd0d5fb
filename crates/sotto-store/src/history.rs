//! Conversations and their turns.
//!
//! Two sled trees: `conversations` (id -> title and start time) and `turns`
//! (conversation id ++ turn number -> the caller's JSON record). Ids are big-endian, so
//! sled's key order is the order of time.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::StoreError;
use crate::recover::{self, Checked, MovedAside};

pub(crate) const CONVERSATIONS: &str = "conversations";
pub(crate) const TURNS: &str = "turns";

/// A conversation as the history list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Conversation {
    /// Its id (increasing with time).
    #[ts(type = "number")]
    pub id: u64,
    /// When it started, in milliseconds since the Unix epoch.
    #[ts(type = "number")]
    pub started_unix_ms: u64,
    /// Its title: the first thing the user said.
    pub title: String,
    /// How many turns it holds.
    #[ts(type = "number")]
    pub turns: u64,
}

/// What is stored under a conversation's id (the turn count is counted, not stored, so a
/// crash between two writes can never make it wrong).
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredConversation {
    pub(crate) started_unix_ms: u64,
    pub(crate) title: String,
}

/// The history database.
pub struct Store {
    db: sled::Db,
    conversations: sled::Tree,
    turns: sled::Tree,
    path: PathBuf,
}

/// An opened store, and what had to be done to open it.
pub struct Opened {
    /// The store, ready.
    pub store: Store,
    /// Set when the database was damaged: where the damaged copy was moved and what was
    /// carried over. The app shows [`MovedAside`]'s message to the user.
    pub moved_aside: Option<MovedAside>,
}

impl Store {
    /// Where history lives: `$SOTTO_DATA_DIR/history`, else `<data dir>/sotto/history`
    /// (`~/.local/share/sotto/history` on Linux).
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var_os("SOTTO_DATA_DIR") {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("history")),
            _ => dirs::data_dir().map(|d| d.join("sotto").join("history")),
        }
    }

    /// Opens (or creates) the history at `path`. A damaged database is moved aside to a
    /// sibling folder named `history.damaged-<time>` and a fresh one takes its place with
    /// every record that could still be read; [`Opened::moved_aside`] reports it.
    pub fn open(path: &Path) -> Result<Opened, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        match recover::open_checked(path)? {
            Checked::Healthy(db) => Ok(Opened {
                store: Store::from_db(db, path)?,
                moved_aside: None,
            }),
            Checked::Damaged { salvage, reason } => {
                let to = recover::move_aside(path)?;
                let db = recover::open_plain(path)?;
                let store = Store::from_db(db, path)?;
                let kept = salvage.records.len();
                for (tree, key, value) in salvage.records {
                    let tree = if tree == CONVERSATIONS {
                        &store.conversations
                    } else {
                        &store.turns
                    };
                    tree.insert(key, value)?;
                }
                store.db.flush()?;
                let moved = MovedAside {
                    from: path.to_path_buf(),
                    to,
                    reason,
                    kept,
                    lost: salvage.unreadable,
                };
                tracing::warn!("{moved}");
                Ok(Opened {
                    store,
                    moved_aside: Some(moved),
                })
            }
        }
    }

    fn from_db(db: sled::Db, path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            conversations: db.open_tree(CONVERSATIONS)?,
            turns: db.open_tree(TURNS)?,
            db,
            path: path.to_path_buf(),
        })
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a conversation titled `title`; it is on disk when this returns.
    pub fn new_conversation(&self, title: &str) -> Result<Conversation, StoreError> {
        let id = match self.conversations.last()? {
            Some((key, _)) => id_of(&key).saturating_add(1),
            None => 1,
        };
        let stored = StoredConversation {
            started_unix_ms: crate::unix_ms(),
            title: title.to_string(),
        };
        self.conversations
            .insert(id.to_be_bytes(), encode(&stored)?)?;
        self.db.flush()?;
        Ok(Conversation {
            id,
            started_unix_ms: stored.started_unix_ms,
            title: stored.title,
            turns: 0,
        })
    }

    /// Adds a turn to conversation `conversation` and flushes it to disk before
    /// returning, so a crash a moment later keeps it. Returns the turn's number.
    pub fn append_turn<T: Serialize>(
        &self,
        conversation: u64,
        turn: &T,
    ) -> Result<u64, StoreError> {
        if !self
            .conversations
            .contains_key(conversation.to_be_bytes())?
        {
            return Err(StoreError::Database(format!(
                "there is no conversation {conversation}"
            )));
        }
        let prefix = conversation.to_be_bytes();
        let number = match self.turns.scan_prefix(prefix).next_back() {
            Some(entry) => id_of(&entry?.0[8..]).saturating_add(1),
            None => 1,
        };
        self.turns
            .insert(turn_key(conversation, number), encode(turn)?)?;
        self.db.flush()?;
        Ok(number)
    }

    /// Every conversation, newest first.
    pub fn conversations(&self) -> Result<Vec<Conversation>, StoreError> {
        self.conversations
            .iter()
            .rev()
            .map(|entry| {
                let (key, value) = entry?;
                self.described(id_of(&key), &value)
            })
            .collect()
    }

    /// Conversation `id`, if there is one.
    pub fn conversation(&self, id: u64) -> Result<Option<Conversation>, StoreError> {
        match self.conversations.get(id.to_be_bytes())? {
            Some(value) => self.described(id, &value).map(Some),
            None => Ok(None),
        }
    }

    /// The conversation stored as `value` under `id`, with its turns counted.
    fn described(&self, id: u64, value: &[u8]) -> Result<Conversation, StoreError> {
        let stored: StoredConversation = decode(value)?;
        Ok(Conversation {
            id,
            started_unix_ms: stored.started_unix_ms,
            title: stored.title,
            turns: self.turns.scan_prefix(id.to_be_bytes()).count() as u64,
        })
    }

    /// The turns of `conversation`, oldest first.
    pub fn turns<T: DeserializeOwned>(&self, conversation: u64) -> Result<Vec<T>, StoreError> {
        self.turns
            .scan_prefix(conversation.to_be_bytes())
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    /// Forgets a conversation and its turns.
    pub fn delete_conversation(&self, conversation: u64) -> Result<(), StoreError> {
        for entry in self.turns.scan_prefix(conversation.to_be_bytes()) {
            self.turns.remove(entry?.0)?;
        }
        self.conversations.remove(conversation.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }
}

fn turn_key(conversation: u64, number: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&conversation.to_be_bytes());
    key[8..].copy_from_slice(&number.to_be_bytes());
    key
}

/// The big-endian id in the first 8 bytes of `key` (0 for a short key, which the check at
/// open never lets in).
fn id_of(key: &[u8]) -> u64 {
    key.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Database(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}
