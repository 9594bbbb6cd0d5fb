//! Speech recognition on its own thread: partial transcripts while the user speaks
//! through [`sotto_stt::partial::Utterance`] (settled words keep each decode bounded),
//! and the final one when they stop, which decodes only the audio after the settled words.
//! A partial still running when the final is asked for is abandoned, so the final never
//! waits for it.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sotto_stt::partial::Utterance;
use sotto_stt::{CancelFlag, SpeechToText, SttError, Transcript};
use tokio::sync::mpsc::UnboundedSender;

/// Work for the recogniser.
#[derive(Debug)]
pub enum SttJob {
    /// More audio of the open utterance.
    Audio(Vec<f32>),
    /// The user went quiet: decode what they said, to have the final ready if that was
    /// all (see [`Utterance::paused`]).
    Paused,
    /// They spoke again: the decode made at the pause is not the final.
    Resumed,
    /// The utterance is complete: transcribe all of it (the `u64` is the turn).
    Final(u64, Vec<f32>),
    /// Forget the open utterance.
    Reset,
}

/// What the recogniser produced.
#[derive(Debug)]
pub enum SttReply {
    /// The words so far (committed and not).
    Partial {
        /// The words.
        text: String,
        /// Decoded at the user's pause: all they said, and usually the final transcript.
        at_pause: bool,
        /// The same words as the partial before it (a decode at a pause reports its
        /// words even then: an answer may start on them).
        repeated: bool,
    },
    /// The final transcript of turn `.0`.
    Final(u64, Result<Transcript, SttError>),
}

/// What the recogniser is decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// A partial while the user speaks.
    Partial,
    /// Everything at the user's pause.
    Pause,
    /// A turn's final transcript.
    Final,
}

/// What the worker is decoding, and how many resets were asked for: a decode that starts
/// with a reset still queued behind it is abandoned before it begins (the reset may have
/// been sent before the worker took the job).
#[derive(Default)]
struct Decoding {
    /// The decode running now, if any, and which one it is (a final waits for the one
    /// made at a pause: it is usually the final itself).
    current: Option<(CancelFlag, Decode)>,
    /// [`SttJob::Reset`]s sent so far.
    resets_sent: u64,
}

/// The recogniser's handle: send jobs, and abandon a running decode.
pub struct SttWorker {
    jobs: std::sync::mpsc::Sender<SttJob>,
    /// The decode running now and the resets asked for, shared with the worker.
    running: Arc<Mutex<Decoding>>,
    _thread: JoinHandle<()>,
}

impl SttWorker {
    /// Starts the recogniser; partials every `interval_ms` of new audio (0: none).
    pub fn spawn(
        stt: Arc<dyn SpeechToText>,
        interval_ms: u32,
        out: UnboundedSender<SttReply>,
    ) -> std::io::Result<SttWorker> {
        let (jobs, rx) = std::sync::mpsc::channel();
        let running = Arc::new(Mutex::new(Decoding::default()));
        let decoding = Arc::clone(&running);
        let thread = std::thread::Builder::new()
            .name("sotto-stt".into())
            .spawn(move || run(stt.as_ref(), interval_ms, &rx, &out, &decoding))?;
        Ok(SttWorker {
            jobs,
            running,
            _thread: thread,
        })
    }

    /// Queues a job. A final or a pause abandons a running partial; resuming abandons
    /// the decode made at the pause; a reset abandons any decode, a final included (the
    /// turn was interrupted).
    pub fn send(&self, job: SttJob) {
        let abandons = |decode: Decode| match job {
            // A partial is stale once the user paused or stopped.
            SttJob::Final(..) | SttJob::Paused => decode == Decode::Partial,
            // The user speaks again: the decode made at the pause will not be used.
            SttJob::Resumed => decode == Decode::Pause,
            SttJob::Reset => true,
            SttJob::Audio(_) => false,
        };
        if let Ok(mut running) = self.running.lock() {
            if matches!(job, SttJob::Reset) {
                running.resets_sent += 1;
            }
            if let Some((flag, decode)) = running.current.as_ref() {
                if abandons(*decode) {
                    flag.cancel();
                }
            }
        }
        // Queued after the count went up: the worker never sees a reset it was not told of.
        let _ = self.jobs.send(job);
    }
}

fn run(
    stt: &dyn SpeechToText,
    interval_ms: u32,
    jobs: &Receiver<SttJob>,
    out: &UnboundedSender<SttReply>,
    running: &Mutex<Decoding>,
) {
    // Resets taken off the queue so far.
    let mut resets_done = 0u64;
    let decoding = |decode: Option<Decode>, resets_done: u64| -> CancelFlag {
        let flag = CancelFlag::default();
        if let Ok(mut r) = running.lock() {
            if decode.is_some() && r.resets_sent > resets_done {
                // A reset is queued behind this job: its result would be thrown away.
                flag.cancel();
            }
            r.current = decode.map(|d| (flag.clone(), d));
        }
        flag
    };
    let mut utterance = Utterance::new(stt, interval_ms);
    // The user is quiet since the last pause: partials would only decode silence.
    let mut quiet = false;
    // The words of the last partial sent for the open utterance.
    let mut last_sent: Option<String> = None;
    loop {
        // Block for the next job, then take every job already waiting, in order: a final
        // must not queue behind partials of audio it already covers.
        let Ok(first) = jobs.recv() else { return };
        let mut pending = vec![first];
        loop {
            match jobs.try_recv() {
                Ok(job) => pending.push(job),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let mut pause = false;
        for job in pending {
            match job {
                SttJob::Audio(samples) => utterance.push_audio(&samples),
                SttJob::Paused => {
                    pause = true;
                    quiet = true;
                    utterance.mark_pause();
                }
                SttJob::Resumed => {
                    pause = false;
                    quiet = false;
                    utterance.resumed();
                }
                SttJob::Final(turn, all) => {
                    // Ready already when nothing was said after the pause's decode;
                    // otherwise only the audio after the cut is decoded: the whole of
                    // an utterance under 8 s, a bounded tail of a longer one.
                    (pause, quiet) = (false, false);
                    last_sent = None;
                    let flag = decoding(Some(Decode::Final), resets_done);
                    let result = utterance.finish_over(&all, &flag);
                    decoding(None, resets_done);
                    if out.send(SttReply::Final(turn, result)).is_err() {
                        return;
                    }
                }
                SttJob::Reset => {
                    resets_done += 1;
                    (pause, quiet) = (false, false);
                    last_sent = None;
                    utterance.reset();
                }
            }
        }
        if pause || (utterance.partial_due() && !quiet) {
            let decode = if pause {
                Decode::Pause
            } else {
                Decode::Partial
            };
            let flag = decoding(Some(decode), resets_done);
            let result = if pause {
                utterance.paused(&flag)
            } else {
                utterance.partial(&flag)
            };
            decoding(None, resets_done);
            if let Ok(Some(text)) = result {
                let repeated = last_sent.as_deref() == Some(text.as_str());
                last_sent = Some(text.clone());
                if out
                    .send(SttReply::Partial {
                        text,
                        at_pause: pause,
                        repeated,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
