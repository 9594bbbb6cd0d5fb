//! The soak (`cargo xtask soak [--turns N]`): many turns on two long-lived assistants,
//! push-to-talk and hands-free, each with its own virtual microphone, real-time WAV
//! output, LLM worker and history store, on the default models. They take turns in blocks
//! of ten: six spoken questions, two spoken and interrupted once the answer plays, two
//! typed. Every turn must end answered, interrupted when that was the plan, or failed with
//! a message; none may hang (90 s each). Every 50 turns the resident memory and open file
//! descriptors of this process and of each worker are sampled (`target/soak/samples.csv`).
//!
//! At the end, against the sample at turn 100: memory at most 5 % higher, no more file
//! descriptors, and voice-to-voice p50 of the last 100 spoken turns within 10 % of the
//! first 100 (when there are 200 or more). A miss exits non-zero.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use sotto_audio::{AudioBuffer, ListenMode, Pace, Player};
use sotto_core::assemble::{self, Launch};
use sotto_core::memory::Memory;
use sotto_core::settings::Settings;
use sotto_core::{Assistant, AssistantState, Command, Event, TurnOutcome};
use sotto_models::ModelStore;
use sotto_store::Store;
use tokio::sync::broadcast;

use crate::quantile;

/// Short everyday questions, spoken by a voice other than the assistant's.
pub(crate) const QUESTIONS: [&str; 8] = [
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky?",
    "What is two plus two?",
    "What do bees make?",
    "What is the opposite of hot?",
    "Name a fruit that is yellow.",
    "How many legs does a spider have?",
];

/// The most a turn may take before the soak calls it hung.
const TURN_LIMIT: Duration = Duration::from_secs(90);

/// Turns between two samples of memory and descriptors.
const SAMPLE_EVERY: usize = 50;

/// What a turn of the soak does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Spoken,
    Interrupted,
    Typed,
}

/// The plan for turn `i` (0-based) of its block of ten.
fn plan(i: usize) -> Plan {
    match i % 10 {
        3 | 7 => Plan::Interrupted,
        4 | 8 => Plan::Typed,
        _ => Plan::Spoken,
    }
}

/// One long-lived assistant and what drives it.
struct Rig {
    mode: ListenMode,
    assistant: Assistant,
    events: broadcast::Receiver<Event>,
    microphone: std_mpsc::Sender<AudioBuffer>,
    _history: tempfile::TempDir,
}

/// One sample of resources.
struct Sample {
    turn: usize,
    rss_kib: u64,
    fds: usize,
}

/// Runs the soak for `turns` turns; fails when a turn hangs or a limit is missed.
pub fn run(turns: usize) -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    runtime.block_on(soak(turns))
}

async fn soak(turns: usize) -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let questions = crate::voice::spoken(&store, &QUESTIONS)?;
    let out =
        PathBuf::from(std::env::var("SOTTO_SOAK_DIR").unwrap_or_else(|_| "target/soak".into()));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut csv = std::fs::File::create(out.join("samples.csv"))?;
    writeln!(csv, "turn,rss_kib,fds,worker_rss_kib,worker_fds")?;
    let mut events_log = std::fs::File::create(out.join("events.ndjson"))?;
    let mut rigs = vec![
        rig(&store, ListenMode::PushToTalk, &out).await?,
        rig(&store, ListenMode::HandsFree, &out).await?,
    ];
    let workers_at_start = crate::voice::worker_pids();
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut v2v: Vec<(usize, f64)> = Vec::new();
    let mut outcomes = [0usize; 4];
    for turn in 0..turns {
        let rig = &mut rigs[(turn / 10) % 2];
        let planned = plan(turn);
        let question = &questions[turn % questions.len()];
        let text = QUESTIONS[turn % QUESTIONS.len()];
        let (outcome, timings) = one_turn(rig, planned, question, text, &mut events_log)
            .await
            .with_context(|| format!("turn {turn} ({planned:?}, {:?})", rig.mode))?;
        outcomes[outcome as usize] += 1;
        let expected = match planned {
            Plan::Interrupted => {
                matches!(outcome, TurnOutcome::Interrupted | TurnOutcome::Answered)
            }
            _ => matches!(outcome, TurnOutcome::Answered | TurnOutcome::Failed),
        };
        anyhow::ensure!(expected, "turn {turn} ({planned:?}) ended {outcome:?}");
        if planned == Plan::Spoken && outcome == TurnOutcome::Answered {
            if let Some(ms) = timings {
                v2v.push((turn, ms));
            }
        }
        if (turn + 1) % SAMPLE_EVERY == 0 || turn + 1 == turns {
            let sample = sample(turn + 1);
            let (worker_rss, worker_fds) = workers();
            writeln!(
                csv,
                "{},{},{},{},{}",
                sample.turn, sample.rss_kib, sample.fds, worker_rss, worker_fds
            )?;
            csv.flush()?;
            eprintln!(
                "soak: turn {} after {:.0} s: {} KiB, {} fds; workers {} KiB, {} fds",
                sample.turn,
                started.elapsed().as_secs_f64(),
                sample.rss_kib,
                sample.fds,
                worker_rss,
                worker_fds
            );
            samples.push(sample);
        }
    }
    let workers_at_end = crate::voice::worker_pids();
    for rig in rigs {
        rig.assistant.send(Command::Shutdown);
        rig.assistant.finished().await;
    }
    report(
        turns,
        &samples,
        &v2v,
        outcomes,
        &workers_at_start,
        &workers_at_end,
    )
}

async fn rig(store: &ModelStore, mode: ListenMode, out: &Path) -> anyhow::Result<Rig> {
    let name = if mode.is_hands_free() {
        "hands-free"
    } else {
        "push-to-talk"
    };
    let player = Arc::new(Player::wav(
        &out.join(format!("{name}-answers.wav")),
        24_000,
        Pace::RealTime,
    )?);
    let (clips_tx, clips) = std_mpsc::channel();
    let (blocks_tx, blocks) = std_mpsc::sync_channel(256);
    sotto_audio::spawn_virtual_microphone(clips, blocks_tx)?;
    let history = tempfile::tempdir()?;
    // `SOTTO_SOAK_HISTORY=off` leaves the history store out, to tell its memory from the
    // rest of the assistant's.
    let remember = std::env::var("SOTTO_SOAK_HISTORY").map_or(true, |v| v != "off");
    let settings = Settings {
        mode,
        max_tokens: 40,
        ..Settings::default()
    };
    let memory = if remember {
        let opened = Store::open(&history.path().join("history"))?;
        Some(Memory::new(Arc::new(opened.store), None))
    } else {
        None
    };
    let launch = Launch {
        memory,
        ..Launch::new(player, blocks)
    };
    let started = assemble::start(store, &settings, launch).await?;
    Ok(Rig {
        mode,
        assistant: started.assistant,
        events: started.events,
        microphone: clips_tx,
        _history: history,
    })
}

/// Asks one question as planned; returns how the turn ended and its voice-to-voice time.
async fn one_turn(
    rig: &mut Rig,
    planned: Plan,
    question: &AudioBuffer,
    text: &str,
    log: &mut std::fs::File,
) -> anyhow::Result<(TurnOutcome, Option<f64>)> {
    let deadline = tokio::time::Instant::now() + TURN_LIMIT;
    let push_to_talk = !rig.mode.is_hands_free();
    let spoken_ms = question.samples.len() as u64 * 1000 / u64::from(question.sample_rate);
    let mut release_at = None;
    if planned == Plan::Typed {
        rig.assistant.send(Command::SendText(text.into()));
    } else {
        if push_to_talk {
            rig.assistant.send(Command::StartListening);
            // The key comes up a moment after the last word, as a person lets go.
            release_at = Some(tokio::time::Instant::now() + Duration::from_millis(spoken_ms + 300));
        }
        rig.microphone
            .send(question.clone())
            .context("the virtual microphone stopped")?;
    }
    let mut interrupt_at = None;
    loop {
        let wake = [release_at, interrupt_at].into_iter().flatten().min();
        let event = tokio::select! {
            event = tokio::time::timeout_at(deadline, rig.events.recv()) => event,
            () = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = tokio::time::Instant::now();
                if release_at.is_some_and(|at| at <= now) {
                    release_at = None;
                    rig.assistant.send(Command::StopListening);
                }
                if interrupt_at.is_some_and(|at| at <= now) {
                    interrupt_at = None;
                    rig.assistant.send(Command::Interrupt);
                    if push_to_talk {
                        // Interrupting opens listening: the key goes up at once.
                        rig.assistant.send(Command::StopListening);
                    }
                }
                continue;
            }
        };
        let event = match event {
            Err(_) => anyhow::bail!("no end within {} s: the turn hung", TURN_LIMIT.as_secs()),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(broadcast::error::RecvError::Closed)) => anyhow::bail!("the assistant stopped"),
            Ok(Ok(event)) => event,
        };
        if let Ok(line) = serde_json::to_string(&event) {
            let _ = writeln!(log, "{line}");
        }
        match event {
            Event::StateChanged {
                state: AssistantState::Speaking,
                ..
            } if planned == Plan::Interrupted => {
                interrupt_at = Some(tokio::time::Instant::now() + Duration::from_millis(300));
            }
            Event::ErrorOccurred { message, .. } => eprintln!("soak: {message}"),
            // A cough of silence between questions (hands-free) is not a turn.
            Event::TurnFinished {
                outcome: TurnOutcome::NoSpeech,
                ..
            } => {}
            Event::TurnFinished {
                outcome, timings, ..
            } => {
                // Let the answer's sound and the rest state settle before the next turn.
                wait_for_rest(rig, deadline).await;
                return Ok((outcome, timings.v2v_ms));
            }
            _ => {}
        }
    }
}

/// Waits until the assistant is back at rest (idle or listening).
async fn wait_for_rest(rig: &mut Rig, deadline: tokio::time::Instant) {
    while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, rig.events.recv()).await {
        if let Event::StateChanged {
            state: AssistantState::Idle | AssistantState::Listening,
            ..
        } = event
        {
            // A breath between turns, as a person takes.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
    }
}

/// This process's resident memory and open descriptors.
fn sample(turn: usize) -> Sample {
    let (rss_kib, fds) = usage("self");
    Sample { turn, rss_kib, fds }
}

/// The workers' memory and descriptors, summed.
fn workers() -> (u64, usize) {
    crate::voice::worker_pids()
        .iter()
        .map(|pid| usage(pid))
        .fold((0, 0), |(r, f), (rss, fds)| (r + rss, f + fds))
}

/// VmRSS in KiB and the number of open descriptors of `/proc/<pid>`.
fn usage(pid: &str) -> (u64, usize) {
    let rss = crate::status_kib(pid, "VmRSS").unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}

fn report(
    turns: usize,
    samples: &[Sample],
    v2v: &[(usize, f64)],
    outcomes: [usize; 4],
    workers_at_start: &[String],
    workers_at_end: &[String],
) -> anyhow::Result<()> {
    let mut misses = Vec::new();
    println!("\n### Soak: {turns} turns\n");
    println!(
        "answered {}, interrupted {}, no speech {}, failed {}",
        outcomes[TurnOutcome::Answered as usize],
        outcomes[TurnOutcome::Interrupted as usize],
        outcomes[TurnOutcome::NoSpeech as usize],
        outcomes[TurnOutcome::Failed as usize]
    );
    if workers_at_start != workers_at_end {
        misses.push(format!(
            "the LLM workers changed ({workers_at_start:?} -> {workers_at_end:?}): one was restarted"
        ));
    }
    println!("\n| turn | RSS (MiB) | open fds |\n|---|---|---|");
    for s in samples {
        println!(
            "| {} | {:.1} | {} |",
            s.turn,
            s.rss_kib as f64 / 1024.0,
            s.fds
        );
    }
    let base = samples.iter().find(|s| s.turn >= 100);
    if let (Some(base), Some(last)) = (base, samples.last()) {
        let growth = last.rss_kib as f64 / base.rss_kib.max(1) as f64;
        println!(
            "\nRSS from turn {} to {}: x{growth:.3}; fds {} -> {}",
            base.turn, last.turn, base.fds, last.fds
        );
        if growth > 1.05 {
            misses.push(format!("memory grew x{growth:.3} after turn {}", base.turn));
        }
        if last.fds > base.fds {
            misses.push(format!(
                "open descriptors grew {} -> {}",
                base.fds, last.fds
            ));
        }
    }
    if v2v.len() >= 200 {
        let first: Vec<f64> = v2v[..100].iter().map(|(_, ms)| *ms).collect();
        let last: Vec<f64> = v2v[v2v.len() - 100..].iter().map(|(_, ms)| *ms).collect();
        let (a, b) = (quantile(&first, 0.5), quantile(&last, 0.5));
        println!(
            "v2v p50: first 100 spoken turns {a:.0} ms, last 100 {b:.0} ms (x{:.3})",
            b / a
        );
        if (b / a - 1.0).abs() > 0.10 {
            misses.push(format!("v2v p50 moved from {a:.0} to {b:.0} ms"));
        }
    }
    if misses.is_empty() {
        println!("\nEvery check passed.");
        Ok(())
    } else {
        anyhow::bail!("the soak missed: {}", misses.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_of_ten_has_six_spoken_two_interrupted_two_typed() {
        let block: Vec<Plan> = (0..10).map(plan).collect();
        let count = |p: Plan| block.iter().filter(|&&b| b == p).count();
        assert_eq!(
            (
                count(Plan::Spoken),
                count(Plan::Interrupted),
                count(Plan::Typed)
            ),
            (6, 2, 2)
        );
        assert_eq!((10..20).map(plan).collect::<Vec<_>>(), block);
    }
}
