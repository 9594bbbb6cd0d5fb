//! Speech out: time to first audio and real-time factor per voice, and the same voice and
//! texts through the official `piper-tts` Python package for comparison.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde::Serialize;
use sotto_models::ModelStore;
use sotto_tts::split::{SentenceSplitter, SplitConfig};
use sotto_tts::CancellationToken;

use crate::quantile;

/// Two-sentence answers, as an assistant gives them.
const ANSWERS: [&str; 8] = [
    "Sure! The capital of France is Paris, which is known for the Eiffel Tower.",
    "It is currently sunny and twenty two degrees. Expect light rain in the evening.",
    "I set a timer for ten minutes. I will let you know when it is done.",
    "A week has seven days. The weekend is Saturday and Sunday.",
    "Good morning! You have three meetings today, the first one at nine.",
    "Water boils at one hundred degrees Celsius at sea level. At altitude, it boils sooner.",
    "Here is a tip for better sleep. Keep a regular bedtime and avoid screens late at night.",
    "The nearest planet to the sun is Mercury. It has no moons at all.",
];

/// The voices measured: the default voice and Kokoro's default speaker.
fn voices() -> [String; 2] {
    [
        sotto_models::default_model(sotto_models::ModelKind::Tts),
        "kokoro-82m-int8/af_heart".into(),
    ]
}

#[derive(Serialize)]
struct Row {
    engine: String,
    threads: usize,
    load_ms: f64,
    first_audio_ms_p50: f64,
    first_audio_ms_p95: f64,
    first_piece_audio_ms_p50: f64,
    rtf: f64,
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// Runs the TTS benchmark and prints its table.
pub fn run() -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();
    for id in voices() {
        let id = id.as_str();
        let loading = Instant::now();
        let mut voice = sotto_tts::load_voice(
            &store,
            id,
            std::env::var("TT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(threads),
        )?;
        let load_ms = ms(loading);
        voice.synthesize_all("Warming up.", 1.0)?;
        let (mut whole, mut piece) = (Vec::new(), Vec::new());
        let (mut spent, mut spoken) = (0.0, 0.0);
        for answer in ANSWERS {
            // The engine alone: the whole answer in, the first sentence's audio out.
            let started = Instant::now();
            let mut first = None;
            let mut audio_ms = 0.0;
            voice.synthesize(answer, 1.0, &CancellationToken::new(), &mut |chunk| {
                first.get_or_insert_with(|| ms(started));
                audio_ms += chunk.duration_ms();
            })?;
            spent += ms(started);
            spoken += audio_ms;
            whole.push(first.unwrap_or(f64::NAN));

            // As the voice turn does it: the splitter's first piece (released at a clause
            // when the first sentence is long) in, its audio out.
            let mut splitter = SentenceSplitter::new(SplitConfig::default());
            let mut pieces = splitter.push(answer);
            pieces.extend(splitter.finish());
            let started = Instant::now();
            let mut first = None;
            voice.synthesize(&pieces[0], 1.0, &CancellationToken::new(), &mut |_| {
                first.get_or_insert_with(|| ms(started));
            })?;
            piece.push(first.unwrap_or(f64::NAN));
        }
        rows.push(Row {
            engine: format!("Sotto {id}"),
            threads,
            load_ms,
            first_audio_ms_p50: quantile(&whole, 0.5),
            first_audio_ms_p95: quantile(&whole, 0.95),
            first_piece_audio_ms_p50: quantile(&piece, 0.5),
            rtf: spent / spoken,
        });
    }
    match reference(&store)? {
        Some(row) => rows.push(row),
        None => eprintln!(
            "(no piper-tts reference: set SOTTO_BENCH_PYTHON to a Python with `pip install piper-tts==1.8.0`)"
        ),
    }

    println!("\n### Speech out: two-sentence answers, {threads} threads\n");
    println!("| engine | load | first audio p50 | first audio p95 | first piece's audio p50 | real-time factor |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let piece = if r.first_piece_audio_ms_p50.is_nan() {
            "-".to_string()
        } else {
            format!("{:.0} ms", r.first_piece_audio_ms_p50)
        };
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {piece} | {:.3} |",
            r.engine, r.load_ms, r.first_audio_ms_p50, r.first_audio_ms_p95, r.rtf
        );
    }
    println!("\n```json\n{}\n```", serde_json::to_string_pretty(&rows)?);
    Ok(())
}

/// The same voice and texts through the `piper-tts` Python package, if one is installed.
fn reference(store: &ModelStore) -> anyhow::Result<Option<Row>> {
    let python = std::env::var_os("SOTTO_BENCH_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let venv = dirs::cache_dir()?.join("sotto/bench-venv/bin/python");
            venv.is_file().then_some(venv)
        });
    let Some(python) = python else {
        return Ok(None);
    };
    let model = store.require(&sotto_models::default_model(sotto_models::ModelKind::Tts))?;
    let script = std::env::temp_dir().join("sotto_piper_tts_reference.py");
    std::fs::write(&script, include_str!("../scripts/piper_tts_reference.py"))?;
    let mut texts = vec!["Warming up."];
    texts.extend(ANSWERS);
    let out = Command::new(&python)
        .arg(&script)
        .arg(model.main_file())
        .arg(serde_json::to_string(&texts)?)
        .output()?;
    if !out.status.success() {
        eprintln!(
            "(the piper-tts reference failed: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Ok(None);
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let runs = report["runs"].as_array().cloned().unwrap_or_default();
    let runs = &runs[1..];
    let field = |name: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[name].as_f64()).collect() };
    let first = field("first_audio_ms");
    Ok(Some(Row {
        engine: "piper-tts 1.8.0 (Python, onnxruntime 1.32)".into(),
        threads: 0,
        load_ms: report["load_ms"].as_f64().unwrap_or(f64::NAN),
        first_audio_ms_p50: quantile(&first, 0.5),
        first_audio_ms_p95: quantile(&first, 0.95),
        first_piece_audio_ms_p50: f64::NAN,
        rtf: field("total_ms").iter().sum::<f64>() / field("audio_ms").iter().sum::<f64>(),
    }))
}
