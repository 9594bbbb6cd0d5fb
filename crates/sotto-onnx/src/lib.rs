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

/// Set to `1` to run with ONNX Runtime's CPU memory arena, `0` without (and so without
/// memory patterns); unset, [`ARENA_BY_DEFAULT`]. Only to measure what the arena costs
/// and saves.
pub const ARENA_VAR: &str = "SOTTO_ORT_ARENA";

/// Whether sessions keep ONNX Runtime's CPU memory arena unless [`ARENA_VAR`] says: yes.
/// Without it the default voice took about 40 % longer per sentence (`sotto-bench
/// voice-memory`, docs/BENCHMARKS.md "Soak"). What made the arena grow for hours was not
/// the arena but memory patterns on inputs whose length varies ([`Shapes::Varying`]).
pub const ARENA_BY_DEFAULT: bool = true;

/// Set to `1` to have ONNX Runtime give the arena's free regions back at the end of every
/// run made with [`run_options`] (the voices'; `memory.enable_memory_arena_shrinkage`);
/// only to measure it.
pub const SHRINK_VAR: &str = "SOTTO_ORT_SHRINK";

/// Set to `1` to plan memory patterns for every session with the arena, `0` for none;
/// unset, only for [`Shapes::Fixed`] sessions. Only to measure them.
pub const PATTERN_VAR: &str = "SOTTO_ORT_PATTERN";

/// Whether a model's inputs keep one shape from run to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shapes {
    /// The same shape every run (a 32 ms frame, 8 s of features): ONNX Runtime plans the
    /// run's memory once (memory patterns) and reuses the plan.
    Fixed,
    /// A new length nearly every run (a sentence's phonemes, a phrase's tokens). Memory
    /// patterns are off: ONNX Runtime would plan one block per length and, with its arena,
    /// keep a block for every length it met. Measured on the default voice over 200
    /// sentences (`sotto-bench voice-memory`): with patterns resident memory kept
    /// climbing (293 -> 649 MiB, +86 MiB at sentence 175); without them it stopped once
    /// the longest sentence had come (465 MiB from sentence 100), at the same speed.
    Varying,
}

/// Options for one run of a session opened by [`open_session`].
pub fn run_options() -> Result<ort::session::RunOptions, OnnxError> {
    let mut options = ort::session::RunOptions::new()?;
    if std::env::var(SHRINK_VAR).is_ok_and(|v| v == "1") {
        options.set("memory.enable_memory_arena_shrinkage", "cpu:0")?;
    }
    Ok(options)
}

/// Whether a session plans memory patterns: only with the arena, and by default only for
/// [`Shapes::Fixed`] inputs; `switch` is [`PATTERN_VAR`]'s value.
fn plans_patterns(arena: bool, shapes: Shapes, switch: Option<&str>) -> bool {
    arena && switch.map_or(shapes == Shapes::Fixed, |v| v == "1")
}

/// Whether sessions run with ONNX Runtime's CPU memory arena ([`ARENA_BY_DEFAULT`] unless
/// [`ARENA_VAR`] says otherwise).
fn arena_enabled() -> bool {
    std::env::var(ARENA_VAR).map_or(ARENA_BY_DEFAULT, |v| v != "0")
}

/// Opens the ONNX model at `path` on `threads` CPU threads, its inputs shaped as `shapes`
/// says. The pool's threads sleep between runs instead of spinning: every model here runs
/// in bursts (a sentence, a 32 ms frame) beside other engines that need the cores
/// (`sotto_core::budget`).
pub fn open_session(
    env: &Environment,
    path: &Path,
    threads: usize,
    shapes: Shapes,
) -> Result<Session, OnnxError> {
    let spinning = std::env::var(SPINNING_VAR).is_ok_and(|v| v == "1");
    let arena = arena_enabled();
    let patterns = plans_patterns(arena, shapes, std::env::var(PATTERN_VAR).ok().as_deref());
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
        .with_memory_pattern(patterns)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fixed_shapes_get_memory_patterns_unless_measuring() {
        assert!(plans_patterns(true, Shapes::Fixed, None));
        assert!(!plans_patterns(true, Shapes::Varying, None));
        // Patterns live in the arena: none without it, whatever the switch says.
        assert!(!plans_patterns(false, Shapes::Fixed, None));
        assert!(!plans_patterns(false, Shapes::Varying, Some("1")));
        // The measuring switch: `1` for all, anything else for none.
        assert!(plans_patterns(true, Shapes::Varying, Some("1")));
        assert!(!plans_patterns(true, Shapes::Fixed, Some("0")));
    }
}
