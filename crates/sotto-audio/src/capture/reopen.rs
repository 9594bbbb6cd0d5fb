//! The microphone as the assistant keeps it: a [`Capture`] opened again when it fails.
//!
//! A lost device is reported once ([`CaptureEvent::Lost`]); it is then tried again every
//! `retry` until it opens, which is reported as [`CaptureEvent::Restored`]. Audio keeps
//! flowing on the same channel, so the listener never needs a new source. The supervision
//! itself ([`supervise`]) knows nothing of cpal: it is tested with scripted devices.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Capture, CaptureError, CaptureEvent, QUEUE_BLOCKS};

/// How often a lost microphone is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);

/// How long the forwarding loop waits for audio before it looks for a stop request.
const POLL: Duration = Duration::from_millis(50);

/// A microphone that comes back: dropping it stops the supervision and the device.
pub struct Microphone {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
}

/// An open device as [`supervise`] holds it: whatever keeps it running, and its events.
type Opened<G> = (G, Receiver<CaptureEvent>);

impl Microphone {
    /// Opens `device` (by name) or the default input and keeps it open. The first open is
    /// tried before this returns: its device name or its error is the second value. On an
    /// error the device is tried again every [`RETRY_EVERY`], so one plugged in later is
    /// picked up ([`CaptureEvent::Restored`]).
    pub fn start(
        device: Option<String>,
    ) -> std::io::Result<(
        Microphone,
        Result<String, CaptureError>,
        Receiver<CaptureEvent>,
    )> {
        let open = move || {
            Capture::start(device.as_deref()).map(|(capture, events)| {
                let name = capture.device().to_string();
                ((capture, events), name)
            })
        };
        Self::supervised(open, RETRY_EVERY)
    }

    /// [`Microphone::start`] over any way of opening a device (tests script one).
    fn supervised<G: Send + 'static>(
        mut open: impl FnMut() -> Result<(Opened<G>, String), CaptureError> + Send + 'static,
        retry: Duration,
    ) -> std::io::Result<(
        Microphone,
        Result<String, CaptureError>,
        Receiver<CaptureEvent>,
    )> {
        let (out, events) = mpsc::sync_channel(QUEUE_BLOCKS);
        let (stop_tx, stop) = mpsc::channel();
        let (first, name) = match open() {
            Ok((opened, name)) => (Some(opened), Ok(name)),
            Err(e) => (None, Err(e)),
        };
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        let thread = std::thread::Builder::new()
            .name("sotto-microphone".into())
            .spawn(move || supervise(open, first, &out, retry, &stop, &counted))?;
        let microphone = Microphone {
            stop: Some(stop_tx),
            thread: Some(thread),
            dropped,
        };
        Ok((microphone, name, events))
    }

    /// Blocks dropped because the listener fell behind.
    pub fn dropped_blocks(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Microphone {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Forwards the open device's audio to `out`; when it is lost, says so once and opens it
/// again every `retry` until it works. Returns when `stop` says so (or is dropped) or
/// nobody reads `out`.
fn supervise<G>(
    mut open: impl FnMut() -> Result<(Opened<G>, String), CaptureError>,
    mut current: Option<Opened<G>>,
    out: &SyncSender<CaptureEvent>,
    retry: Duration,
    stop: &Receiver<()>,
    dropped: &AtomicU64,
) {
    loop {
        match current.take() {
            Some((device, events)) => {
                if !forward(&events, out, stop, dropped) {
                    return;
                }
                // Lost: the stream goes before the device is tried again.
                drop(device);
            }
            None => {
                match stop.recv_timeout(retry) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                match open() {
                    Ok((opened, name)) => {
                        tracing::info!("the microphone \"{name}\" works again");
                        if out.send(CaptureEvent::Restored { device: name }).is_err() {
                            return;
                        }
                        current = Some(opened);
                    }
                    Err(e) => tracing::debug!("the microphone is still missing: {e}"),
                }
            }
        }
    }
}

/// Passes one device's events on until it is lost (true) or the supervision ends (false).
fn forward(
    events: &Receiver<CaptureEvent>,
    out: &SyncSender<CaptureEvent>,
    stop: &Receiver<()>,
    dropped: &AtomicU64,
) -> bool {
    loop {
        match stop.try_recv() {
            Err(TryRecvError::Empty) => {}
            Ok(()) | Err(TryRecvError::Disconnected) => return false,
        }
        let lost = match events.recv_timeout(POLL) {
            Ok(CaptureEvent::Audio(block)) => {
                match out.try_send(CaptureEvent::Audio(block)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return false,
                }
                continue;
            }
            Ok(CaptureEvent::Restored { .. }) | Err(RecvTimeoutError::Timeout) => continue,
            Ok(CaptureEvent::Lost(error)) => error,
            // The capture thread ended without a word: as good as unplugged.
            Err(RecvTimeoutError::Disconnected) => CaptureError::Lost {
                device: "microphone".into(),
                reason: "its capture stopped".into(),
            },
        };
        return out.send(CaptureEvent::Lost(lost)).is_ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AudioBuffer;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// A device the test plugs and unplugs: each open takes the next scripted answer.
    struct Script {
        opens: Mutex<VecDeque<Result<Receiver<CaptureEvent>, CaptureError>>>,
        tries: AtomicU64,
    }

    fn block(value: f32) -> CaptureEvent {
        CaptureEvent::Audio(AudioBuffer {
            samples: vec![value; 160],
            channels: 1,
            sample_rate: 16_000,
        })
    }

    fn missing() -> CaptureError {
        CaptureError::NoDevice {
            wanted: None,
            available: Vec::new(),
        }
    }

    fn unplugged() -> CaptureError {
        CaptureError::Lost {
            device: "USB mic".into(),
            reason: "the device is not available".into(),
        }
    }

    fn start(
        script: &Arc<Script>,
    ) -> (
        Microphone,
        Result<String, CaptureError>,
        Receiver<CaptureEvent>,
    ) {
        let script = Arc::clone(script);
        let open = move || {
            script.tries.fetch_add(1, Ordering::Relaxed);
            let next = script
                .opens
                .lock()
                .ok()
                .and_then(|mut opens| opens.pop_front())
                .unwrap_or_else(|| Err(missing()));
            next.map(|events| (((), events), "USB mic".to_string()))
        };
        Microphone::supervised(open, Duration::from_millis(20)).expect("thread")
    }

    fn next(events: &Receiver<CaptureEvent>) -> CaptureEvent {
        events
            .recv_timeout(Duration::from_secs(5))
            .expect("an event within 5 s")
    }

    fn samples(event: &CaptureEvent) -> Option<f32> {
        match event {
            CaptureEvent::Audio(b) => b.samples.first().copied(),
            _ => None,
        }
    }

    #[test]
    fn an_unplugged_microphone_is_reported_once_and_picked_up_when_it_is_back() {
        let (first_tx, first) = mpsc::sync_channel(8);
        let (second_tx, second) = mpsc::sync_channel(8);
        let script = Arc::new(Script {
            // Unplugged, then missing twice, then back.
            opens: Mutex::new(VecDeque::from([
                Ok(first),
                Err(missing()),
                Err(missing()),
                Ok(second),
            ])),
            tries: AtomicU64::new(0),
        });
        let (microphone, name, events) = start(&script);
        assert_eq!(name.ok().as_deref(), Some("USB mic"));
        first_tx.send(block(0.1)).expect("send");
        assert_eq!(samples(&next(&events)), Some(0.1));
        first_tx
            .send(CaptureEvent::Lost(unplugged()))
            .expect("send");
        // A failing stream may call back again: still one report.
        let _ = first_tx.send(CaptureEvent::Lost(unplugged()));
        assert!(
            matches!(next(&events), CaptureEvent::Lost(CaptureError::Lost { .. })),
            "lost"
        );
        assert!(
            matches!(next(&events), CaptureEvent::Restored { device } if device == "USB mic"),
            "restored"
        );
        assert_eq!(script.tries.load(Ordering::Relaxed), 4);
        second_tx.send(block(0.2)).expect("send");
        assert_eq!(samples(&next(&events)), Some(0.2));
        assert_eq!(microphone.dropped_blocks(), 0);
        drop(microphone);
        assert!(
            events.recv_timeout(Duration::from_secs(1)).is_err(),
            "nothing after the microphone is dropped"
        );
    }

    #[test]
    fn a_microphone_missing_at_start_is_picked_up_when_plugged_in() {
        let (tx, plugged) = mpsc::sync_channel(8);
        let script = Arc::new(Script {
            opens: Mutex::new(VecDeque::from([Err(missing()), Ok(plugged)])),
            tries: AtomicU64::new(0),
        });
        let (_microphone, name, events) = start(&script);
        assert!(matches!(name, Err(CaptureError::NoDevice { .. })));
        assert!(matches!(next(&events), CaptureEvent::Restored { .. }));
        tx.send(block(0.3)).expect("send");
        assert_eq!(samples(&next(&events)), Some(0.3));
    }

    #[test]
    fn a_capture_that_ends_without_a_word_counts_as_lost() {
        let (tx, first) = mpsc::sync_channel(8);
        let script = Arc::new(Script {
            opens: Mutex::new(VecDeque::from([Ok(first)])),
            tries: AtomicU64::new(0),
        });
        let (microphone, _, events) = start(&script);
        drop(tx);
        assert!(matches!(next(&events), CaptureEvent::Lost(_)));
        // Still missing: no more events, and dropping the microphone ends it promptly.
        assert!(events.recv_timeout(Duration::from_millis(200)).is_err());
        drop(microphone);
    }
}
