//! `sotto run --input Q.wav` and `sotto converse Q1.wav Q2.wav ...`: full voice turns,
//! headless. A virtual microphone speaks each question at real-time pace (silence
//! between them, as a real one would hear), the next question only once the previous
//! answer is over; the answers "play" into a WAV file at real-time pace; the events are
//! the same typed events the UI gets, one JSON object per line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sotto_audio::{AudioBuffer, ListenMode, Pace, Player};
use sotto_core::assemble::{self, Launch};
use sotto_core::settings::Settings;
use sotto_core::{Command, Event, Memory, TurnOutcome};
use sotto_models::ModelStore;
use sotto_store::turn_log::TurnLogs;

/// Options shared by `run` and `converse`.
#[derive(Args)]
pub struct TurnArgs {
    /// Write the spoken answers here (default: play them on the speakers).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write every event here, one JSON object per line (default: stdout).
    #[arg(long)]
    events: Option<PathBuf>,
    /// How questions are opened and closed: `ptt` (the key goes down when a question
    /// starts and up when it ends; `push_to_talk` and `toggle` mean the same here) or
    /// `handsfree` (voice activity detection finds the questions).
    #[arg(long, default_value = "ptt")]
    mode: ListenMode,
    /// The local language model (default: the manifest's default language model).
    #[arg(long)]
    llm: Option<String>,
    /// The voice (default: the manifest's default voice).
    #[arg(long)]
    voice: Option<String>,
    /// Keep the conversation in the history database in this folder (the app's is
    /// `~/.local/share/sotto/history`); by default a headless run keeps nothing.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Record each turn (input.wav, output.wav, turn.json) in a folder under this one.
    #[arg(long)]
    turn_logs: Option<PathBuf>,
    /// How many turn logs to keep (the oldest go first).
    #[arg(long, default_value_t = sotto_store::turn_log::DEFAULT_KEEP)]
    keep_logs: usize,
}

/// `sotto run` options.
#[derive(Args)]
pub struct RunArgs {
    /// The spoken question (WAV, any rate).
    #[arg(long)]
    input: PathBuf,
    /// Interrupt the answer this many milliseconds after the question starts.
    #[arg(long)]
    interrupt_at: Option<u64>,
    #[command(flatten)]
    turn: TurnArgs,
}

/// `sotto converse` options.
#[derive(Args)]
pub struct ConverseArgs {
    /// The spoken questions, in order (WAV, any rate).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    turn: TurnArgs,
}

/// Runs `sotto run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    turns(vec![args.input], args.interrupt_at, args.turn)
}

/// Runs `sotto converse`.
pub fn converse(args: ConverseArgs) -> anyhow::Result<ExitCode> {
    turns(args.inputs, None, args.turn)
}

fn turns(
    inputs: Vec<PathBuf>,
    interrupt_at: Option<u64>,
    args: TurnArgs,
) -> anyhow::Result<ExitCode> {
    let questions = inputs
        .iter()
        .map(|path| sotto_audio::wav::read(path).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(converse_turns(questions, interrupt_at, args))
}

/// The history (and turn logs) asked for on the command line.
fn memory(args: &TurnArgs) -> anyhow::Result<Option<Memory>> {
    let logs = args
        .turn_logs
        .as_ref()
        .map(|dir| TurnLogs::new(dir.clone(), args.keep_logs));
    let Some(dir) = &args.history else {
        anyhow::ensure!(logs.is_none(), "--turn-logs needs --history");
        return Ok(None);
    };
    let opened = sotto_store::Store::open(dir)?;
    if let Some(moved) = &opened.moved_aside {
        eprintln!("{moved}");
    }
    Ok(Some(Memory::new(Arc::new(opened.store), logs)))
}

fn duration_ms(audio: &AudioBuffer) -> u64 {
    audio.samples.len() as u64 * 1000
        / u64::from(audio.sample_rate.max(1))
        / u64::from(audio.channels.max(1))
}

async fn converse_turns(
    questions: Vec<AudioBuffer>,
    interrupt_at: Option<u64>,
    args: TurnArgs,
) -> anyhow::Result<ExitCode> {
    let store = ModelStore::open_default()?;
    let mode = args.mode;
    let player = Arc::new(match &args.out {
        Some(path) => Player::wav(path, 24_000, Pace::RealTime)?,
        None => Player::speaker(None).map_err(|e| {
            anyhow::anyhow!(
                "{e}. Connect one, or pass --out REPLY.wav to write the answers to a file"
            )
        })?,
    });
    let defaults = Settings::default();
    let settings = Settings {
        mode,
        llm_model: args.llm.clone().unwrap_or(defaults.llm_model.clone()),
        voice: args.voice.clone().unwrap_or(defaults.voice.clone()),
        ..defaults
    };
    let (mic_tx, mic_rx) = mpsc::sync_channel(256);
    let (say_tx, say_rx) = mpsc::channel();
    let mic = sotto_audio::spawn_virtual_microphone(say_rx, mic_tx)?;
    let launch = Launch {
        intents: assemble::default_intents_path(),
        memory: memory(&args)?,
        ..Launch::new(Arc::clone(&player), mic_rx)
    };
    let started = assemble::start(&store, &settings, launch).await?;
    let (assistant, mut events) = (started.assistant, started.events);
    let mut out: Box<dyn Write + Send> = match &args.events {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };

    let mut outcomes = Vec::new();
    for question in questions {
        let length = Duration::from_millis(duration_ms(&question));
        if !mode.is_hands_free() {
            assistant.send(Command::StartListening);
        }
        let asked = tokio::time::Instant::now();
        say_tx
            .send(question)
            .context("the virtual microphone stopped")?;
        let mut released = mode.is_hands_free();
        let mut interrupt = interrupt_at.map(|ms| asked + Duration::from_millis(ms));
        let outcome = loop {
            let release = (!released).then_some(asked + length);
            let next = [release, interrupt].into_iter().flatten().min();
            let wait = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.recv() => {
                    let event = event.context("the assistant stopped")?;
                    // Line by line, so the file can be followed while the turn runs.
                    writeln!(out, "{}", serde_json::to_string(&event)?)?;
                    out.flush()?;
                    if let Event::TurnFinished { outcome, user_text, heard_text, timings, .. } = &event {
                        if *outcome != TurnOutcome::NoSpeech {
                            eprintln!("{}", summary(*outcome, user_text, heard_text, timings));
                        }
                    }
                    match event {
                        Event::TurnFinished { outcome: TurnOutcome::NoSpeech, .. }
                            if released && !mode.is_hands_free() =>
                        {
                            break TurnOutcome::NoSpeech;
                        }
                        Event::TurnFinished { outcome, .. } if outcome != TurnOutcome::NoSpeech => {
                            break outcome;
                        }
                        _ => {}
                    }
                }
                () = wait => {
                    let now = tokio::time::Instant::now();
                    if !released && now >= asked + length {
                        released = true;
                        assistant.send(Command::StopListening);
                    }
                    if interrupt.is_some_and(|at| now >= at) {
                        interrupt = None;
                        assistant.send(Command::Interrupt);
                        // Interrupting opens listening (push-to-talk): the key goes up at once.
                        assistant.send(Command::StopListening);
                    }
                }
            }
        };
        outcomes.push(outcome);
    }
    // Let the events of the last turn's wrap-up through, then stop.
    assistant.send(Command::Shutdown);
    while let Ok(event) = events.recv().await {
        writeln!(out, "{}", serde_json::to_string(&event)?)?;
    }
    out.flush()?;
    drop(say_tx);
    drop(assistant);
    let _ = mic.join();
    player.finish()?;
    let answered = outcomes
        .iter()
        .filter(|o| matches!(o, TurnOutcome::Answered | TurnOutcome::Interrupted))
        .count();
    eprintln!("[{answered} of {} questions answered]", outcomes.len());
    Ok(if answered == outcomes.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One finished turn for a person: what was heard, what was answered, how fast.
fn summary(
    outcome: TurnOutcome,
    user_text: &str,
    heard_text: &str,
    timings: &sotto_core::Timings,
) -> String {
    let v2v = timings.v2v_ms.map_or_else(
        || "no spoken answer".to_string(),
        |ms| format!("{ms:.0} ms"),
    );
    let how = match outcome {
        TurnOutcome::Answered => String::new(),
        other => format!(" ({})", format!("{other:?}").to_lowercase()),
    };
    format!("heard:  {user_text:?}\nanswer: {heard_text:?}{how}\nvoice to voice: {v2v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_summary_says_what_was_heard_answered_and_how_fast() {
        let timings = sotto_core::Timings {
            v2v_ms: Some(812.4),
            ..sotto_core::Timings::default()
        };
        assert_eq!(
            summary(TurnOutcome::Answered, "What is the capital of France?", "Paris.", &timings),
            "heard:  \"What is the capital of France?\"\nanswer: \"Paris.\"\nvoice to voice: 812 ms"
        );
        let cut = summary(
            TurnOutcome::Interrupted,
            "Tell me a story",
            "Once",
            &Default::default(),
        );
        assert!(
            cut.ends_with("(interrupted)\nvoice to voice: no spoken answer"),
            "{cut}"
        );
    }
}
