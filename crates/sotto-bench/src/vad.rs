//! Voice activity detection: CPU time per frame for each detector, on real speech.

use std::time::Instant;

use sotto_audio::vad::Aggressiveness;
use sotto_audio::{VadKind, SPEECH_RATE};
use sotto_models::ModelStore;

/// Runs the VAD benchmark and prints its table.
pub fn run() -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let jfk = sotto_audio::wav::read(store.require("sample-jfk")?.main_file())?;
    let audio = sotto_audio::to_mono_16k(&jfk)?;
    let audio_ms = audio.len() as f64 * 1000.0 / f64::from(SPEECH_RATE);
    println!("\n### Voice activity detection: jfk.wav ({audio_ms:.0} ms), one thread\n");
    println!("| detector | frame | CPU per frame | real-time factor |");
    println!("|---|---|---|---|");
    let detectors = [
        (
            "webrtc-vad (aggressive)",
            VadKind::WebRtc {
                aggressiveness: Aggressiveness::Aggressive,
            },
        ),
        ("Silero VAD v6", VadKind::Silero),
    ];
    for (name, kind) in detectors {
        let mut vad = kind.build(&store)?;
        let frame = vad.frame_len();
        // Warm up once (Silero's first run allocates), then time five passes.
        for chunk in audio.chunks_exact(frame) {
            vad.speech_probability(chunk)?;
        }
        let started = Instant::now();
        let mut frames = 0usize;
        for _ in 0..5 {
            vad.reset();
            for chunk in audio.chunks_exact(frame) {
                vad.speech_probability(chunk)?;
                frames += 1;
            }
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let per_frame_us = elapsed_ms * 1000.0 / frames as f64;
        let frame_ms = frame as f64 * 1000.0 / f64::from(SPEECH_RATE);
        println!(
            "| {name} | {frame_ms:.0} ms | {per_frame_us:.1} µs | {:.4} |",
            per_frame_us / 1000.0 / frame_ms
        );
    }
    Ok(())
}
