//! `sotto`: Sotto from the command line.

mod models;
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
