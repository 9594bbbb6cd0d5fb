//! The ears: a thread that runs the [`Listener`] over an audio source and tells the
//! orchestrator what it heard. Key presses reach the listener between audio blocks (at
//! most one block, ~20 ms, late).

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sotto_audio::{CaptureEvent, ListenEvent, Listener};
use tokio::sync::mpsc::UnboundedSender;

/// What the orchestrator asks of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarsControl {
    /// Push-to-talk key pressed: open an utterance.
    Press,
    /// Key released: close it.
    Release,
    /// Drop the open utterance.
    Cancel,
    /// Close the open push-to-talk utterance if nothing has been said in it yet.
    ReleaseIfSilent,
}

/// What the ears heard.
#[derive(Debug)]
pub enum Heard {
    /// Hands-free: speech may be starting (heard for 90 ms, not yet an utterance);
    /// [`Heard::Started`] or [`Heard::NoSpeech`] follows.
    Onset,
    /// An utterance opened (speech onset, or a key press).
    Started,
    /// More audio of the open utterance (16 kHz mono).
    Audio(Vec<f32>),
    /// The user went quiet inside the utterance (it may be over).
    Paused,
    /// Speech again after [`Heard::Paused`].
    Resumed,
    /// The utterance is complete.
    Utterance {
        /// All of it, 16 kHz mono.
        audio: Vec<f32>,
        /// When the user stopped speaking (or released the key), on the wall clock.
        ended_at: Instant,
    },
    /// An utterance closed without speech in it.
    NoSpeech,
    /// The utterance reached the longest allowed (ms) and was closed; its
    /// [`Heard::Utterance`] follows.
    LimitReached(u64),
    /// The microphone failed or was unplugged.
    Lost(String),
    /// The microphone works again (plugged back in): the device's name.
    Restored(String),
    /// The echo canceller has learned the room: speech over the voice is the user's.
    EchoReady,
    /// The echo canceller failed: the assistant hears its own voice again (why).
    EchoStopped(String),
    /// The source ended (a WAV file played out).
    Ended,
}

/// Starts the ears on `source`.
pub fn spawn(
    source: Receiver<CaptureEvent>,
    mut listener: Listener,
    control: Receiver<EarsControl>,
    out: UnboundedSender<Heard>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sotto-ears".into())
        .spawn(move || loop {
            loop {
                let events = match control.try_recv() {
                    Ok(EarsControl::Press) => listener.press(),
                    Ok(EarsControl::Release) => listener.release(),
                    Ok(EarsControl::Cancel) => {
                        listener.cancel();
                        Vec::new()
                    }
                    Ok(EarsControl::ReleaseIfSilent) => listener.release_if_silent(),
                    Err(TryRecvError::Empty) => break,
                    // The orchestrator is gone: so are we.
                    Err(TryRecvError::Disconnected) => return,
                };
                if !forward(&listener, events, &out) {
                    return;
                }
            }
            let events = match source.recv_timeout(Duration::from_millis(20)) {
                Ok(event) => match listener.on_capture(event) {
                    Ok(events) => events,
                    Err(e) => listener.source_lost(e.to_string()),
                },
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    let events = listener.finish();
                    forward(&listener, events, &out);
                    let _ = out.send(Heard::Ended);
                    return;
                }
            };
            if !forward(&listener, events, &out) {
                return;
            }
        })
}

/// Passes listener events on; false once nobody listens.
fn forward(listener: &Listener, events: Vec<ListenEvent>, out: &UnboundedSender<Heard>) -> bool {
    for event in events {
        let heard = match event {
            ListenEvent::Level(_) => continue,
            ListenEvent::SpeechOnset { .. } => Heard::Onset,
            ListenEvent::UtteranceStarted { .. } => Heard::Started,
            ListenEvent::UtteranceAudio { samples } => Heard::Audio(samples),
            ListenEvent::Paused { .. } => Heard::Paused,
            ListenEvent::Resumed { .. } => Heard::Resumed,
            ListenEvent::Utterance { end_ms, audio, .. } => {
                // The event comes after the hangover (or key-release tail): date the end
                // of speech back to when it happened.
                let late = listener.stream_ms().saturating_sub(end_ms);
                let now = Instant::now();
                Heard::Utterance {
                    audio,
                    ended_at: now.checked_sub(Duration::from_millis(late)).unwrap_or(now),
                }
            }
            ListenEvent::NoSpeech { .. } => Heard::NoSpeech,
            ListenEvent::LimitReached { limit_ms } => Heard::LimitReached(limit_ms),
            ListenEvent::SourceLost { message, .. } => Heard::Lost(message),
            ListenEvent::SourceRestored { device } => Heard::Restored(device),
            ListenEvent::EchoCancellerReady => Heard::EchoReady,
            ListenEvent::EchoCancellerStopped { reason } => Heard::EchoStopped(reason),
        };
        if out.send(heard).is_err() {
            return false;
        }
    }
    true
}
