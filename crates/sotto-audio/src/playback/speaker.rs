//! The sound card, through rodio. The device stream lives on its own thread (cpal
//! streams may not move between threads); the audio callback only copies samples out of
//! the queue.

use std::num::NonZero;
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
                let opened = open_mixer(wanted.as_deref());
                let sink = match opened {
                    Ok((sink, device)) => {
                        let config = sink.config();
                        let rate = config.sample_rate().get();
                        let queue = Arc::new(PlayQueue::new(rate));
                        sink.mixer().add(QueueSource {
                            queue: Arc::clone(&queue),
                            rate: config.sample_rate(),
                            block: vec![0.0; BLOCK],
                            at: BLOCK,
                        });
                        let _ = ready_tx.send(Ok((queue, device)));
                        sink
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Hold the stream open until the speaker is dropped.
                let _ = close_rx.recv();
                drop(sink);
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

fn open_mixer(name: Option<&str>) -> Result<(rodio::MixerDeviceSink, String), PlaybackError> {
    let no_device = || PlaybackError::NoDevice {
        name: name.map(str::to_string),
    };
    let host = cpal::default_host();
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
        .with_error_callback(|e| tracing::warn!("the output device failed: {e}"))
        .open_stream()
        .map_err(|e| open_failed(&e))?;
    Ok((sink, device_name))
}

/// Output device names, default first.
pub(crate) fn device_names() -> Vec<String> {
    let host = cpal::default_host();
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
