//! The mouth: a thread that owns the voice, turns pieces of the answer into speech and
//! queues it on the player, keeping track of where each piece lies in the output so the
//! turn can tell what the user actually heard.

use std::sync::mpsc::Receiver;
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

/// Starts the mouth with `voice`, playing on `player`; with `record`, each queued piece
/// also carries its audio.
pub fn spawn(
    mut voice: Box<dyn Tts>,
    player: Arc<dyn AudioOut>,
    speed: f32,
    record: bool,
    jobs: Receiver<Say>,
    out: UnboundedSender<Spoken>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sotto-mouth".into())
        .spawn(move || {
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
                            length += chunk.samples.len() as u64 * out_rate
                                / u64::from(chunk.sample_rate.max(1));
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
        })
}
