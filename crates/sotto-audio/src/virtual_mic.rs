//! A virtual microphone: silence at real-time pace, with each clip it is handed spoken
//! into it as it arrives, as a person would speak into a real one. Headless runs
//! (`sotto run`, `sotto converse`) and the app's test-only input use it.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::CaptureEvent;
use crate::AudioBuffer;

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
