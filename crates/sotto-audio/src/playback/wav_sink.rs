//! A WAV file as the speaker: a thread takes samples out of the queue at the pace a
//! sound card would, so stopping and "what was heard" behave as on real speakers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::queue::PlayQueue;
use super::PlaybackError;
use crate::buffer::AudioBuffer;
use crate::source::Pace;

/// How often the writer takes a block: 10 ms, like a small sound-card buffer.
const TICK: Duration = Duration::from_millis(10);

pub(crate) struct WavSink {
    path: PathBuf,
    written: Arc<Mutex<Vec<f32>>>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    queue: Arc<PlayQueue>,
}

impl WavSink {
    pub(crate) fn start(
        path: &Path,
        queue: Arc<PlayQueue>,
        pace: Pace,
    ) -> Result<WavSink, PlaybackError> {
        // Fail now, not after the whole answer, if the file cannot be written.
        std::fs::File::create(path).map_err(|e| PlaybackError::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let written = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (queue, written, done) =
                (Arc::clone(&queue), Arc::clone(&written), Arc::clone(&done));
            std::thread::Builder::new()
                .name("sotto-wav-sink".into())
                .spawn(move || drain(&queue, &written, &done, pace))
                .map_err(|e| PlaybackError::Write {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?
        };
        Ok(WavSink {
            path: path.to_path_buf(),
            written,
            done,
            thread: Some(thread),
            queue,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Plays out the queue, then writes the file.
    pub(crate) fn finish(mut self) -> Result<(), PlaybackError> {
        let _ = self.queue.flush();
        self.queue.wait_idle(Duration::from_secs(600));
        self.close()
    }

    fn close(&mut self) -> Result<(), PlaybackError> {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let samples = std::mem::take(&mut *self.written.lock().unwrap_or_else(|p| p.into_inner()));
        let audio = AudioBuffer {
            samples,
            sample_rate: self.queue.rate(),
            channels: 1,
        };
        crate::wav::write(&self.path, &audio).map_err(|e| PlaybackError::Write {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.close() {
                tracing::warn!("{e}");
            }
        }
    }
}

/// Takes audio out of the queue, keeping only real samples (the file holds what was
/// said, not the pauses while the voice was thinking).
fn drain(queue: &PlayQueue, written: &Mutex<Vec<f32>>, done: &AtomicBool, pace: Pace) {
    let per_tick = (queue.rate() as usize * TICK.as_millis() as usize / 1000).max(1);
    let mut block = vec![0.0; per_tick];
    let started = Instant::now();
    let mut ticks: u32 = 0;
    while !done.load(Ordering::SeqCst) {
        match pace {
            Pace::RealTime => {
                ticks += 1;
                let due = started + TICK * ticks;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            Pace::AsFastAsPossible => {
                if queue.queued() == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        let real = queue.pull(&mut block);
        if real > 0 {
            if let Ok(mut w) = written.lock() {
                w.extend_from_slice(&block[..real]);
            }
        }
    }
}
