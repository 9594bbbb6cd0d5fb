//! Where audio comes from: the microphone ([`Capture`]) or a WAV file ([`WavSource`]),
//! behind one trait. Both deliver [`CaptureEvent`]s through a channel, so everything
//! downstream (listening, the app, tests) is the same for a real microphone and a file.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::{Capture, CaptureError, CaptureEvent, QUEUE_BLOCKS};
use crate::{wav, AudioBuffer, AudioError};

/// A running source of audio blocks.
pub trait AudioSource: Send {
    /// What the audio comes from (a device name, or a file path).
    fn name(&self) -> &str;
    /// Blocks dropped because the consumer fell behind.
    fn dropped_blocks(&self) -> u64;
}

impl AudioSource for Capture {
    fn name(&self) -> &str {
        self.device()
    }

    fn dropped_blocks(&self) -> u64 {
        Capture::dropped_blocks(self)
    }
}

/// How fast a [`WavSource`] delivers its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As a microphone would: one block per block of time. A slow consumer loses blocks.
    RealTime,
    /// As fast as the consumer takes it; nothing is dropped.
    AsFastAsPossible,
}

/// What a [`WavSource`] plays.
#[derive(Debug, Clone)]
pub struct WavSourceConfig {
    /// Delivery pace.
    pub pace: Pace,
    /// Milliseconds of audio per block (a microphone gives about 10-20).
    pub block_ms: u32,
    /// Silence appended after the file, as a microphone goes on listening after the
    /// speaker stops (the endpointer needs it to hear the end of speech).
    pub trailing_silence_ms: u32,
    /// Pretend the device is unplugged after this much audio: the source sends
    /// [`CaptureEvent::Lost`] instead of the rest.
    pub lose_after_ms: Option<u32>,
}

impl Default for WavSourceConfig {
    fn default() -> Self {
        WavSourceConfig {
            pace: Pace::RealTime,
            block_ms: 20,
            trailing_silence_ms: 0,
            lose_after_ms: None,
        }
    }
}

/// A WAV file played as if it were a microphone. The channel closes after the last block.
pub struct WavSource {
    name: String,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl WavSource {
    /// Opens `path` and starts delivering blocks at its own rate and channel count.
    pub fn start(
        path: &Path,
        config: WavSourceConfig,
    ) -> Result<(WavSource, Receiver<CaptureEvent>), AudioError> {
        let audio = wav::read(path)?;
        Ok(Self::from_buffer(audio, path.display().to_string(), config))
    }

    /// Plays `audio` (already in memory) as a source called `name`.
    pub fn from_buffer(
        mut audio: AudioBuffer,
        name: String,
        config: WavSourceConfig,
    ) -> (WavSource, Receiver<CaptureEvent>) {
        let channels = usize::from(audio.channels.max(1));
        let frames_per_ms = audio.sample_rate as usize / 1000;
        let silence = config.trailing_silence_ms as usize * frames_per_ms * channels;
        audio.samples.resize(audio.samples.len() + silence, 0.0);
        let block =
            (config.block_ms.max(1) as usize * audio.sample_rate as usize / 1000).max(1) * channels;
        let lose_at = config
            .lose_after_ms
            .map(|ms| ms as usize * audio.sample_rate as usize / 1000 * channels);
        let (tx, rx) = mpsc::sync_channel(QUEUE_BLOCKS);
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let (thread_stop, thread_dropped, thread_name) =
            (Arc::clone(&stop), Arc::clone(&dropped), name.clone());
        let block_time = Duration::from_secs_f64(
            (block / channels) as f64 / f64::from(audio.sample_rate.max(1)),
        );
        let thread = std::thread::Builder::new()
            .name("sotto-wav-source".into())
            .spawn(move || {
                let started = Instant::now();
                for (n, samples) in audio.samples.chunks(block).enumerate() {
                    if thread_stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if lose_at.is_some_and(|at| n * block >= at) {
                        let _ = tx.send(CaptureEvent::Lost(CaptureError::Lost {
                            device: thread_name,
                            reason: "the device was unplugged (simulated)".into(),
                        }));
                        return;
                    }
                    let event = CaptureEvent::Audio(AudioBuffer {
                        samples: samples.to_vec(),
                        channels: audio.channels,
                        sample_rate: audio.sample_rate,
                    });
                    match config.pace {
                        Pace::AsFastAsPossible => {
                            if tx.send(event).is_err() {
                                return;
                            }
                        }
                        Pace::RealTime => {
                            // Each block is delivered when it would have been recorded;
                            // sleeping to an absolute schedule does not drift.
                            let due = started + block_time * (n as u32 + 1);
                            std::thread::sleep(due.saturating_duration_since(Instant::now()));
                            match tx.try_send(event) {
                                Ok(()) => {}
                                Err(TrySendError::Full(_)) => {
                                    thread_dropped.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(TrySendError::Disconnected(_)) => return,
                            }
                        }
                    }
                }
            })
            .ok();
        (
            WavSource {
                name,
                stop,
                dropped,
                thread,
            },
            rx,
        )
    }
}

impl AudioSource for WavSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn dropped_blocks(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for WavSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The sending end of [`deferred_input`]: attach the source once the listener is ready.
pub struct DeferredInput {
    tx: mpsc::SyncSender<CaptureEvent>,
}

/// A capture channel whose source is attached later, so the assistant can be started on
/// the receiver before the source plays. A real-time source (a [`WavSource`], like a
/// microphone) drops blocks nobody takes, so one started while the engines load would lose
/// the start of what it says.
pub fn deferred_input() -> (DeferredInput, Receiver<CaptureEvent>) {
    let (tx, rx) = mpsc::sync_channel(QUEUE_BLOCKS);
    (DeferredInput { tx }, rx)
}

impl DeferredInput {
    /// Forwards every event of `source` (on a thread of its own) until either end closes.
    pub fn attach(self, source: Receiver<CaptureEvent>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("sotto-input-relay".into())
            .spawn(move || {
                for event in source {
                    if self.tx.send(event).is_err() {
                        return;
                    }
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deferred_input_delivers_everything_of_a_source_attached_later() {
        let (input, rx) = deferred_input();
        let audio = AudioBuffer {
            samples: vec![0.25; 16_000],
            channels: 1,
            sample_rate: 16_000,
        };
        let config = WavSourceConfig {
            pace: Pace::AsFastAsPossible,
            ..WavSourceConfig::default()
        };
        let (_source, blocks) = WavSource::from_buffer(audio, "test".into(), config);
        let relay = input.attach(blocks).expect("relay thread");
        let samples: usize = rx
            .iter()
            .map(|e| match e {
                CaptureEvent::Audio(b) => b.samples.len(),
                CaptureEvent::Lost(_) | CaptureEvent::Restored { .. } => 0,
            })
            .sum();
        assert_eq!(samples, 16_000, "every block, then the channel closes");
        relay.join().expect("relay ends");
    }

    fn tone(ms: u32, rate: u32, channels: u16) -> AudioBuffer {
        let frames = (ms * rate / 1000) as usize;
        AudioBuffer {
            samples: vec![0.25; frames * usize::from(channels)],
            channels,
            sample_rate: rate,
        }
    }

    #[test]
    fn real_time_pace_takes_as_long_as_the_audio() {
        let started = Instant::now();
        let (_source, events) =
            WavSource::from_buffer(tone(400, 48_000, 2), "t".into(), WavSourceConfig::default());
        let blocks: Vec<CaptureEvent> = events.iter().collect();
        let took = started.elapsed();
        assert_eq!(blocks.len(), 20);
        assert!(took >= Duration::from_millis(390), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
        let CaptureEvent::Audio(first) = &blocks[0] else {
            panic!("{:?}", blocks[0])
        };
        assert_eq!(
            (first.channels, first.sample_rate, first.frames()),
            (2, 48_000, 960)
        );
    }

    #[test]
    fn fast_pace_delivers_everything_plus_the_trailing_silence() {
        let config = WavSourceConfig {
            pace: Pace::AsFastAsPossible,
            trailing_silence_ms: 100,
            ..WavSourceConfig::default()
        };
        let (source, events) = WavSource::from_buffer(tone(1000, 16_000, 1), "t".into(), config);
        let samples: Vec<f32> = events
            .iter()
            .flat_map(|e| match e {
                CaptureEvent::Audio(b) => b.samples,
                CaptureEvent::Lost(e) => panic!("{e}"),
                CaptureEvent::Restored { device } => panic!("restored {device}"),
            })
            .collect();
        assert_eq!(samples.len(), 17_600);
        assert_eq!(samples[15_999], 0.25);
        assert_eq!(samples[16_000], 0.0);
        assert_eq!(source.dropped_blocks(), 0);
    }

    #[test]
    fn a_simulated_unplug_ends_the_stream_with_lost() {
        let config = WavSourceConfig {
            pace: Pace::AsFastAsPossible,
            lose_after_ms: Some(200),
            ..WavSourceConfig::default()
        };
        let (_source, events) = WavSource::from_buffer(tone(1000, 16_000, 1), "mic".into(), config);
        let all: Vec<CaptureEvent> = events.iter().collect();
        assert_eq!(all.len(), 11);
        assert!(
            matches!(&all[10], CaptureEvent::Lost(CaptureError::Lost { device, .. }) if device == "mic")
        );
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_panic() {
        let err = WavSource::start(Path::new("/nonexistent/x.wav"), WavSourceConfig::default())
            .err()
            .expect("refused");
        assert!(err.to_string().contains("/nonexistent/x.wav"), "{err}");
    }
}
