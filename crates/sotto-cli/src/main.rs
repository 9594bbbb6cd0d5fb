//! `sotto`: Sotto from the command line.

mod chat;
mod keys;
mod models;
mod run;
mod say;
mod serve;
mod transcribe;

use clap::{Parser, Subcommand};

/// Sotto, a local-first desktop voice assistant.
#[derive(Parser)]
#[command(name = "sotto", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List, download, verify and convert models.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Transcribe a WAV file with whisper.cpp.
    Transcribe(transcribe::TranscribeArgs),
    /// Ask a language model; the answer streams to stdout.
    Chat(chat::ChatArgs),
    /// One full voice turn, headless: a spoken question in, the spoken answer out.
    Run(run::RunArgs),
    /// Several voice turns, headless: each question after the previous answer.
    Converse(run::ConverseArgs),
    /// Speak text with one of Sotto's voices (on the speakers, or --out FILE.wav).
    Say(say::SayArgs),
    /// Serve the local API (OpenAI-compatible speech and chat) on 127.0.0.1.
    Serve(serve::ServeArgs),
    /// Store, list and remove API keys in the system keychain.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// List microphones and check that the chosen (or default) one delivers audio.
    Devices {
        /// The microphone to check (default: the system's default input).
        #[arg(long)]
        input: Option<String>,
    },
}

/// `sotto devices`: the microphones, and whether the chosen one works.
fn devices(input: Option<&str>) -> anyhow::Result<std::process::ExitCode> {
    let all = sotto_audio::capture::input_devices();
    println!("microphones:");
    if all.is_empty() {
        println!("  (none)");
    }
    for d in &all {
        println!(
            "  {}{}",
            d.name,
            if d.is_default { "  (default)" } else { "" }
        );
    }
    let (capture, events) = sotto_audio::Capture::start(input)?;
    match events.recv_timeout(std::time::Duration::from_secs(3)) {
        Ok(sotto_audio::CaptureEvent::Audio(block)) => {
            println!(
                "\"{}\" delivers audio: {} Hz, {} channel(s)",
                capture.device(),
                block.sample_rate,
                block.channels
            );
            Ok(std::process::ExitCode::SUCCESS)
        }
        Ok(sotto_audio::CaptureEvent::Lost(e)) => Err(e.into()),
        Ok(sotto_audio::CaptureEvent::Restored { device }) => {
            anyhow::bail!("\"{device}\" reopened before it delivered audio")
        }
        Err(_) => anyhow::bail!(
            "\"{}\" opened but delivered no audio within 3 s",
            capture.device()
        ),
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOTTO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Models { command } => models::run(command),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Devices { input } => devices(input.as_deref()),
        Command::Chat(args) => chat::run(args),
        Command::Say(args) => say::run(args),
        Command::Run(args) => run::run(args),
        Command::Converse(args) => run::converse(args),
        Command::Keys { command } => keys::run(command),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
