//! A virtual microphone: silence at real-time pace, with each clip it is handed spoken
//! into it as it arrives, as a person would speak into a real one. Headless runs
//! (`sotto run`, `sotto converse`) and the app's test-only input use it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::CaptureEvent;
use crate::{AudioBuffer, AudioError};

/// Block length.
const BLOCK_MS: u64 = 20;
const RATE: u32 = 16_000;

/// Starts the microphone thread: it sends one block of 16 kHz mono every 20 ms to `out`,
/// silence unless a clip from `clips` is playing. It stops when `out` is closed, or when
/// `clips` is closed and the last clip has played.
pub fn spawn_virtual_microphone(
    clips: Receiver<AudioBuffer>,
    out: SyncSender<CaptureEvent>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sotto-virtual-mic".into())
        .spawn(move || {
            let block = (u64::from(RATE) * BLOCK_MS / 1000) as usize;
            let started = Instant::now();
            let mut sent = 0u32;
            let mut pending: Vec<f32> = Vec::new();
            loop {
                match clips.try_recv() {
                    Ok(clip) => match crate::to_mono_16k(&clip) {
                        Ok(mono) => pending.extend(mono),
                        Err(e) => tracing::warn!("cannot play a clip into the microphone: {e}"),
                    },
                    Err(mpsc::TryRecvError::Disconnected) if pending.is_empty() => return,
                    Err(_) => {}
                }
                let take = block.min(pending.len());
                let mut samples: Vec<f32> = pending.drain(..take).collect();
                samples.resize(block, 0.0);
                let audio = AudioBuffer {
                    samples,
                    channels: 1,
                    sample_rate: RATE,
                };
                if out.send(CaptureEvent::Audio(audio)).is_err() {
                    return;
                }
                sent += 1;
                let due = started + Duration::from_millis(BLOCK_MS * u64::from(sent));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
}

/// Recorded questions for a virtual microphone, spoken one at a time on cue: the app's
/// test input and `sotto serve --input`, where a person would speak into a real one each
/// time the talk key goes down.
pub struct SpokenClips {
    /// The virtual microphone's clip queue.
    microphone: mpsc::Sender<AudioBuffer>,
    /// The questions, in the order they are spoken.
    clips: Vec<AudioBuffer>,
    /// How many have been spoken (the next is this one modulo their number).
    spoken: AtomicUsize,
    /// What it reads as a device name ("test input <path>").
    name: String,
}

impl SpokenClips {
    /// Reads `path`, a WAV file or a folder of them (spoken in the order of their names),
    /// and starts a virtual microphone that sends its blocks to `out`.
    pub fn open(path: &Path, out: SyncSender<CaptureEvent>) -> Result<SpokenClips, AudioError> {
        let files = if path.is_dir() {
            crate::wav::files_in(path)?
        } else {
            vec![path.to_path_buf()]
        };
        let clips = files
            .iter()
            .map(|file| crate::wav::read(file))
            .collect::<Result<Vec<_>, _>>()?;
        if clips.is_empty() {
            return Err(AudioError::ReadWav {
                path: path.display().to_string(),
                reason: "the folder holds no .wav files".into(),
            });
        }
        let (microphone, queue) = mpsc::channel();
        spawn_virtual_microphone(queue, out).map_err(|e| {
            AudioError::Unsupported(format!("cannot start the virtual microphone: {e}"))
        })?;
        Ok(SpokenClips {
            microphone,
            clips,
            spoken: AtomicUsize::new(0),
            name: format!("test input {}", path.display()),
        })
    }

    /// Speaks the next question into the microphone (after the last, the first again).
    pub fn speak_next(&self) {
        let at = self.spoken.fetch_add(1, Ordering::Relaxed);
        if let Some(clip) = self.clips.get(at % self.clips.len().max(1)) {
            let _ = self.microphone.send(clip.clone());
        }
    }

    /// "test input <path>", for where a device name is shown.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod clip_tests {
    use super::*;

    fn write_tone(path: &Path, seconds: f32) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let Ok(mut writer) = hound::WavWriter::create(path, spec) else {
            panic!("cannot write {}", path.display());
        };
        for i in 0..(16_000.0 * seconds) as usize {
            let s = (i as f32 * 0.05).sin() * 8_000.0;
            let _ = writer.write_sample(s as i16);
        }
        let _ = writer.finalize();
    }

    #[test]
    fn a_folder_of_questions_is_spoken_in_name_order_one_per_cue() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("no temporary folder");
        };
        // Written out of order: the names decide.
        write_tone(&dir.path().join("b.wav"), 0.2);
        write_tone(&dir.path().join("a.wav"), 0.1);
        std::fs::write(dir.path().join("notes.txt"), "not audio").ok();
        let (out, blocks) = mpsc::sync_channel(1024);
        let clips = match SpokenClips::open(dir.path(), out) {
            Ok(clips) => clips,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(clips.clips.len(), 2);
        assert_eq!(clips.clips[0].samples.len(), 1_600, "a.wav first");
        clips.speak_next();
        // Count the blocks with sound until the microphone has been silent a while.
        let mut loud = 0;
        let mut quiet_after = 0;
        while quiet_after < 10 {
            let Ok(CaptureEvent::Audio(block)) = blocks.recv_timeout(Duration::from_secs(2)) else {
                panic!("the virtual microphone stopped");
            };
            if block.samples.iter().any(|s| s.abs() > 0.01) {
                loud += 1;
                quiet_after = 0;
            } else if loud > 0 {
                quiet_after += 1;
            }
        }
        // 100 ms of tone: five 20 ms blocks.
        assert_eq!(loud, 5);
    }

    #[test]
    fn an_empty_folder_says_so() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("no temporary folder");
        };
        let (out, _blocks) = mpsc::sync_channel(16);
        let Err(e) = SpokenClips::open(dir.path(), out) else {
            panic!("an empty folder opened");
        };
        assert!(e.to_string().contains("no .wav files"), "{e}");
    }
}
