//! Speech to text: time from the end of speech to the final transcript for short
//! utterances, real-time factor and word error rate, at whisper's full 30 s window and at
//! encoder contexts sized to the utterance.
//!
//! Utterances are spoken by espeak-ng (any sentence, reproducible); the end of speech is
//! the end of the clip, so the time measured is what push-to-talk waits after release.
//! Hands-free adds the endpointer's wait on top. Then the streaming table
//! ([`crate::stream`]): the recogniser as the voice turn runs it.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;
use sotto_models::ModelStore;
use sotto_stt::{word_error_rate, CancelFlag, SttConfig, WhisperStt};

use crate::quantile;

/// Fifteen requests of the kind people make of an assistant, 2 to 5 s spoken.
pub(crate) const UTTERANCES: &[&str] = &[
    "What time is it in Tokyo right now?",
    "Set a timer for ten minutes.",
    "What is the capital of Australia?",
    "How many ounces are in a pound?",
    "Remind me to call my mother tomorrow morning.",
    "What is the weather like this weekend?",
    "Tell me a short joke about computers.",
    "How do I convert Celsius to Fahrenheit?",
    "Who wrote the novel Pride and Prejudice?",
    "Play some quiet music for studying.",
    "Can you tell me how long it takes to boil an egg?",
    "What is the difference between a virus and a bacterium?",
    "Please add milk, eggs and bread to my shopping list.",
    "How far is it from London to Edinburgh by train?",
    "Explain in one sentence why the sky looks blue during the day.",
];

/// How the encoder context is chosen.
#[derive(Clone, Copy)]
enum Ctx {
    Fixed(u32),
    Sized,
    Auto,
}

#[derive(Serialize)]
struct Row {
    setting: String,
    utterances: usize,
    audio_ms_mean: f64,
    latency_ms_p50: f64,
    latency_ms_p95: f64,
    rtf_mean: f64,
    wer: f64,
}

/// `text` spoken by espeak-ng, 16 kHz mono.
pub(crate) fn speak(text: &str) -> anyhow::Result<Vec<f32>> {
    let dir = std::env::temp_dir().join(format!("sotto-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("u.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "165", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .context("running espeak-ng (apt-get install espeak-ng)")?;
    if !status.success() {
        bail!("espeak-ng failed on {text:?}");
    }
    let audio = sotto_audio::wav::read(&path)?;
    Ok(sotto_audio::to_mono_16k(&audio)?)
}

/// Runs the STT benchmark and prints its table.
pub fn run() -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let model = sotto_models::default_model(sotto_models::ModelKind::Stt);
    let clips: Vec<(&str, Vec<f32>)> = UTTERANCES
        .iter()
        .map(|t| speak(t).map(|a| (*t, a)))
        .collect::<anyhow::Result<_>>()?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // None = sized to each clip (its length in 20 ms frames, plus a margin).
    let settings: [(&str, Ctx); 6] = [
        ("full 30 s window (audio_ctx 1500)", Ctx::Fixed(1500)),
        ("audio_ctx 768 (15 s)", Ctx::Fixed(768)),
        ("audio_ctx 512 (10 s)", Ctx::Fixed(512)),
        ("audio_ctx 384 (7.7 s)", Ctx::Fixed(384)),
        ("audio_ctx = clip + 1 s, no floor", Ctx::Sized),
        ("default: clip + 1 s, at least 384", Ctx::Auto),
    ];
    let mut rows = Vec::new();
    let mut default_by_length: Vec<(f64, f64)> = Vec::new();
    for (name, ctx) in settings {
        let mut latencies = Vec::new();
        let mut rtfs = Vec::new();
        let mut audio_ms = Vec::new();
        let (mut errors, mut words) = (0.0, 0.0);
        for (text, audio) in &clips {
            let audio_ctx = match ctx {
                Ctx::Fixed(n) => Some(n),
                Ctx::Sized => Some(sized_ctx(audio.len())),
                Ctx::Auto => None,
            };
            let config = SttConfig {
                language: "en".into(),
                threads,
                audio_ctx,
            };
            let stt = WhisperStt::load(&store, &model, config)?;
            let started = Instant::now();
            let transcript = stt.transcribe(audio, &CancelFlag::default())?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let len_ms = audio.len() as f64 / 16.0;
            latencies.push(ms);
            if matches!(ctx, Ctx::Auto) {
                default_by_length.push((len_ms, ms));
            }
            rtfs.push(ms / len_ms);
            audio_ms.push(len_ms);
            let n = text.split_whitespace().count() as f64;
            errors += word_error_rate(text, &transcript.text) * n;
            words += n;
            eprintln!(
                "{name}: {:.0} ms for {:.0} ms: {:?}",
                ms, len_ms, transcript.text
            );
        }
        rows.push(Row {
            setting: name.into(),
            utterances: clips.len(),
            audio_ms_mean: audio_ms.iter().sum::<f64>() / audio_ms.len() as f64,
            latency_ms_p50: quantile(&latencies, 0.5),
            latency_ms_p95: quantile(&latencies, 0.95),
            rtf_mean: rtfs.iter().sum::<f64>() / rtfs.len() as f64,
            wer: errors / words,
        });
    }
    println!("\n### Speech to text: {model}, {threads} threads, greedy\n");
    println!(
        "| setting | clips | mean clip | end of speech -> final transcript p50 | p95 | RTF | WER |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.3} | {:.1} % |",
            r.setting,
            r.utterances,
            r.audio_ms_mean,
            r.latency_ms_p50,
            r.latency_ms_p95,
            r.rtf_mean,
            r.wer * 100.0
        );
    }
    println!("\n#### Default setting by utterance length\n");
    println!("| utterance length | clips | p50 | p95 |");
    println!("|---|---|---|---|");
    for (label, from, to) in [
        ("under 2.5 s", 0.0, 2_500.0),
        ("2.5 to 3.5 s", 2_500.0, 3_500.0),
        ("over 3.5 s", 3_500.0, f64::MAX),
    ] {
        let picked: Vec<f64> = default_by_length
            .iter()
            .filter(|(len, _)| (from..to).contains(len))
            .map(|(_, ms)| *ms)
            .collect();
        println!(
            "| {label} | {} | {:.0} ms | {:.0} ms |",
            picked.len(),
            quantile(&picked, 0.5),
            quantile(&picked, 0.95)
        );
    }
    println!("\n```json\n{}\n```", serde_json::to_string_pretty(&rows)?);
    crate::stream::run()
}

/// The clip plus 1 s in 20 ms frames, with no floor: what an unguarded tuning would pick.
fn sized_ctx(samples: usize) -> u32 {
    let frames = samples / 320 + 50;
    (frames as u32).clamp(64, 1500)
}
