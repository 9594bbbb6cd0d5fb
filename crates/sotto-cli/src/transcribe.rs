//! `sotto transcribe FILE.wav`: speech to text from a file, any rate or channel count.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sotto_models::ModelStore;
use sotto_stt::{CancelFlag, Segment, SttConfig, WhisperStt};

/// `sotto transcribe` options.
#[derive(Args)]
pub struct TranscribeArgs {
    /// The WAV file (any sample rate, mono or stereo, 8-32 bit or float).
    file: PathBuf,
    /// Print JSON: text, segments and timings.
    #[arg(long)]
    json: bool,
    /// The STT model id (default: the manifest's default speech-to-text model).
    #[arg(long)]
    model: Option<String>,
    /// Spoken language ("en"), or "auto" for multilingual models.
    #[arg(long, default_value = "en")]
    language: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Encoder context in 20 ms frames (1500 = whisper's full 30 s window).
    #[arg(long)]
    audio_ctx: Option<u32>,
}

#[derive(Serialize)]
struct Output {
    text: String,
    segments: Vec<Segment>,
    audio_ms: u64,
    timings_ms: Timings,
}

#[derive(Serialize)]
struct Timings {
    load_model: u64,
    read_and_resample: u64,
    transcribe: u64,
}

/// Runs `sotto transcribe`.
pub fn run(args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    let store = ModelStore::open_default()?;
    let mut config = SttConfig {
        language: args.language,
        audio_ctx: args.audio_ctx,
        ..SttConfig::default()
    };
    if let Some(threads) = args.threads {
        config.threads = threads;
    }
    let started = Instant::now();
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| sotto_models::default_model(sotto_models::ModelKind::Stt));
    let stt = WhisperStt::load(&store, &model, config)?;
    let load_model = started.elapsed().as_millis() as u64;

    let started = Instant::now();
    let audio = sotto_audio::wav::read(&args.file)?;
    let samples = sotto_audio::to_mono_16k(&audio).context("converting to 16 kHz mono")?;
    let read_and_resample = started.elapsed().as_millis() as u64;

    let transcript = stt.transcribe(&samples, &CancelFlag::default())?;
    if args.json {
        let out = Output {
            text: transcript.text,
            segments: transcript.segments,
            audio_ms: transcript.audio_ms,
            timings_ms: Timings {
                load_model,
                read_and_resample,
                transcribe: transcript.elapsed_ms,
            },
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", transcript.text);
    }
    Ok(ExitCode::SUCCESS)
}
