//! Installs models: tries each file's sources in order, resumes interrupted downloads,
//! checks every checksum, and renames a file into place only when it is complete and
//! right, so the final name never holds a half file.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::archive::{extract_member, ArchiveError};
use crate::download::{DownloadError, Downloader};
use crate::error::ModelError;
use crate::format;
use crate::gguf;
use crate::hash::{copy_hashing, sha256_file};
use crate::manifest::{Conversion, FileSpec, ModelSpec, Part, Source};
use crate::space::{ensure_space, human_bytes};
use crate::store::{FileState, ModelStore};
use crate::whisper;

/// What a fetch reports while it works, for progress bars and logs.
#[derive(Debug, Clone)]
pub enum FetchEvent {
    /// Bytes of one download arrived.
    Downloading {
        /// The model id.
        model: String,
        /// The source's label.
        source: String,
        /// Bytes so far (counting resumed bytes).
        done: u64,
        /// Expected total, when the server said.
        total: Option<u64>,
    },
    /// A source failed; the next one will be tried.
    SourceFailed {
        /// The model id.
        model: String,
        /// The file name.
        file: String,
        /// The source's label.
        source: String,
        /// Why it failed.
        reason: String,
    },
    /// A file is being built by a converter.
    Converting {
        /// The model id.
        model: String,
        /// The file being built.
        file: String,
    },
}

/// Receives [`FetchEvent`]s.
pub trait FetchProgress: Send + Sync {
    /// Called for every event, from the fetching task.
    fn on_event(&self, event: FetchEvent);
}

/// Ignores every event.
pub struct NoProgress;

impl FetchProgress for NoProgress {
    fn on_event(&self, _: FetchEvent) {}
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Every file was already present and intact: nothing was downloaded.
    AlreadyInstalled,
    /// Files were (re)installed; `repaired` names the ones that were damaged.
    Installed {
        /// Damaged files that were replaced.
        repaired: Vec<String>,
    },
}

/// Installs models into a [`ModelStore`].
pub struct Fetcher {
    store: ModelStore,
    downloader: Downloader,
    progress: Arc<dyn FetchProgress>,
}

/// One source's failure: either try the next source, or stop (a full disk will not get
/// emptier by trying another URL).
enum Attempt {
    Next(String),
    Stop(ModelError),
}

impl From<ModelError> for Attempt {
    fn from(e: ModelError) -> Self {
        Attempt::Stop(e)
    }
}

impl Fetcher {
    /// A fetcher for `store` reporting to `progress`.
    pub fn new(store: ModelStore, progress: Arc<dyn FetchProgress>) -> Result<Fetcher, ModelError> {
        let downloader = Downloader::new().map_err(ModelError::Manifest)?;
        Ok(Fetcher {
            store,
            downloader,
            progress,
        })
    }

    /// The store this fetcher installs into.
    pub fn store(&self) -> &ModelStore {
        &self.store
    }

    /// Makes model `id` present and intact: downloads what is missing, repairs what is
    /// damaged, and downloads nothing when all is well.
    pub async fn fetch(&self, id: &str) -> Result<FetchOutcome, ModelError> {
        let model = self.store.manifest().get(id)?.clone();
        if !model.runs_here() {
            return Err(ModelError::Manifest(format!(
                "model `{id}` is built for {}, not this machine ({})",
                model.platform.as_deref().unwrap_or("?"),
                crate::manifest::current_platform()
            )));
        }
        let states = self.store.check(id)?;
        let todo: Vec<(&FileSpec, FileState)> = model
            .files
            .iter()
            .zip(states.into_iter().map(|(_, s)| s))
            .filter(|(_, s)| *s != FileState::Ready)
            .collect();
        if todo.is_empty() {
            return Ok(FetchOutcome::AlreadyInstalled);
        }
        let dir = self.store.dir(id);
        std::fs::create_dir_all(&dir).map_err(|e| ModelError::io("creating", &dir, e))?;
        ensure_space(
            &dir,
            space_needed(&model, todo.iter().map(|(f, _)| *f), &dir),
        )?;

        let mut repaired = Vec::new();
        let mut used_downloads = BTreeSet::new();
        for (file, state) in &todo {
            let target = dir.join(&file.name);
            if let FileState::Damaged(reason) = state {
                tracing::info!("replacing damaged {}: {reason}", target.display());
                remove_if_present(&target)?;
                repaired.push(file.name.clone());
            }
            let sha = match file.convert {
                Some(conversion) => {
                    self.build(&model, file, conversion, &target, &mut used_downloads)
                        .await?
                }
                None => {
                    self.fetch_file(&model.id, file, &target, &mut used_downloads)
                        .await?
                }
            };
            self.store.record(&model, &file.name, &sha)?;
        }
        // The model is whole: its downloads and inputs are no longer needed.
        for download in used_downloads {
            let _ = std::fs::remove_file(download);
        }
        let _ = std::fs::remove_dir_all(dir.join(".inputs"));
        // An earlier version's copy of an input that was not taken (damaged, or it could
        // not be moved) would otherwise stay in the folder unseen.
        for input in &model.inputs {
            if !model.files.iter().any(|f| f.name == input.name) {
                let _ = std::fs::remove_file(dir.join(&input.name));
            }
        }
        Ok(FetchOutcome::Installed { repaired })
    }

    /// Builds a converted file from the model's inputs.
    async fn build(
        &self,
        model: &ModelSpec,
        file: &FileSpec,
        conversion: Conversion,
        target: &Path,
        used: &mut BTreeSet<PathBuf>,
    ) -> Result<String, ModelError> {
        let inputs_dir = self.store.dir(&model.id).join(".inputs");
        std::fs::create_dir_all(&inputs_dir)
            .map_err(|e| ModelError::io("creating", &inputs_dir, e))?;
        for input in &model.inputs {
            let path = inputs_dir.join(&input.name);
            let matches = |path: &Path| match &input.sha256 {
                Some(sha) => sha256_file(path).is_ok_and(|actual| &actual == sha),
                None => false,
            };
            // An earlier version of this model installed the input itself as its file
            // (the Qwen GGUF before it was converted): it is taken, not downloaded again.
            // A damaged one, or one that cannot be moved, is deleted after the install.
            let earlier = self.store.dir(&model.id).join(&input.name);
            let moved =
                !path.exists() && matches(&earlier) && std::fs::rename(&earlier, &path).is_ok();
            if !moved && !matches(&path) {
                self.fetch_file(&model.id, input, &path, used).await?;
            }
        }
        self.progress.on_event(FetchEvent::Converting {
            model: model.id.clone(),
            file: file.name.clone(),
        });
        let part = part_path(target);
        let (part_for_task, target_for_task) = (part.clone(), target.to_path_buf());
        // A one-input conversion's input (the manifest checks there is exactly one).
        let only_input = model
            .inputs
            .first()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let format = file.format;
        let expected_sha = file.sha256.clone();
        tokio::task::spawn_blocking(move || -> Result<String, ModelError> {
            match conversion {
                Conversion::Ct2Whisper => whisper::convert_dir(&inputs_dir, &part_for_task)?,
                Conversion::GgufQ5AsQ8 => {
                    let input = inputs_dir.join(&only_input);
                    let done = gguf::widen_q5_0(&input, &part_for_task)?;
                    tracing::info!(
                        "{}: {} Q5_0 tensors rewritten as Q8_0, {} kept",
                        input.display(),
                        done.tensors,
                        done.kept
                    );
                }
            }
            if let Some(fmt) = format {
                format::check(&part_for_task, fmt).map_err(|reason| ModelError::Convert {
                    path: part_for_task.clone(),
                    into: conversion.output(),
                    reason,
                })?;
            }
            let sha = sha256_file(&part_for_task)
                .map_err(|e| ModelError::io("reading", &part_for_task, e))?;
            // A converter whose output is known (deterministic) must make exactly it.
            if let Some(expected) = expected_sha.filter(|expected| *expected != sha) {
                let _ = std::fs::remove_file(&part_for_task);
                return Err(ModelError::Convert {
                    path: part_for_task.clone(),
                    into: conversion.output(),
                    reason: format!(
                        "the result's sha256 is {sha}, where {expected} is expected; \
                         this build of Sotto does not convert the way its manifest says"
                    ),
                });
            }
            // On disk before it takes the model's name, as a download is.
            std::fs::File::open(&part_for_task)
                .and_then(|f| f.sync_all())
                .map_err(|e| ModelError::io("writing", &part_for_task, e))?;
            std::fs::rename(&part_for_task, &target_for_task)
                .map_err(|e| ModelError::io("renaming", &part_for_task, e))?;
            Ok(sha)
        })
        .await
        .map_err(|e| ModelError::Convert {
            path: part,
            into: conversion.output(),
            reason: format!("the converter stopped: {e}"),
        })?
    }

    /// Tries each source of `file` in order; returns the sha256 of the installed file.
    async fn fetch_file(
        &self,
        model: &str,
        file: &FileSpec,
        target: &Path,
        used: &mut BTreeSet<PathBuf>,
    ) -> Result<String, ModelError> {
        let mut attempts = Vec::new();
        for source in &file.sources {
            match self.try_source(model, file, source, target, used).await {
                Ok(sha) => return Ok(sha),
                Err(Attempt::Stop(e)) => return Err(e),
                Err(Attempt::Next(reason)) => {
                    let urls: Vec<&str> = source.parts.iter().map(|p| p.url.as_str()).collect();
                    attempts.push(format!(
                        "  - {} <{}>: {reason}",
                        source.label,
                        urls.join(" + ")
                    ));
                    self.progress.on_event(FetchEvent::SourceFailed {
                        model: model.into(),
                        file: file.name.clone(),
                        source: source.label.clone(),
                        reason,
                    });
                }
            }
        }
        Err(ModelError::NoSource {
            model: model.into(),
            file: file.name.clone(),
            attempts: attempts.join("\n"),
            target: target.to_path_buf(),
            sha256: file
                .sha256
                .clone()
                .unwrap_or_else(|| "see the manifest".into()),
        })
    }

    async fn try_source(
        &self,
        model: &str,
        file: &FileSpec,
        source: &Source,
        target: &Path,
        used: &mut BTreeSet<PathBuf>,
    ) -> Result<String, Attempt> {
        let part = part_path(target);
        remove_if_present(&part)?;
        for piece in &source.parts {
            let download = self.download_part(model, source, piece).await?;
            used.insert(download.clone());
            let direct = piece.member.is_none() && source.parts.len() == 1;
            if direct {
                std::fs::rename(&download, &part)
                    .map_err(|e| ModelError::io("renaming", &download, e))?;
            } else {
                let (download, part, member) = (download, part.clone(), piece.member.clone());
                tokio::task::spawn_blocking(move || {
                    append_piece(&download, member.as_deref(), &part)
                })
                .await
                .map_err(|e| Attempt::Next(format!("extraction stopped: {e}")))??;
            }
        }
        let sha = sha256_file(&part).map_err(|e| ModelError::io("reading", &part, e))?;
        let size = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let wrong = if file
            .sha256
            .as_deref()
            .is_some_and(|expected| expected != sha)
        {
            Some(format!(
                "its bytes are not the expected ones (sha256 {sha}, expected {})",
                file.sha256.as_deref().unwrap_or_default()
            ))
        } else if let Some(expected) = file.size.filter(|&s| s != size) {
            Some(format!("{size} bytes, expected {expected}"))
        } else {
            file.format.and_then(|fmt| format::check(&part, fmt).err())
        };
        if let Some(reason) = wrong {
            remove_if_present(&part)?;
            return Err(Attempt::Next(reason));
        }
        std::fs::rename(&part, target).map_err(|e| ModelError::io("renaming", &part, e))?;
        Ok(sha)
    }

    /// Downloads one part into the downloads folder (resuming), checks its own checksum,
    /// and returns the completed file.
    async fn download_part(
        &self,
        model: &str,
        source: &Source,
        piece: &Part,
    ) -> Result<PathBuf, Attempt> {
        let dir = self.store.downloads_dir();
        std::fs::create_dir_all(&dir).map_err(|e| ModelError::io("creating", &dir, e))?;
        let key = piece
            .sha256
            .clone()
            .unwrap_or_else(|| hex::encode(Sha256::digest(piece.url.as_bytes())));
        let done = dir.join(&key);
        if done.exists() {
            return Ok(done);
        }
        let part = dir.join(format!("{key}.part"));
        let progress = Arc::clone(&self.progress);
        let (model_id, label) = (model.to_string(), source.label.clone());
        let mut report = move |done: u64, total: Option<u64>| {
            progress.on_event(FetchEvent::Downloading {
                model: model_id.clone(),
                source: label.clone(),
                done,
                total,
            });
        };
        match self
            .downloader
            .download(&piece.url, &part, &mut report)
            .await
        {
            Ok(()) => {}
            Err(DownloadError::Disk { source, .. }) => {
                return Err(ModelError::io("writing", &part, source).into())
            }
            Err(other) => return Err(Attempt::Next(other.to_string())),
        }
        if let Some(expected) = &piece.sha256 {
            let actual = sha256_file(&part).map_err(|e| ModelError::io("reading", &part, e))?;
            if &actual != expected {
                remove_if_present(&part)?;
                return Err(Attempt::Next(format!(
                    "the download's sha256 is {actual}, expected {expected}; it was deleted"
                )));
            }
        }
        std::fs::rename(&part, &done).map_err(|e| ModelError::io("renaming", &part, e))?;
        Ok(done)
    }
}

/// Appends a downloaded piece (or one member of it) to the file being assembled.
fn append_piece(download: &Path, member: Option<&str>, part: &Path) -> Result<(), Attempt> {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(part)
        .map_err(|e| ModelError::io("opening", part, e))?;
    let mut hasher = Sha256::new();
    match member {
        Some(member) => match extract_member(download, member, &mut out, &mut hasher) {
            Ok(_) => {}
            Err(ArchiveError::Write(e)) => return Err(ModelError::io("writing", part, e).into()),
            Err(e) => {
                // A damaged archive: drop it so the next attempt downloads it afresh.
                let _ = std::fs::remove_file(download);
                return Err(Attempt::Next(e.to_string()));
            }
        },
        None => {
            let mut input =
                File::open(download).map_err(|e| ModelError::io("reading", download, e))?;
            copy_hashing(&mut input, &mut out, &mut hasher)
                .map_err(|e| ModelError::io("writing", part, e))?;
        }
    }
    out.flush()
        .map_err(|e| ModelError::io("writing", part, e))?;
    out.sync_all()
        .map_err(|e| ModelError::io("writing", part, e))?;
    Ok(())
}

/// Disk space a fetch of these files into `dir` needs: the files, plus the archives they
/// come from (which sit beside them until the model is complete). An input already there
/// at its size (an earlier install's file, or one kept from an interrupted fetch) is
/// moved or reused, not downloaded: only its output is counted.
fn space_needed<'a>(
    model: &'a ModelSpec,
    files: impl Iterator<Item = &'a FileSpec>,
    dir: &Path,
) -> u64 {
    let present = |input: &FileSpec| {
        input.size.is_some_and(|size| {
            [dir.join(&input.name), dir.join(".inputs").join(&input.name)]
                .iter()
                .any(|path| path.metadata().is_ok_and(|m| m.len() == size))
        })
    };
    let first_source_size = |f: &FileSpec| -> u64 {
        let archives: u64 = f
            .sources
            .first()
            .map(|s| s.parts.iter().filter_map(|p| p.size).sum())
            .unwrap_or(0);
        f.size.unwrap_or(0) + archives
    };
    files
        .map(|f| match f.convert {
            // The inputs, their downloads, and an output about as large as the inputs (up
            // to 34/22 of them when Q5_0 blocks become Q8_0).
            Some(conversion) => model
                .inputs
                .iter()
                .map(|i| {
                    let size = i.size.unwrap_or(0);
                    let output = match conversion {
                        Conversion::Ct2Whisper => size,
                        Conversion::GgufQ5AsQ8 => size / 22 * 34,
                    };
                    let download = if present(i) { 0 } else { first_source_size(i) };
                    download + output
                })
                .sum(),
            None => first_source_size(f),
        })
        .sum()
}

/// `name.part` beside `path`: where a file is assembled before its atomic rename.
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

fn remove_if_present(path: &Path) -> Result<(), ModelError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ModelError::io("removing", path, e))
        }
        _ => Ok(()),
    }
}

impl std::fmt::Display for FetchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchOutcome::AlreadyInstalled => f.write_str("already installed, nothing downloaded"),
            FetchOutcome::Installed { repaired } if repaired.is_empty() => f.write_str("installed"),
            FetchOutcome::Installed { repaired } => write!(f, "repaired {}", repaired.join(", ")),
        }
    }
}

/// The total of a model's known sizes, for listings.
pub fn model_size_text(model: &ModelSpec) -> String {
    let size: u64 = model.known_size();
    if size == 0 {
        let inputs: u64 = model.inputs.iter().filter_map(|i| i.size).sum();
        format!("~{}", human_bytes(inputs))
    } else {
        human_bytes(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    #[test]
    fn an_input_already_in_the_folder_is_not_counted_as_a_download() -> Result<(), ModelError> {
        let manifest = Manifest::parse(
            "[[model]]\nid = \"m\"\nkind = \"llm\"\ntitle = \"t\"\nlicense = \"MIT\"\n\
             [[model.input]]\nname = \"q.gguf\"\nsize = 2200\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n\
             [[model.input.source]]\nlabel = \"l\"\nparts = [{ url = \"http://127.0.0.1/q\", size = 2200 }]\n\
             [[model.file]]\nname = \"w.gguf\"\nconvert = \"gguf-q5-as-q8\"\n",
        )?;
        let model = manifest.get("m")?;
        let dir =
            tempfile::tempdir().map_err(|e| ModelError::io("creating", Path::new("tmp"), e))?;
        let output = 2200 / 22 * 34;
        // Nothing there: the download, the input it becomes, and the output.
        assert_eq!(
            space_needed(model, model.files.iter(), dir.path()),
            2200 + 2200 + output
        );
        // An earlier install's copy of the right size: only the output.
        std::fs::write(dir.path().join("q.gguf"), vec![0u8; 2200])
            .map_err(|e| ModelError::io("writing", dir.path(), e))?;
        assert_eq!(space_needed(model, model.files.iter(), dir.path()), output);
        // One of another size is not the input.
        std::fs::write(dir.path().join("q.gguf"), vec![0u8; 100])
            .map_err(|e| ModelError::io("writing", dir.path(), e))?;
        assert_eq!(
            space_needed(model, model.files.iter(), dir.path()),
            2200 + 2200 + output
        );
        Ok(())
    }
}
