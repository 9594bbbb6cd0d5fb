//! Where models live on disk, and whether each one is intact.
//!
//! A model is the folder `<root>/<id>/`. Next to its files, `.sotto-verified.json` records
//! each file's size, modification time and sha256 as last verified; a file whose size and
//! time still match is trusted without re-reading it, so starting the app stays fast. Any
//! change (a truncated copy, a half-written file, bytes flipped by a tool) changes the
//! time or size and forces a full re-hash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::format;
use crate::hash::sha256_file;
use crate::manifest::{FileSpec, Manifest, ModelSpec};

const STAMP_FILE: &str = ".sotto-verified.json";

/// The state of one model file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Present and verified.
    Ready,
    /// Not on disk.
    Missing,
    /// Present but wrong; the reason says how.
    Damaged(String),
}

impl FileState {
    /// What is wrong with file `name`, in words; `None` when it is ready.
    pub fn problem(&self, name: &str) -> Option<String> {
        match self {
            FileState::Ready => None,
            FileState::Missing => Some(format!("{name} is missing")),
            FileState::Damaged(why) => Some(format!("{name} is damaged ({why})")),
        }
    }
}

/// What is wrong with a model's files, one phrase per file; empty when all are ready.
pub fn problems(states: &[(String, FileState)]) -> Vec<String> {
    states
        .iter()
        .filter_map(|(name, s)| s.problem(name))
        .collect()
}

/// The models folder together with the manifest that describes it.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
    manifest: Manifest,
}

/// An installed model's verified file paths, handed to the engines.
#[derive(Debug, Clone)]
pub struct InstalledModel {
    /// The model id.
    pub id: String,
    /// The model folder.
    pub dir: PathBuf,
    /// The path of each file, in manifest order.
    pub files: Vec<PathBuf>,
}

impl InstalledModel {
    /// The first file, which for single-file models is the model.
    pub fn main_file(&self) -> &Path {
        &self.files[0]
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stamp {
    files: BTreeMap<String, StampEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StampEntry {
    size: u64,
    modified_ns: u64,
    sha256: String,
}

impl ModelStore {
    /// A store at `root` described by `manifest`.
    pub fn new(root: impl Into<PathBuf>, manifest: Manifest) -> ModelStore {
        ModelStore {
            root: root.into(),
            manifest,
        }
    }

    /// The store users get: the built-in manifest, at [`ModelStore::default_root`].
    pub fn open_default() -> Result<ModelStore, ModelError> {
        Ok(ModelStore::new(Self::default_root()?, Manifest::builtin()?))
    }

    /// `$SOTTO_MODELS_DIR`, else the platform data folder (`~/.local/share/sotto/models`
    /// on Linux).
    pub fn default_root() -> Result<PathBuf, ModelError> {
        if let Some(dir) = std::env::var_os("SOTTO_MODELS_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        dirs::data_dir()
            .map(|d| d.join("sotto").join("models"))
            .ok_or_else(|| {
                ModelError::Manifest(
                    "no data folder is known for this user; set SOTTO_MODELS_DIR".into(),
                )
            })
    }

    /// The models folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The folder of model `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Where downloads are kept until their model is complete.
    pub(crate) fn downloads_dir(&self) -> PathBuf {
        self.root.join(".downloads")
    }

    /// Quick state of each file (trusts the verification record when size and time match).
    pub fn check(&self, id: &str) -> Result<Vec<(String, FileState)>, ModelError> {
        self.states(id, false)
    }

    /// Whether every file of model `id` is present and whole, by [`ModelStore::check`]
    /// (an unknown id, or one that cannot be checked, is not installed).
    pub fn is_installed(&self, id: &str) -> bool {
        self.check(id)
            .is_ok_and(|files| problems(&files).is_empty())
    }

    /// Full state of each file: every file is re-hashed. Updates the verification record.
    pub fn verify(&self, id: &str) -> Result<Vec<(String, FileState)>, ModelError> {
        self.states(id, true)
    }

    /// The model's verified files, or a clear error saying what is missing or damaged and
    /// how to repair it. This is what engines call before loading anything.
    pub fn require(&self, id: &str) -> Result<InstalledModel, ModelError> {
        let model = self.manifest.get(id)?;
        let dir = self.dir(id);
        for (name, state) in self.check(id)? {
            let path = dir.join(&name);
            match state {
                FileState::Ready => {}
                FileState::Missing => {
                    return Err(ModelError::Missing {
                        model: id.into(),
                        path,
                    })
                }
                FileState::Damaged(reason) => {
                    return Err(ModelError::Corrupt {
                        model: id.into(),
                        path,
                        reason,
                    })
                }
            }
        }
        Ok(InstalledModel {
            id: id.into(),
            files: model.files.iter().map(|f| dir.join(&f.name)).collect(),
            dir,
        })
    }

    /// Bytes the model's files take on disk.
    pub fn disk_usage(&self, id: &str) -> Result<u64, ModelError> {
        let model = self.manifest.get(id)?;
        let dir = self.dir(id);
        Ok(model
            .files
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(&f.name)).ok())
            .map(|m| m.len())
            .sum())
    }

    fn states(&self, id: &str, deep: bool) -> Result<Vec<(String, FileState)>, ModelError> {
        let model = self.manifest.get(id)?;
        let dir = self.dir(id);
        let mut stamp = read_stamp(&dir);
        let mut changed = false;
        let mut out = Vec::new();
        for file in &model.files {
            let (state, entry) = check_file(
                &dir.join(&file.name),
                file,
                stamp.files.get(&file.name),
                deep,
            );
            match entry {
                Some(entry) if stamp.files.get(&file.name) != Some(&entry) => {
                    stamp.files.insert(file.name.clone(), entry);
                    changed = true;
                }
                None if stamp.files.remove(&file.name).is_some() => changed = true,
                _ => {}
            }
            out.push((file.name.clone(), state));
        }
        if changed {
            // A stamp we cannot write only costs a re-hash next time.
            if let Err(e) = write_stamp(&dir, &stamp) {
                tracing::warn!("cannot record verification of {id}: {e}");
            }
        }
        Ok(out)
    }

    /// Records a file just written by a fetch or conversion.
    pub(crate) fn record(
        &self,
        model: &ModelSpec,
        name: &str,
        sha256: &str,
    ) -> Result<(), ModelError> {
        let dir = self.dir(&model.id);
        let path = dir.join(name);
        let meta = std::fs::metadata(&path).map_err(|e| ModelError::io("reading", &path, e))?;
        let mut stamp = read_stamp(&dir);
        stamp.files.insert(
            name.into(),
            StampEntry {
                size: meta.len(),
                modified_ns: modified_ns(&meta),
                sha256: sha256.into(),
            },
        );
        write_stamp(&dir, &stamp).map_err(|e| ModelError::io("writing", &dir.join(STAMP_FILE), e))
    }
}

/// Checks one file; returns its state and the verification record to keep for it.
fn check_file(
    path: &Path,
    spec: &FileSpec,
    stamped: Option<&StampEntry>,
    deep: bool,
) -> (FileState, Option<StampEntry>) {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) => return (FileState::Missing, None),
    };
    let size = meta.len();
    if let Some(expected) = spec.size.filter(|&s| s != size) {
        let how = if size < expected {
            "truncated"
        } else {
            "too long"
        };
        return (
            FileState::Damaged(format!("{how}: {size} bytes where {expected} are expected")),
            None,
        );
    }
    if let Some(fmt) = spec.format {
        if let Err(reason) = format::check(path, fmt) {
            return (FileState::Damaged(reason), None);
        }
    }
    let modified_ns = modified_ns(&meta);
    // The checksum the file must have: the manifest's, or for converted files the one
    // recorded when it was built.
    let expected = spec
        .sha256
        .clone()
        .or_else(|| stamped.map(|s| s.sha256.clone()));
    let Some(expected) = expected else {
        return (
            FileState::Damaged("there is no record of how it was built".into()),
            None,
        );
    };
    let entry = StampEntry {
        size,
        modified_ns,
        sha256: expected.clone(),
    };
    if !deep && stamped == Some(&entry) {
        return (FileState::Ready, Some(entry));
    }
    match sha256_file(path) {
        Ok(actual) if actual == expected => (FileState::Ready, Some(entry)),
        Ok(actual) => (
            FileState::Damaged(format!("its sha256 is {actual}, expected {expected}")),
            None,
        ),
        Err(e) => (FileState::Damaged(format!("cannot read it ({e})")), None),
    }
}

fn modified_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

fn read_stamp(dir: &Path) -> Stamp {
    std::fs::read(dir.join(STAMP_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn write_stamp(dir: &Path, stamp: &Stamp) -> std::io::Result<()> {
    let tmp = dir.join(format!("{STAMP_FILE}.tmp"));
    let json = serde_json::to_vec_pretty(stamp).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(tmp, dir.join(STAMP_FILE))
}
