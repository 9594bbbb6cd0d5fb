//! Microphone capture with cpal.
//!
//! A dedicated thread builds and owns the stream (cpal streams may not move between
//! threads). The device callback only converts to f32 and hands the block to a bounded
//! channel; it never blocks, and if the consumer falls behind it drops the block and
//! counts it rather than stalling the audio thread. Errors after start that stop the stream
//! (a device unplugged mid-turn) arrive on the same channel as [`CaptureEvent::Lost`];
//! [`Microphone`] opens the device again when it comes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::AudioBuffer;

pub mod reopen;
pub use reopen::Microphone;

/// Blocks the channel holds before new ones are dropped (a few seconds of audio).
pub(crate) const QUEUE_BLOCKS: usize = 256;

/// Why the microphone could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// No input device, or not the one asked for.
    #[error("{}", no_device_message(wanted.as_deref(), available))]
    NoDevice {
        /// The device asked for, if any.
        wanted: Option<String>,
        /// The input devices that exist.
        available: Vec<String>,
    },
    /// The device exists but would not start.
    #[error("the microphone \"{device}\" could not be opened: {reason}")]
    Open {
        /// The device.
        device: String,
        /// cpal's reason.
        reason: String,
    },
    /// The device stopped delivering audio (unplugged, taken by another program).
    #[error("the microphone \"{device}\" stopped working: {reason}. Plug it back in or choose another microphone.")]
    Lost {
        /// The device.
        device: String,
        /// cpal's reason.
        reason: String,
    },
}

fn no_device_message(wanted: Option<&str>, available: &[String]) -> String {
    let list = if available.is_empty() {
        "none".to_string()
    } else {
        available.join(", ")
    };
    match wanted {
        Some(name) => format!("there is no microphone called \"{name}\" (available: {list})"),
        None => format!("no microphone was found (available: {list})"),
    }
}

/// cpal's messages end in a period; ours continue the sentence.
fn sentence(reason: &str) -> String {
    reason.trim_end_matches('.').to_string()
}

/// What the capture thread delivers.
#[derive(Debug)]
pub enum CaptureEvent {
    /// A block of audio as the device gave it (interleaved, device rate).
    Audio(AudioBuffer),
    /// The device failed; no more audio will come from it.
    Lost(CaptureError),
    /// The device opened again after [`CaptureEvent::Lost`] (or after failing to open at
    /// first): audio follows ([`crate::capture::Microphone`] sends it).
    Restored {
        /// The device's name.
        device: String,
    },
}

/// Whether a stream error means the stream stopped. A glitch (an overrun), a reroute the
/// backend followed, or a refused real-time priority leave it running.
pub fn stops_the_stream(kind: cpal::ErrorKind) -> bool {
    !matches!(
        kind,
        cpal::ErrorKind::Xrun | cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied
    )
}

/// An input device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputDevice {
    /// The name to choose it by.
    pub name: String,
    /// True for the system's default input.
    pub is_default: bool,
}

/// The input devices of the default audio host.
pub fn input_devices() -> Vec<InputDevice> {
    let host = crate::host::default_host();
    let default = host.default_input_device().map(|d| d.to_string());
    host.input_devices()
        .map(|devices| {
            devices
                .map(|d| {
                    let name = d.to_string();
                    InputDevice {
                        is_default: Some(&name) == default.as_ref(),
                        name,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A running microphone. Dropping it stops the stream and joins its thread.
pub struct Capture {
    device: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
}

impl Capture {
    /// Opens `device` (by name) or the default input, and starts delivering blocks.
    pub fn start(device: Option<&str>) -> Result<(Capture, Receiver<CaptureEvent>), CaptureError> {
        let host = crate::host::default_host();
        let chosen = match device {
            Some(name) => host
                .input_devices()
                .ok()
                .and_then(|mut all| all.find(|d| d.to_string() == name)),
            None => host.default_input_device(),
        };
        let Some(chosen) = chosen else {
            return Err(CaptureError::NoDevice {
                wanted: device.map(str::to_owned),
                available: input_devices().into_iter().map(|d| d.name).collect(),
            });
        };
        let name = chosen.to_string();
        let (events_tx, events) = mpsc::sync_channel(QUEUE_BLOCKS);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), CaptureError>>();
        let dropped = Arc::new(AtomicU64::new(0));
        let thread_name = name.clone();
        let thread_dropped = Arc::clone(&dropped);
        let thread = std::thread::Builder::new()
            .name("sotto-capture".into())
            .spawn(move || {
                let stream = match open_stream(&chosen, &thread_name, events_tx, thread_dropped) {
                    Ok(stream) => stream,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                // Own the stream until asked to stop (or the Capture is dropped).
                let _ = stop_rx.recv();
                drop(stream);
            })
            .map_err(|e| CaptureError::Open {
                device: name.clone(),
                reason: format!("cannot start the capture thread: {e}"),
            })?;
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(CaptureError::Open {
                device: name.clone(),
                reason: "the capture thread stopped while opening the device".into(),
            })
        });
        let capture = Capture {
            device: name,
            stop: Some(stop_tx),
            thread: Some(thread),
            dropped,
        };
        started.map(|()| (capture, events))
    }

    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Blocks dropped because the consumer fell behind.
    pub fn dropped_blocks(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn open_stream(
    device: &cpal::Device,
    name: &str,
    events: SyncSender<CaptureEvent>,
    dropped: Arc<AtomicU64>,
) -> Result<cpal::Stream, CaptureError> {
    let open_error = |reason: String| CaptureError::Open {
        device: name.to_string(),
        reason: sentence(&reason),
    };
    let supported = device
        .default_input_config()
        .map_err(|e| open_error(e.to_string()))?;
    let config = supported.config();
    let (channels, rate) = (config.channels, config.sample_rate);
    let lost_events = events.clone();
    let lost_name = name.to_string();
    let reported = std::sync::atomic::AtomicBool::new(false);
    let on_error = move |e: cpal::Error| {
        if !stops_the_stream(e.kind()) {
            tracing::debug!("the microphone \"{lost_name}\" glitched: {e}");
            return;
        }
        // Once: a failed stream may go on calling back.
        if reported.swap(true, Ordering::Relaxed) {
            return;
        }
        let _ = lost_events.try_send(CaptureEvent::Lost(CaptureError::Lost {
            device: lost_name.clone(),
            reason: sentence(&e.to_string()),
        }));
    };
    // The callback: convert, hand over, never wait.
    let deliver = move |samples: Vec<f32>| {
        let block = CaptureEvent::Audio(AudioBuffer {
            samples,
            channels,
            sample_rate: rate,
        });
        if let Err(TrySendError::Full(_)) = events.try_send(block) {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    };
    let timeout = Some(Duration::from_secs(5));
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => device.build_input_stream::<f32, _, _>(
            config,
            move |data: &[f32], _: &_| deliver(data.to_vec()),
            on_error,
            timeout,
        ),
        cpal::SampleFormat::I16 => device.build_input_stream::<i16, _, _>(
            config,
            move |data: &[i16], _: &_| {
                deliver(data.iter().map(|&s| f32::from(s) / 32768.0).collect())
            },
            on_error,
            timeout,
        ),
        cpal::SampleFormat::I32 => device.build_input_stream::<i32, _, _>(
            config,
            move |data: &[i32], _: &_| {
                deliver(data.iter().map(|&s| s as f32 / 2_147_483_648.0).collect())
            },
            on_error,
            timeout,
        ),
        cpal::SampleFormat::U16 => device.build_input_stream::<u16, _, _>(
            config,
            move |data: &[u16], _: &_| {
                deliver(
                    data.iter()
                        .map(|&s| (f32::from(s) - 32768.0) / 32768.0)
                        .collect(),
                )
            },
            on_error,
            timeout,
        ),
        other => {
            return Err(open_error(format!(
                "its sample format {other:?} is not supported"
            )))
        }
    }
    .map_err(|e| open_error(e.to_string()))?;
    stream.play().map_err(|e| open_error(e.to_string()))?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_that_stop_the_stream_lose_the_microphone() {
        use cpal::ErrorKind as K;
        for glitch in [K::Xrun, K::DeviceChanged, K::RealtimeDenied] {
            assert!(!stops_the_stream(glitch), "{glitch:?}");
        }
        for fatal in [
            K::DeviceNotAvailable,
            K::StreamInvalidated,
            K::BackendError,
            K::DeviceBusy,
            K::HostUnavailable,
            K::PermissionDenied,
            K::Other,
        ] {
            assert!(stops_the_stream(fatal), "{fatal:?}");
        }
    }

    #[test]
    fn asking_for_a_microphone_that_does_not_exist_names_the_ones_that_do() {
        let err = Capture::start(Some("Sotto Test Mic That Does Not Exist"))
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(matches!(err, CaptureError::NoDevice { .. }), "{text}");
        assert!(
            text.contains("no microphone called \"Sotto Test Mic That Does Not Exist\""),
            "{text}"
        );
        // The fact only: each front end gives advice in its own terms.
        assert!(
            text.contains("available:") && !text.contains("Settings"),
            "{text}"
        );
    }

    #[test]
    fn the_default_microphone_either_delivers_audio_or_says_why_not() {
        // This machine has no sound card: cpal offers at most ALSA's null device. Whatever
        // the machine, the answer is audio or a clear error, never a panic or a hang.
        match Capture::start(None) {
            Ok((capture, events)) => {
                // Audio, or the error that explains its absence: not silence forever.
                let first = events.recv_timeout(Duration::from_secs(3));
                assert!(first.is_ok(), "{}: nothing within 3 s", capture.device());
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("microphone"), "{text}");
            }
        }
    }
}
