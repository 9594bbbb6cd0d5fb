//! ONNX Runtime for Sotto's neural parts (Silero VAD, Piper and Kokoro voices).
//!
//! The runtime is a shared library from the model store (`onnxruntime-1.32.0`, checked
//! by sha256 like every model), loaded once per process by [`environment`]. Sessions are
//! opened by [`open_session`], which checks the model file first so a damaged download
//! gives a repair hint instead of a protobuf error.

use std::path::Path;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use sotto_models::{FileFormat, ModelError, ModelStore};

pub use ort;

/// The store id of the ONNX Runtime library.
pub const RUNTIME_MODEL: &str = "onnxruntime-1.32.0";

/// Why a neural model could not be run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    /// A model or the runtime is missing or damaged (the message says how to repair it).
    #[error("{0}")]
    Model(String),
    /// The runtime library could not be loaded.
    #[error("ONNX Runtime could not be loaded from {path}: {reason}. Run `sotto models fetch {RUNTIME_MODEL}` to repair it.")]
    Runtime {
        /// The library.
        path: String,
        /// Why.
        reason: String,
    },
    /// ONNX Runtime refused the model file.
    #[error(
        "ONNX Runtime could not open {path}: {reason}. Run `sotto models fetch` to repair it."
    )]
    Session {
        /// The model file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Running the model failed.
    #[error("the neural model failed: {0}")]
    Run(String),
}

impl From<ModelError> for OnnxError {
    fn from(e: ModelError) -> Self {
        OnnxError::Model(e.to_string())
    }
}

impl From<ort::Error> for OnnxError {
    fn from(e: ort::Error) -> Self {
        OnnxError::Run(e.to_string())
    }
}

static ENVIRONMENT: OnceLock<Result<Environment, OnnxError>> = OnceLock::new();

/// The process's ONNX Runtime environment, loading the library from `store` the first
/// time. The library can be loaded only once per process, so a failure is remembered.
pub fn environment(store: &ModelStore) -> Result<Environment, OnnxError> {
    if let Some(done) = ENVIRONMENT.get() {
        return done.clone();
    }
    let installed = store.require(RUNTIME_MODEL)?;
    let path = installed.main_file().to_path_buf();
    ENVIRONMENT
        .get_or_init(|| {
            let failed = |reason: String| OnnxError::Runtime {
                path: path.display().to_string(),
                reason,
            };
            ort::init_from(&path)
                .map_err(|e| failed(e.to_string()))?
                .with_name("sotto")
                .build()
                .map_err(|e| failed(e.to_string()))
        })
        .clone()
}

/// Set to `1` to let ONNX Runtime's pool threads spin between runs as it does by
/// default (only to measure what turning it off saves).
pub const SPINNING_VAR: &str = "SOTTO_ORT_SPINNING";

/// Set to `1` to run with ONNX Runtime's CPU memory arena and memory patterns, `0`
/// without; unset, [`ARENA_BY_DEFAULT`]. Only to measure what the arena costs and saves.
pub const ARENA_VAR: &str = "SOTTO_ORT_ARENA";

/// Whether sessions keep ONNX Runtime's CPU memory arena unless [`ARENA_VAR`] says: yes,
/// for now. The voice's inputs change length with every sentence, and the arena keeps
/// the blocks of the longest it has met: the soak saw the process grow by about 47 MiB
/// between turns 100 and 200 (then flat) and hold about 190 MiB more than without it.
/// Without it the voice took about 14 % longer, its first audio 8-30 ms later, and the
/// voice bench's peak memory was 209 MiB higher (docs/BENCHMARKS.md, "Soak"): not yet a
/// trade worth making.
pub const ARENA_BY_DEFAULT: bool = true;

/// Opens the ONNX model at `path` on `threads` CPU threads. The pool's threads sleep
/// between runs instead of spinning: every model here runs in bursts (a sentence, a 32 ms
/// frame) beside other engines that need the cores (`sotto_core::budget`).
pub fn open_session(env: &Environment, path: &Path, threads: usize) -> Result<Session, OnnxError> {
    let spinning = std::env::var(SPINNING_VAR).is_ok_and(|v| v == "1");
    let arena = std::env::var(ARENA_VAR).map_or(ARENA_BY_DEFAULT, |v| v != "0");
    let refused = |reason: String| OnnxError::Session {
        path: path.display().to_string(),
        reason,
    };
    sotto_models::format::check(path, FileFormat::Onnx).map_err(refused)?;
    let cpu = ort::ep::CPU::default().with_arena_allocator(arena).build();
    Session::builder(env)
        .map_err(|e| refused(e.to_string()))?
        .with_execution_providers([cpu])
        .map_err(|e| refused(e.to_string()))?
        .with_memory_pattern(arena)
        .map_err(|e| refused(e.to_string()))?
        .with_intra_threads(threads.max(1))
        .map_err(|e| refused(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| refused(e.to_string()))?
        .with_intra_op_spinning(spinning)
        .map_err(|e| refused(e.to_string()))?
        .with_inter_op_spinning(spinning)
        .map_err(|e| refused(e.to_string()))?
        .commit_from_file(path)
        .map_err(|e| refused(e.to_string()))
}
