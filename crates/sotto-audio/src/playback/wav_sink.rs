//! A WAV file as the speaker: a thread takes samples out of the queue at the pace a
//! sound card would, so stopping and "what was heard" behave as on real speakers. The
//! samples go to the file as they are played (its header kept valid every second), so an
//! assistant left running for weeks without a speaker holds nothing of its answers in
//! memory and a crash loses at most the last second.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::queue::PlayQueue;
use super::PlaybackError;
use crate::source::Pace;

/// How often the writer takes a block: 10 ms, like a small sound-card buffer.
const TICK: Duration = Duration::from_millis(10);

/// How often the file's header is brought up to date.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

type Writer = hound::WavWriter<BufWriter<File>>;

pub(crate) struct WavSink {
    path: PathBuf,
    /// The first write error, if any (reported by [`WavSink::finish`]).
    failed: Arc<Mutex<Option<String>>>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<Writer>>>,
    queue: Arc<PlayQueue>,
}

impl WavSink {
    pub(crate) fn start(
        path: &Path,
        queue: Arc<PlayQueue>,
        pace: Pace,
    ) -> Result<WavSink, PlaybackError> {
        let fail = |reason: String| PlaybackError::Write {
            path: path.display().to_string(),
            reason,
        };
        // Fail now, not after the whole answer, if the file cannot be written.
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: queue.rate(),
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|e| fail(e.to_string()))?;
        let failed = Arc::new(Mutex::new(None));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (queue, failed, done) =
                (Arc::clone(&queue), Arc::clone(&failed), Arc::clone(&done));
            std::thread::Builder::new()
                .name("sotto-wav-sink".into())
                .spawn(move || drain(&queue, writer, &failed, &done, pace))
                .map_err(|e| fail(e.to_string()))?
        };
        Ok(WavSink {
            path: path.to_path_buf(),
            failed,
            done,
            thread: Some(thread),
            queue,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Plays out the queue, then closes the file.
    pub(crate) fn finish(mut self) -> Result<(), PlaybackError> {
        let _ = self.queue.flush();
        self.queue.wait_idle(Duration::from_secs(600));
        self.close()
    }

    fn close(&mut self) -> Result<(), PlaybackError> {
        self.done.store(true, Ordering::SeqCst);
        let writer = self
            .thread
            .take()
            .and_then(|thread| thread.join().ok().flatten());
        let fail = |reason: String| PlaybackError::Write {
            path: self.path.display().to_string(),
            reason,
        };
        if let Some(reason) = self.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(fail(reason));
        }
        match writer {
            Some(writer) => writer.finalize().map_err(|e| fail(e.to_string())),
            None => Err(fail("the writer thread stopped".into())),
        }
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

/// Takes audio out of the queue and writes the real samples (the file holds what was
/// said, not the pauses while the voice was thinking). Returns the writer to be closed,
/// or `None` after a write error (kept in `failed`; the queue is still drained so
/// playback timing goes on).
fn drain(
    queue: &PlayQueue,
    writer: Writer,
    failed: &Mutex<Option<String>>,
    done: &AtomicBool,
    pace: Pace,
) -> Option<Writer> {
    let per_tick = (queue.rate() as usize * TICK.as_millis() as usize / 1000).max(1);
    let mut block = vec![0.0; per_tick];
    let started = Instant::now();
    let mut ticks: u32 = 0;
    let mut writer = Some(writer);
    let mut flushed = Instant::now();
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
        let Some(w) = writer.as_mut() else { continue };
        let mut result = block[..real]
            .iter()
            .try_for_each(|&s| w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16));
        if result.is_ok() && real > 0 && flushed.elapsed() >= FLUSH_EVERY {
            result = w.flush();
            flushed = Instant::now();
        }
        if let Err(e) = result {
            tracing::warn!("the answers' WAV file cannot be written: {e}");
            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            writer = None;
        }
    }
    writer
}

#[cfg(test)]
mod tests {
    use crate::playback::Player;
    use crate::source::Pace;
    use std::time::Duration;

    #[test]
    fn answers_reach_the_file_while_they_play_not_at_the_end() {
        let dir = std::env::temp_dir().join(format!("sotto-wav-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("answers.wav");
        let player = Player::wav(&path, 16_000, Pace::RealTime).expect("player");
        // Three seconds of sound, played at a sound card's pace.
        player.play(&vec![0.25; 48_000], 16_000).expect("play");
        player.end_of_stream().expect("flush");
        std::thread::sleep(Duration::from_millis(1_800));
        let written = hound::WavReader::open(&path).expect("a valid file mid-answer");
        let seconds = written.duration() as f64 / 16_000.0;
        assert!(
            (0.5..2.5).contains(&seconds),
            "{seconds} s in the file after 1.8 s of playing"
        );
        player.finish().expect("finish");
        let whole = hound::WavReader::open(&path).expect("the whole file");
        assert_eq!(whole.duration(), 48_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
