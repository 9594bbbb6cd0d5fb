//! The mouth: a thread that owns the voice, turns pieces of the answer into speech and
//! queues it on the player, keeping track of where each piece lies in the output so the
//! turn can tell what the user actually heard.
//!
//! Before its first piece the mouth warms the voice up ([`Tts::warm_up`]): the voice's
//! runtime takes the memory for its longest sentence once, at start, instead of growing
//! during the first hours of use. It runs only while nothing else does: the orchestrator
//! stops it as a question begins ([`MouthQueue::stop_warming`]: a key press, speech heard,
//! a typed question) and any work sent to the mouth stops it too ([`MouthQueue::send`]),
//! so an answer never waits for it and shares the cores with it for at most one run's
//! cancellation (a few milliseconds).

use std::sync::mpsc::{self, Receiver, SendError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use sotto_audio::AudioBuffer;
use sotto_tts::{CancellationToken, Tts, TtsError};
use tokio::sync::mpsc::UnboundedSender;

use crate::output::AudioOut;

/// Work for the mouth.
pub enum Say {
    /// Speak `text` as piece `index` of turn `turn`, unless `cancel` fires first.
    Piece {
        /// The turn.
        turn: u64,
        /// The piece's text.
        text: String,
        /// The turn's cancellation.
        cancel: CancellationToken,
    },
    /// Play already-made audio (an instant answer) as one piece.
    Audio {
        /// The turn.
        turn: u64,
        /// What it says.
        text: String,
        /// The audio.
        samples: Vec<f32>,
        /// Its rate.
        sample_rate: u32,
        /// The turn's cancellation.
        cancel: CancellationToken,
    },
    /// No more pieces for turn `turn`.
    End {
        /// The turn.
        turn: u64,
    },
}

/// What the mouth reports.
#[derive(Debug)]
pub enum Spoken {
    /// The first audio of the turn went to the player.
    FirstAudio {
        /// The turn.
        turn: u64,
        /// When.
        at: Instant,
    },
    /// A piece is queued at output samples `start..end` of the player's count.
    Queued {
        /// The turn.
        turn: u64,
        /// Its text.
        text: String,
        /// First output sample.
        start: u64,
        /// One past the last.
        end: u64,
        /// The piece's audio at the voice's rate, when the mouth records (turn logs).
        audio: Option<AudioBuffer>,
    },
    /// Everything of the turn is queued; playback ends at output sample `end`.
    Done {
        /// The turn.
        turn: u64,
        /// One past the last sample.
        end: u64,
    },
    /// The voice failed.
    Failed {
        /// The turn.
        turn: u64,
        /// Why.
        error: TtsError,
    },
}

/// The orchestrator's side of the mouth.
pub struct MouthQueue {
    /// Work for the mouth's thread.
    jobs: Sender<Say>,
    /// Cancelled by the first work sent: stops the voice's warm-up.
    warming: CancellationToken,
}

impl MouthQueue {
    /// Queues `job`, stopping the warm-up first if it still runs.
    pub fn send(&self, job: Say) -> Result<(), SendError<Say>> {
        self.stop_warming();
        self.jobs.send(job)
    }

    /// Stops the voice's warm-up if it still runs (a question is beginning).
    pub fn stop_warming(&self) {
        self.warming.cancel();
    }
}

impl Drop for MouthQueue {
    /// An assistant that stops before its first answer does not leave the voice warming.
    fn drop(&mut self) {
        self.warming.cancel();
    }
}

/// Starts the mouth with `voice`, playing on `player`; with `record`, each queued piece
/// also carries its audio. Returns the queue its work goes to.
pub fn spawn(
    voice: Box<dyn Tts>,
    player: Arc<dyn AudioOut>,
    speed: f32,
    record: bool,
    out: UnboundedSender<Spoken>,
) -> std::io::Result<(MouthQueue, JoinHandle<()>)> {
    let (jobs_tx, jobs) = mpsc::channel();
    let warming = CancellationToken::new();
    let queue = MouthQueue {
        jobs: jobs_tx,
        warming: warming.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("sotto-mouth".into())
        .spawn(move || speak(voice, player, speed, record, jobs, out, warming))?;
    Ok((queue, thread))
}

/// The mouth's thread: warms the voice up, then speaks each job as it comes.
fn speak(
    mut voice: Box<dyn Tts>,
    player: Arc<dyn AudioOut>,
    speed: f32,
    record: bool,
    jobs: Receiver<Say>,
    out: UnboundedSender<Spoken>,
    warming: CancellationToken,
) {
    let warming_up = Instant::now();
    match voice.warm_up(speed, &warming) {
        Ok(()) => tracing::debug!(
            stopped = warming.is_cancelled(),
            ms = warming_up.elapsed().as_millis(),
            "voice warmed up"
        ),
        // The voice's own turn will report a real failure; this only costs memory.
        Err(e) => tracing::warn!("the voice's warm-up failed: {e}"),
    }
    let mut current: Option<u64> = None;
    let mut position = 0u64;
    let mut first_sent = false;
    let out_rate = u64::from(player.output_rate());
    while let Ok(job) = jobs.recv() {
        let turn = match &job {
            Say::Piece { turn, .. } | Say::Audio { turn, .. } | Say::End { turn } => *turn,
        };
        if current != Some(turn) {
            // A new turn starts where the player is now (the last one finished or
            // was stopped, so nothing of it is queued).
            current = Some(turn);
            position = player.played_samples() + player.queued_samples() as u64;
            first_sent = false;
        }
        let report_first = |first_sent: &mut bool| {
            if !*first_sent {
                *first_sent = true;
                let _ = out.send(Spoken::FirstAudio {
                    turn,
                    at: Instant::now(),
                });
            }
        };
        match job {
            Say::Piece { text, cancel, .. } => {
                if cancel.is_cancelled() {
                    continue;
                }
                // Each sentence's audio is queued the moment it exists.
                let start = position;
                let mut length = 0u64;
                let mut failed = None;
                let mut recorded: Option<AudioBuffer> = None;
                let result = voice.synthesize(&text, speed, &cancel, &mut |chunk| {
                    if cancel.is_cancelled() || failed.is_some() {
                        return;
                    }
                    if let Err(e) = player.play(&chunk.samples, chunk.sample_rate) {
                        failed = Some(TtsError::Run(e.to_string()));
                        return;
                    }
                    report_first(&mut first_sent);
                    if record {
                        recorded
                            .get_or_insert_with(|| AudioBuffer {
                                samples: Vec::new(),
                                channels: 1,
                                sample_rate: chunk.sample_rate,
                            })
                            .samples
                            .extend_from_slice(&chunk.samples);
                    }
                    length +=
                        chunk.samples.len() as u64 * out_rate / u64::from(chunk.sample_rate.max(1));
                });
                position += length;
                if let Some(error) = result.err().or(failed) {
                    let _ = out.send(Spoken::Failed { turn, error });
                    continue;
                }
                if length > 0 {
                    let _ = out.send(Spoken::Queued {
                        turn,
                        text,
                        start,
                        end: position,
                        audio: recorded,
                    });
                }
            }
            Say::Audio {
                text,
                samples,
                sample_rate,
                cancel,
                ..
            } => {
                if cancel.is_cancelled() {
                    continue;
                }
                if let Err(e) = player.play(&samples, sample_rate) {
                    let _ = out.send(Spoken::Failed {
                        turn,
                        error: TtsError::Run(e.to_string()),
                    });
                    continue;
                }
                report_first(&mut first_sent);
                let start = position;
                position += samples.len() as u64 * out_rate / u64::from(sample_rate.max(1));
                let audio = record.then_some(AudioBuffer {
                    samples,
                    channels: 1,
                    sample_rate,
                });
                let _ = out.send(Spoken::Queued {
                    turn,
                    text,
                    start,
                    end: position,
                    audio,
                });
            }
            Say::End { .. } => {
                let _ = player.end_of_stream();
                let _ = out.send(Spoken::Done {
                    turn,
                    end: position,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use sotto_tts::AudioChunk;
    use tokio::sync::mpsc::unbounded_channel;

    use super::*;
    use crate::fakes::FakePlayer;

    /// A voice whose warm-up lasts until it is stopped (ten seconds at most, so a mouth
    /// that never stops it fails the test instead of hanging it).
    struct SlowToWarm {
        warming: Arc<AtomicBool>,
        stopped: Arc<AtomicBool>,
    }

    impl Tts for SlowToWarm {
        fn voice_id(&self) -> &str {
            "slow-to-warm"
        }

        fn sample_rate(&self) -> u32 {
            16_000
        }

        fn warm_up(&mut self, _speed: f32, cancel: &CancellationToken) -> Result<(), TtsError> {
            self.warming.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !cancel.is_cancelled() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            self.stopped.store(cancel.is_cancelled(), Ordering::SeqCst);
            Ok(())
        }

        fn synthesize(
            &mut self,
            _text: &str,
            _speed: f32,
            _cancel: &CancellationToken,
            on_chunk: &mut dyn FnMut(AudioChunk),
        ) -> Result<(), TtsError> {
            on_chunk(AudioChunk {
                samples: vec![0.0; 1600],
                sample_rate: 16_000,
            });
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_voice_warms_up_at_start_and_the_first_piece_stops_it() {
        let warming = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(AtomicBool::new(false));
        let voice = SlowToWarm {
            warming: Arc::clone(&warming),
            stopped: Arc::clone(&stopped),
        };
        let (out, mut spoken) = unbounded_channel();
        let (queue, _thread) = spawn(
            Box::new(voice),
            Arc::new(FakePlayer::instant()),
            1.0,
            false,
            out,
        )
        .expect("mouth thread");
        let began = Instant::now();
        while !warming.load(Ordering::SeqCst) {
            assert!(
                began.elapsed() < Duration::from_secs(5),
                "no warm-up at start"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let asked = Instant::now();
        queue
            .send(Say::Piece {
                turn: 1,
                text: "Hello.".into(),
                cancel: CancellationToken::new(),
            })
            .expect("mouth alive");
        let first = tokio::time::timeout(Duration::from_secs(5), spoken.recv())
            .await
            .expect("the piece waited for the whole warm-up");
        assert!(matches!(first, Some(Spoken::FirstAudio { turn: 1, .. })));
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "the piece waited {:?} for the warm-up",
            asked.elapsed()
        );
        assert!(
            stopped.load(Ordering::SeqCst),
            "the warm-up was not told to stop"
        );
    }
}
