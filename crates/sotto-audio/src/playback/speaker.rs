//! The sound card, through rodio. The device stream lives on its own thread (cpal
//! streams may not move between threads); the audio callback only copies samples out of
//! the queue. A device that fails (unplugged) is opened again every
//! [`crate::capture::reopen::RETRY_EVERY`] on the same queue: what is queued meanwhile
//! waits, and the assistant's watchdog ends a turn that cannot be heard.

use std::num::NonZero;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use cpal::traits::HostTrait;
use rodio::stream::DeviceSinkBuilder;
use rodio::Source;

use super::queue::PlayQueue;
use super::PlaybackError;

/// Samples taken from the queue per lock: 256 is 5 ms at 48 kHz, the most a stop can lag.
const BLOCK: usize = 256;

/// An open output device.
pub(crate) struct Speaker {
    name: String,
    /// Dropping it ends the device thread, which closes the stream.
    _close: mpsc::Sender<()>,
}

impl Speaker {
    pub(crate) fn open(name: Option<&str>) -> Result<(Speaker, Arc<PlayQueue>), PlaybackError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (close_tx, close_rx) = mpsc::channel::<()>();
        let wanted = name.map(str::to_string);
        std::thread::Builder::new()
            .name("sotto-speaker".into())
            .spawn(move || {
                let lost = Arc::new(AtomicBool::new(false));
                let (sink, queue) = match open_mixer(wanted.as_deref(), &lost) {
                    Ok((sink, device)) => {
                        let rate = sink.config().sample_rate();
                        let queue = Arc::new(PlayQueue::new(rate.get()));
                        sink.mixer().add(QueueSource::new(&queue, rate));
                        let _ = ready_tx.send(Ok((Arc::clone(&queue), device)));
                        (sink, queue)
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let reopen = || {
                    open_mixer(wanted.as_deref(), &lost).map(|(sink, device)| {
                        tracing::info!("the output device \"{device}\" works again");
                        // rodio converts the queue's rate to the new device's.
                        let rate = NonZero::new(queue.rate()).unwrap_or(NonZero::<u32>::MIN);
                        sink.mixer().add(QueueSource::new(&queue, rate));
                        sink
                    })
                };
                keep_open(
                    sink,
                    reopen,
                    &lost,
                    &close_rx,
                    Duration::from_millis(200),
                    RETRY_EVERY,
                );
            })
            .map_err(|e| PlaybackError::Open {
                name: name.unwrap_or("default").to_string(),
                reason: e.to_string(),
            })?;
        let (queue, device) = ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| PlaybackError::Open {
                name: name.unwrap_or("default").to_string(),
                reason: "the device did not start within 5 s".into(),
            })??;
        Ok((
            Speaker {
                name: device,
                _close: close_tx,
            },
            queue,
        ))
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// Holds the open device (`sink`) until `close` says so (or is dropped), looking every
/// `poll` whether it failed (`lost`); a failed one is dropped and `reopen`ed every
/// `retry` until it works.
fn keep_open<S>(
    mut sink: S,
    mut reopen: impl FnMut() -> Result<S, PlaybackError>,
    lost: &AtomicBool,
    close: &mpsc::Receiver<()>,
    poll: Duration,
    retry: Duration,
) {
    let closed = |wait: Duration| {
        !matches!(
            close.recv_timeout(wait),
            Err(mpsc::RecvTimeoutError::Timeout)
        )
    };
    loop {
        if closed(poll) {
            return;
        }
        if !lost.load(Ordering::SeqCst) {
            continue;
        }
        tracing::warn!("the output device stopped; trying it again every few seconds");
        drop(sink);
        sink = loop {
            if closed(retry) {
                return;
            }
            lost.store(false, Ordering::SeqCst);
            match reopen() {
                Ok(sink) => break sink,
                Err(e) => tracing::debug!("the output device is still missing: {e}"),
            }
        };
    }
}

/// How often a failed output device is tried again.
const RETRY_EVERY: Duration = crate::capture::reopen::RETRY_EVERY;

fn open_mixer(
    name: Option<&str>,
    lost: &Arc<AtomicBool>,
) -> Result<(rodio::MixerDeviceSink, String), PlaybackError> {
    let no_device = || PlaybackError::NoDevice {
        name: name.map(str::to_string),
    };
    let host = crate::host::default_host();
    let device = match name {
        None => host.default_output_device().ok_or_else(no_device)?,
        Some(wanted) => host
            .output_devices()
            .map_err(|_| no_device())?
            .find(|d| d.to_string() == wanted)
            .ok_or_else(no_device)?,
    };
    let device_name = device.to_string();
    let open_failed = |e: &dyn std::fmt::Display| PlaybackError::Open {
        name: device_name.clone(),
        reason: e.to_string(),
    };
    let sink = DeviceSinkBuilder::from_device(device)
        .map_err(|e| {
            // The default "device" of a machine without a sound card cannot even say what
            // it plays: that is no device at all.
            tracing::debug!("the default output failed: {e}");
            if name.is_none() {
                no_device()
            } else {
                open_failed(&e)
            }
        })?
        .with_error_callback({
            let lost = Arc::clone(lost);
            move |e: cpal::Error| {
                if crate::capture::stops_the_stream(e.kind()) {
                    lost.store(true, Ordering::SeqCst);
                } else {
                    tracing::debug!("the output device glitched: {e}");
                }
            }
        })
        .open_stream()
        .map_err(|e| open_failed(&e))?;
    Ok((sink, device_name))
}

/// Output device names, default first.
pub(crate) fn device_names() -> Vec<String> {
    let host = crate::host::default_host();
    let default = host.default_output_device().map(|d| d.to_string());
    let mut names: Vec<String> = host
        .output_devices()
        .map(|devices| devices.map(|d| d.to_string()).collect())
        .unwrap_or_default();
    names.sort_by_key(|n| Some(n) != default.as_ref());
    names
}

/// An endless mono source that plays whatever the queue holds, silence otherwise.
struct QueueSource {
    queue: Arc<PlayQueue>,
    rate: NonZero<u32>,
    block: Vec<f32>,
    at: usize,
}

impl QueueSource {
    fn new(queue: &Arc<PlayQueue>, rate: NonZero<u32>) -> QueueSource {
        QueueSource {
            queue: Arc::clone(queue),
            rate,
            block: vec![0.0; BLOCK],
            at: BLOCK,
        }
    }
}

impl Iterator for QueueSource {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        if self.at == self.block.len() {
            self.queue.pull(&mut self.block);
            self.at = 0;
        }
        let sample = self.block[self.at];
        self.at += 1;
        Some(sample)
    }
}

impl Source for QueueSource {
    fn current_span_len(&self) -> Option<usize> {
        None
    }

    fn channels(&self) -> rodio::ChannelCount {
        NonZero::<u16>::MIN
    }

    fn sample_rate(&self) -> rodio::SampleRate {
        self.rate
    }

    fn total_duration(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// An open device that counts its closing.
    struct Device(Arc<AtomicUsize>);

    impl Drop for Device {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_failed_output_is_closed_and_opened_again_until_it_works() {
        let closed = Arc::new(AtomicUsize::new(0));
        let lost = Arc::new(AtomicBool::new(false));
        let opens = Arc::new(AtomicUsize::new(0));
        let (close_tx, close_rx) = mpsc::channel();
        let thread = {
            let (closed, lost, opens) =
                (Arc::clone(&closed), Arc::clone(&lost), Arc::clone(&opens));
            std::thread::spawn(move || {
                let reopen = || {
                    // Missing twice, then back.
                    let n = opens.fetch_add(1, Ordering::SeqCst);
                    if n < 2 {
                        Err(PlaybackError::NoDevice { name: None })
                    } else {
                        Ok(Device(Arc::clone(&closed)))
                    }
                };
                let first = Device(Arc::clone(&closed));
                keep_open(
                    first,
                    reopen,
                    &lost,
                    &close_rx,
                    Duration::from_millis(5),
                    Duration::from_millis(10),
                );
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            opens.load(Ordering::SeqCst),
            0,
            "a working device is left alone"
        );
        lost.store(true, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while opens.load(Ordering::SeqCst) < 3 {
            assert!(std::time::Instant::now() < deadline, "not reopened");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            closed.load(Ordering::SeqCst),
            1,
            "the failed device was closed first"
        );
        assert!(!lost.load(Ordering::SeqCst));
        drop(close_tx);
        thread
            .join()
            .expect("the device thread ends when the speaker goes");
        assert_eq!(closed.load(Ordering::SeqCst), 2);
    }
}
