//! Opening with a check: a database that sled cannot open, that panics sled, or that holds
//! records that do not read back is damaged. Its folder is moved aside (never deleted) and
//! what could still be read is carried over.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::history::{StoredConversation, CONVERSATIONS, TURNS};

/// A damaged history that was moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedAside {
    /// Where the history was (and a fresh one now is).
    pub from: PathBuf,
    /// Where the damaged copy now is.
    pub to: PathBuf,
    /// What was wrong.
    pub reason: String,
    /// Records carried over to the fresh history.
    pub kept: usize,
    /// Records that could not be read (at least this many).
    pub lost: usize,
}

impl fmt::Display for MovedAside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Your conversation history was damaged ({}). Sotto moved it to {} and started a \
             fresh one with the {} records it could still read",
            self.reason,
            self.to.display(),
            self.kept
        )?;
        if self.lost > 0 {
            write!(f, "; {} could not be read", self.lost)?;
        }
        write!(f, ". Nothing was deleted.")
    }
}

/// Records that read back, by tree; and how many did not.
pub(crate) struct Salvage {
    pub(crate) records: Vec<(&'static str, sled::IVec, sled::IVec)>,
    pub(crate) unreadable: usize,
}

pub(crate) enum Checked {
    Healthy(sled::Db),
    Damaged { salvage: Salvage, reason: String },
}

/// sled's page cache: the recent conversations the window shows are a few kilobytes each
/// (their recordings are read one at a time, when played), so 4 MiB holds hundreds of
/// turns. It was 16 MiB, which the soak saw filling for hundreds of turns as memory growth.
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// How long a lock on the database is waited for before it counts as another Sotto's.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens sled at `path`, catching its panics. A lock held by this process's own previous
/// handle is waited for (sled's flusher thread lets go a moment after the last handle is
/// dropped), up to [`LOCK_WAIT`].
fn open_sled(path: &Path) -> std::thread::Result<sled::Result<sled::Db>> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        // sled keeps up to 1 GiB of pages cached by default; history needs little.
        let result = catch_unwind(|| {
            sled::Config::new()
                .path(path)
                .cache_capacity(CACHE_BYTES)
                .open()
        });
        let locked = matches!(&result, Ok(Err(e)) if is_lock_error(e));
        if !locked || std::time::Instant::now() >= deadline {
            return result;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Opens `path` as sled would, with no check.
pub(crate) fn open_plain(path: &Path) -> Result<sled::Db, StoreError> {
    match open_sled(path) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_error(path, &e)),
        Err(_) => Err(StoreError::Open {
            path: path.to_path_buf(),
            reason: "the database engine failed while opening it".into(),
        }),
    }
}

/// Opens `path` and reads every record back.
pub(crate) fn open_checked(path: &Path) -> Result<Checked, StoreError> {
    let db = match open_sled(path) {
        Ok(Ok(db)) => db,
        Ok(Err(e)) if is_damage(&e) => {
            return Ok(Checked::Damaged {
                salvage: Salvage {
                    records: Vec::new(),
                    unreadable: 1,
                },
                reason: e.to_string(),
            })
        }
        Ok(Err(e)) => return Err(open_error(path, &e)),
        Err(_) => {
            return Ok(Checked::Damaged {
                salvage: Salvage {
                    records: Vec::new(),
                    unreadable: 1,
                },
                reason: "the database engine could not read it".into(),
            })
        }
    };
    // Checked without keeping anything (a healthy history of months is not held in
    // memory at every start); read again, keeping what is readable, only when damaged.
    match catch_unwind(AssertUnwindSafe(|| scan(&db, false))) {
        Ok(Ok(checked)) if checked.unreadable == 0 => Ok(Checked::Healthy(db)),
        Ok(Ok(checked)) => {
            let salvage = match catch_unwind(AssertUnwindSafe(|| scan(&db, true))) {
                Ok(Ok(salvage)) => salvage,
                _ => checked,
            };
            Ok(Checked::Damaged {
                reason: format!("{} records could not be read", salvage.unreadable),
                salvage,
            })
        }
        Ok(Err(reason)) => Ok(Checked::Damaged {
            salvage: Salvage {
                records: Vec::new(),
                unreadable: 1,
            },
            reason,
        }),
        Err(_) => Ok(Checked::Damaged {
            salvage: Salvage {
                records: Vec::new(),
                unreadable: 1,
            },
            reason: "the database engine failed while reading it".into(),
        }),
    }
}

/// Reads every record; a record with a wrong key or a value that is not what we wrote
/// counts as unreadable. Stops a tree at the first read error (sled cannot go past it).
/// The readable records are kept only when `keep` is set.
fn scan(db: &sled::Db, keep: bool) -> Result<Salvage, String> {
    let mut salvage = Salvage {
        records: Vec::new(),
        unreadable: 0,
    };
    for name in [CONVERSATIONS, TURNS] {
        let tree = db.open_tree(name).map_err(|e| e.to_string())?;
        let key_len = if name == CONVERSATIONS { 8 } else { 16 };
        for entry in tree.iter() {
            let Ok((key, value)) = entry else {
                salvage.unreadable += 1;
                break;
            };
            let readable = key.len() == key_len
                && if name == CONVERSATIONS {
                    serde_json::from_slice::<StoredConversation>(&value).is_ok()
                } else {
                    serde_json::from_slice::<serde_json::Value>(&value).is_ok()
                };
            if readable {
                if keep {
                    salvage.records.push((name, key, value));
                }
            } else {
                salvage.unreadable += 1;
            }
        }
    }
    Ok(salvage)
}

/// Moves `path` to a sibling `<name>.damaged-<unix ms>`; returns the new place.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let name = path
        .file_name()
        .map_or_else(|| "history".into(), |n| n.to_string_lossy().into_owned());
    let to = path.with_file_name(format!("{name}.damaged-{}", crate::unix_ms()));
    std::fs::rename(path, &to).map_err(|e| StoreError::MoveAside {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(to)
}

/// Damage, as opposed to a database that is busy or not allowed to be opened.
fn is_damage(e: &sled::Error) -> bool {
    match e {
        sled::Error::Corruption { .. }
        | sled::Error::Unsupported(_)
        | sled::Error::ReportableBug(_) => true,
        sled::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
        ),
        _ => false,
    }
}

fn open_error(path: &Path, e: &sled::Error) -> StoreError {
    match e {
        e if is_lock_error(e) => StoreError::InUse {
            path: path.to_path_buf(),
        },
        _ => StoreError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_history_is_checked_without_being_held_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path().join("db")).expect("sled");
        let turns = db.open_tree(TURNS).expect("tree");
        for i in 0u64..500 {
            let mut key = i.to_be_bytes().to_vec();
            key.extend_from_slice(&i.to_be_bytes());
            turns
                .insert(key, serde_json::json!({"turn": i}).to_string().as_bytes())
                .expect("insert");
        }
        turns.insert(b"short", b"{}".as_slice()).expect("insert");
        let counted = scan(&db, false).expect("scan");
        assert_eq!(counted.unreadable, 1);
        assert!(counted.records.is_empty(), "nothing kept while checking");
        let salvage = scan(&db, true).expect("scan");
        assert_eq!(salvage.unreadable, 1);
        assert_eq!(salvage.records.len(), 500);
    }
}
