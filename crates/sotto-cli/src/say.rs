//! `sotto say "TEXT"`: speak text with one of Sotto's voices, on the speakers or into a
//! WAV file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use sotto_audio::{Pace, Player};
use sotto_models::ModelStore;
use sotto_tts::cache::TtsCache;
use sotto_tts::split::{SentenceSplitter, SplitConfig};
use sotto_tts::CancellationToken;

/// `sotto say` options.
#[derive(Args)]
pub struct SayArgs {
    /// What to say (markdown and emoji are fine: they are not read aloud).
    text: String,
    /// The voice: a Piper model id, or `kokoro-82m-int8/SPEAKER` (af_heart, am_michael,
    /// bf_emma, ... 54 in all). Default: the manifest's default voice.
    #[arg(long)]
    voice: Option<String>,
    /// Speaking rate: 1.0 normal, 1.5 faster, 0.8 slower.
    #[arg(long, default_value_t = 1.0)]
    speed: f32,
    /// Write the speech to this WAV file instead of playing it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Synthesize even if the phrase is in the speech cache.
    #[arg(long)]
    no_cache: bool,
    /// CPU threads for the voice.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Runs `sotto say`.
pub fn run(args: SayArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.25..=4.0).contains(&args.speed),
        "--speed must be between 0.25 and 4"
    );
    let mut splitter = SentenceSplitter::new(SplitConfig::default());
    let mut pieces = splitter.push(&args.text);
    pieces.extend(splitter.finish());
    anyhow::ensure!(!pieces.is_empty(), "nothing in that text can be spoken");
    let store = ModelStore::open_default()?;
    let loading = Instant::now();
    let voice_id = args
        .voice
        .clone()
        .unwrap_or_else(|| sotto_models::default_model(sotto_models::ModelKind::Tts));
    let mut voice = sotto_tts::load_voice(&store, &voice_id, args.threads)?;
    let load_ms = loading.elapsed().as_millis();
    let player = match &args.out {
        Some(path) => Player::wav(path, voice.sample_rate(), Pace::AsFastAsPossible)?,
        None => Player::speaker(None).map_err(|e| {
            anyhow::anyhow!(
                "{e}. Connect one, or pass --out FILE.wav to write the speech to a file"
            )
        })?,
    };
    let cache = if args.no_cache {
        None
    } else {
        match TtsCache::open(
            &sotto_tts::cache::default_dir()?,
            sotto_tts::cache::DEFAULT_MAX_ENTRIES,
        ) {
            Ok(cache) => Some(cache),
            Err(e) => {
                eprintln!("warning: {e}; speaking without the cache");
                None
            }
        }
    };

    let started = Instant::now();
    let mut first_audio = None;
    let mut audio_ms = 0.0;
    let mut cached = 0;
    let cancel = CancellationToken::new();
    for piece in &pieces {
        let hit = match &cache {
            Some(cache) => cache.get(voice.voice_id(), args.speed, piece)?,
            None => None,
        };
        let audio = match hit {
            Some(audio) => {
                cached += 1;
                audio
            }
            None => {
                let mut samples = Vec::new();
                voice.synthesize(piece, args.speed, &cancel, &mut |chunk| {
                    first_audio.get_or_insert_with(|| started.elapsed());
                    samples.extend_from_slice(&chunk.samples);
                    // Play each sentence as soon as it exists.
                    if let Err(e) = player.play(&chunk.samples, chunk.sample_rate) {
                        eprintln!("warning: {e}");
                    }
                })?;
                let audio = sotto_tts::AudioChunk {
                    samples,
                    sample_rate: voice.sample_rate(),
                };
                if let Some(cache) = &cache {
                    cache.put(voice.voice_id(), args.speed, piece, &audio)?;
                }
                audio_ms += audio.duration_ms();
                continue;
            }
        };
        first_audio.get_or_insert_with(|| started.elapsed());
        audio_ms += audio.duration_ms();
        player.play(&audio.samples, audio.sample_rate)?;
    }
    let synth_ms = started.elapsed().as_secs_f64() * 1000.0;
    player.end_of_stream()?;
    let name = player.name();
    if args.out.is_some() {
        player.finish().context("writing the WAV file")?;
    } else {
        player.wait_until_idle(std::time::Duration::from_secs(600));
    }
    if let Some(cache) = &cache {
        cache.flush()?;
    }
    eprintln!(
        "[{}: {} piece(s){}, voice loaded in {load_ms} ms, first audio after {} ms, {:.0} ms of speech made in {synth_ms:.0} ms (RTF {:.3}) -> {name}]",
        voice_id,
        pieces.len(),
        if cached > 0 { format!(" ({cached} from the cache)") } else { String::new() },
        first_audio.map_or(0, |d| d.as_millis()),
        audio_ms,
        synth_ms / audio_ms.max(1.0),
    );
    Ok(ExitCode::SUCCESS)
}
