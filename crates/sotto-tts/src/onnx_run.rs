//! One ONNX Runtime run that a cancellation stops midway, shared by the voices: a long
//! sentence must not keep the CPU busy after the user interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sotto_onnx::ort::session::RunOptions;

use crate::{CancellationToken, TtsError};

/// Calls `run` with run options whose terminate flag is set if `cancel` fires while it
/// runs. `None` when cancelled (whatever the run returned); otherwise its result.
pub(crate) fn run_cancellable<T>(
    cancel: &CancellationToken,
    run: impl FnOnce(&RunOptions) -> Result<T, TtsError>,
) -> Result<Option<T>, TtsError> {
    let options = Arc::new(sotto_onnx::run_options().map_err(run_error)?);
    let watchdog = Watchdog::start(Arc::clone(&options), cancel.clone());
    let result = run(&options);
    watchdog.finish();
    if cancel.is_cancelled() {
        return Ok(None);
    }
    result.map(Some)
}

/// An ONNX Runtime failure during synthesis.
pub(crate) fn run_error(e: impl std::fmt::Display) -> TtsError {
    TtsError::Run(e.to_string())
}

/// A thread that sets `options`' terminate flag if `cancel` fires before the run ends.
/// It sleeps in short parks; [`Watchdog::finish`] wakes it at once, so ending a run costs
/// no waiting.
struct Watchdog {
    finished: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    fn start(options: Arc<RunOptions>, cancel: CancellationToken) -> Watchdog {
        let finished = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&finished);
        let thread = std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                if cancel.is_cancelled() {
                    let _ = options.terminate();
                    return;
                }
                std::thread::park_timeout(Duration::from_millis(2));
            }
        });
        Watchdog { finished, thread }
    }

    fn finish(self) {
        self.finished.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}
