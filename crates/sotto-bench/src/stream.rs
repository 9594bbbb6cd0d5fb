//! Streaming recognition, as the voice turn runs it: audio fed at real-time pace through
//! the push-to-talk listener to the recogniser thread (`sotto_core::stt_worker`, partials
//! every 600 ms, settled words past 8 s, the final decoded when the user goes quiet),
//! then the key released a moment after the end of speech. Measured: key release ->
//! final transcript by utterance length, word error rate against a decode of the whole
//! utterance at once (what the final was before), and the CPU spent on partials per
//! second of speech, now and as it was (every partial re-transcribing everything so far).
//!
//! Clips: espeak-ng questions (under 3 s), two or three of them joined (3-8 s and 8-20 s),
//! real speech (the JFK excerpt, 11 s; alsa-utils' spoken channel names, about 1 s), and
//! one 60 s dictation (the JFK excerpt five times with espeak sentences between).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sotto_audio::analysis::{speech_span_ms, SOUND_DBFS};
use sotto_audio::{
    Endpointer, EndpointerConfig, ListenEvent, ListenMode, Listener, ListenerConfig, SmartTurn,
    TurnDetector, VadKind, SPEECH_RATE,
};
use sotto_core::stt_worker::{SttJob, SttReply, SttWorker};
use sotto_models::ModelStore;
use sotto_stt::{word_error_rate, CancelFlag, SpeechToText, SttConfig, WhisperStt};

use crate::quantile;
use crate::stt::{speak, UTTERANCES};

/// What the voice turn uses.
const PARTIAL_INTERVAL_MS: u32 = 600;

/// The JFK excerpt's words.
const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

struct Clip {
    label: String,
    text: String,
    audio: Vec<f32>,
    real: bool,
}

#[derive(Serialize)]
struct Measured {
    clip: String,
    audio_ms: f64,
    real: bool,
    /// Key release -> final transcript, streaming (released [`RELEASE_AFTER_MS`] after
    /// the end of speech).
    final_ms: f64,
    /// A whole-utterance decode at the end of speech (the final before streaming).
    whole_ms: f64,
    /// End of speech -> the listener reporting the pause (when the pause decode, and the
    /// early answer, can start); `None` when no pause was reported before the release.
    pause_ms: Option<f64>,
    wer_stream: f64,
    wer_whole: f64,
    /// CPU seconds on partials per second of speech, streaming.
    partial_cpu_per_s: f64,
    /// The same for partials that re-transcribe everything (before); `None` when not
    /// measured (the dictation: minutes of decoding).
    partial_cpu_per_s_before: Option<f64>,
}

/// CPU time this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after the name.
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

fn silence(ms: usize) -> Vec<f32> {
    vec![0.0; ms * 16]
}

fn clips(store: &ModelStore) -> anyhow::Result<Vec<Clip>> {
    let mut spoken = Vec::new();
    for text in UTTERANCES {
        spoken.push((text.to_string(), speak(text)?));
    }
    let mut clips = Vec::new();
    for (text, audio) in spoken.iter().take(8) {
        clips.push(Clip {
            label: "espeak".into(),
            text: text.clone(),
            audio: audio.clone(),
            real: false,
        });
    }
    let join = |parts: &[&(String, Vec<f32>)]| {
        let mut text = Vec::new();
        let mut audio = Vec::new();
        for (t, a) in parts {
            text.push(t.as_str());
            audio.extend_from_slice(a);
            audio.extend(silence(300));
        }
        (text.join(" "), audio)
    };
    for pair in spoken.chunks(2).take(6) {
        let refs: Vec<&(String, Vec<f32>)> = pair.iter().collect();
        let (text, audio) = join(&refs);
        clips.push(Clip {
            label: "espeak, two questions".into(),
            text,
            audio,
            real: false,
        });
    }
    for group in spoken.chunks(4).take(3) {
        let refs: Vec<&(String, Vec<f32>)> = group.iter().collect();
        let (text, audio) = join(&refs);
        clips.push(Clip {
            label: "espeak, four questions".into(),
            text,
            audio,
            real: false,
        });
    }
    let jfk_path = store.require("sample-jfk")?.main_file().to_path_buf();
    let jfk = sotto_audio::to_mono_16k(&sotto_audio::wav::read(&jfk_path)?)?;
    clips.push(Clip {
        label: "JFK (real)".into(),
        text: JFK.into(),
        audio: jfk.clone(),
        real: true,
    });
    for (name, text) in [
        ("Front_Center.wav", "Front center"),
        ("Rear_Left.wav", "Rear left"),
        ("Side_Right.wav", "Side right"),
    ] {
        let path = std::path::Path::new("/usr/share/sounds/alsa").join(name);
        let audio = sotto_audio::wav::read(&path)
            .with_context(|| format!("{} (apt-get install alsa-utils)", path.display()))?;
        clips.push(Clip {
            label: "alsa-utils (real)".into(),
            text: text.into(),
            audio: sotto_audio::to_mono_16k(&audio)?,
            real: true,
        });
    }
    let mut text = Vec::new();
    let mut audio = Vec::new();
    for i in 0..5 {
        text.push(JFK.to_string());
        audio.extend_from_slice(&jfk);
        let (t, a) = &spoken[i % spoken.len()];
        text.push(t.clone());
        audio.extend_from_slice(a);
    }
    clips.push(Clip {
        label: "dictation".into(),
        text: text.join(" "),
        audio,
        real: true,
    });
    Ok(clips)
}

/// How long after the end of speech the user lets go of the key: people release a
/// little after their last word.
const RELEASE_AFTER_MS: u64 = 250;

/// Where speech ends in `audio` (16 kHz), in milliseconds: after the last 10 ms louder
/// than [`SOUND_DBFS`] (the whole clip when none is).
fn speech_end_ms(audio: &[f32]) -> u64 {
    speech_span_ms(audio, SPEECH_RATE, SOUND_DBFS).map_or(
        audio.len() as u64 * 1000 / u64::from(SPEECH_RATE),
        |(_, end)| end,
    )
}

/// One clip through the app's path at real-time pace: the push-to-talk listener (Silero
/// VAD) forwards the audio, its pauses and resumptions to the recogniser thread; the
/// key is released [`RELEASE_AFTER_MS`] after the end of speech. Returns (key release ->
/// final transcript, transcript, CPU seconds while speaking, end of speech -> the pause
/// reported before the release).
fn stream(
    stt: &Arc<WhisperStt>,
    store: &ModelStore,
    audio: &[f32],
) -> anyhow::Result<(f64, String, f64, Option<f64>)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = SttWorker::spawn(
        Arc::clone(stt) as Arc<dyn SpeechToText>,
        PARTIAL_INTERVAL_MS,
        tx,
    )?;
    let vad = VadKind::Silero.build(store)?;
    let mut listener = Listener::new(
        ListenerConfig {
            mode: ListenMode::PushToTalk,
            // The 66 s dictation is longer than the app's default limit (60 s, a setting
            // of up to 600 s): the limit sits past every clip, so the whole is heard.
            max_push_to_talk_ms: u32::try_from(audio.len() / 16)
                .unwrap_or(u32::MAX)
                .saturating_add(10_000),
            ..ListenerConfig::default()
        },
        Endpointer::new(vad, EndpointerConfig::default()),
    );
    // Where (stream ms) the pause standing now was reported.
    let paused_at = std::cell::Cell::new(None);
    let forward = |events: Vec<ListenEvent>| -> Option<Vec<f32>> {
        let mut closed = None;
        for event in events {
            match event {
                ListenEvent::UtteranceAudio { samples } => worker.send(SttJob::Audio(samples)),
                ListenEvent::Paused { at_ms } => {
                    paused_at.set(Some(at_ms));
                    worker.send(SttJob::Paused);
                }
                ListenEvent::Resumed { .. } => {
                    paused_at.set(None);
                    worker.send(SttJob::Resumed);
                }
                ListenEvent::Utterance { audio, .. } => closed = Some(audio),
                _ => {}
            }
        }
        closed
    };
    let end_ms = speech_end_ms(audio);
    let release_at = ((end_ms + RELEASE_AFTER_MS) * u64::from(SPEECH_RATE) / 1000) as usize;
    let mut input = audio[..release_at.min(audio.len())].to_vec();
    input.resize(release_at, 0.0);
    forward(listener.press());
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    for (i, block) in input.chunks(320).enumerate() {
        forward(listener.push(block)?);
        let due = started + Duration::from_millis(20 * (i as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let cpu = cpu_seconds() - cpu_before;
    let pause_ms = paused_at.get().map(|at| at as f64 - end_ms as f64);
    let released = Instant::now();
    let mut utterance = forward(listener.release());
    // Released while still speaking: the tail is taken, in real time.
    let mut silent = 0;
    while utterance.is_none() && silent < 100 {
        std::thread::sleep(Duration::from_millis(20));
        utterance = forward(listener.push(&[0.0; 320])?);
        silent += 1;
    }
    let utterance = utterance.context("the listener never closed the utterance")?;
    worker.send(SttJob::Final(1, utterance));
    loop {
        match rx.blocking_recv() {
            Some(SttReply::Final(_, result)) => {
                let ms = released.elapsed().as_secs_f64() * 1000.0;
                return Ok((ms, result?.text, cpu, pause_ms));
            }
            Some(SttReply::Partial { .. }) => {}
            None => anyhow::bail!("the recogniser stopped"),
        }
    }
}

/// CPU seconds the old partials (each re-transcribing everything so far) cost on `audio`.
fn partials_before(stt: &WhisperStt, audio: &[f32]) -> anyhow::Result<f64> {
    let step = PARTIAL_INTERVAL_MS as usize * 16;
    let started = cpu_seconds();
    let mut end = step;
    while end <= audio.len() {
        stt.transcribe(&audio[..end], &CancelFlag::default())?;
        end += step;
    }
    Ok(cpu_seconds() - started)
}

/// Runs the streaming benchmark and prints its tables.
pub fn run() -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let model = sotto_models::default_model(sotto_models::ModelKind::Stt);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stt = Arc::new(WhisperStt::load(
        &store,
        &model,
        SttConfig {
            threads,
            ..SttConfig::default()
        },
    )?);
    let clips = clips(&store)?;
    let mut measured = Vec::new();
    for clip in &clips {
        let seconds = clip.audio.len() as f64 / 16_000.0;
        let whole_started = Instant::now();
        let whole = stt.transcribe(&clip.audio, &CancelFlag::default())?;
        let whole_ms = whole_started.elapsed().as_secs_f64() * 1000.0;
        let (final_ms, text, cpu, pause_ms) = stream(&stt, &store, &clip.audio)?;
        let before = if seconds < 30.0 {
            Some(partials_before(&stt, &clip.audio)? / seconds)
        } else {
            None
        };
        let m = Measured {
            clip: clip.label.clone(),
            audio_ms: seconds * 1000.0,
            real: clip.real,
            final_ms,
            whole_ms,
            pause_ms,
            wer_stream: word_error_rate(&clip.text, &text),
            wer_whole: word_error_rate(&clip.text, &whole.text),
            partial_cpu_per_s: cpu / seconds,
            partial_cpu_per_s_before: before,
        };
        eprintln!(
            "{} ({:.1} s): final {:.0} ms (whole {:.0} ms), pause {}, WER {:.1} % (whole {:.1} %): {:?}",
            m.clip,
            seconds,
            m.final_ms,
            m.whole_ms,
            m.pause_ms
                .map_or("not before the release".into(), |p| format!("{p:+.0} ms")),
            m.wer_stream * 100.0,
            m.wer_whole * 100.0,
            text
        );
        measured.push(m);
    }
    println!("\n### Streaming recognition: {model}, {threads} threads, partials every {PARTIAL_INTERVAL_MS} ms\n");
    println!("Push-to-talk through the listener at real-time pace, key released {RELEASE_AFTER_MS} ms after the end of speech: key release -> final transcript (the final is decoded when the user goes quiet, and only the audio after the settled words), next to one decode of the whole utterance at the release (the final before); CPU seconds spent on partials per second of speech, now and re-transcribing everything every {PARTIAL_INTERVAL_MS} ms (before).\n");
    println!("| utterance length | clips | streaming p50 | p95 | whole p50 | p95 | partial CPU s/s | before |");
    println!("|---|---|---|---|---|---|---|---|");
    for (label, from, to) in [
        ("under 3 s", 0.0, 3_000.0),
        ("3-8 s", 3_000.0, 8_000.0),
        ("8-20 s", 8_000.0, 20_000.0),
        ("60 s dictation", 20_000.0, f64::MAX),
    ] {
        let picked: Vec<&Measured> = measured
            .iter()
            .filter(|m| (from..to).contains(&m.audio_ms))
            .collect();
        let of = |f: &dyn Fn(&Measured) -> f64| picked.iter().map(|m| f(m)).collect::<Vec<_>>();
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let before: Vec<f64> = picked
            .iter()
            .filter_map(|m| m.partial_cpu_per_s_before)
            .collect();
        println!(
            "| {label} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.2} | {} |",
            picked.len(),
            quantile(&of(&|m| m.final_ms), 0.5),
            quantile(&of(&|m| m.final_ms), 0.95),
            quantile(&of(&|m| m.whole_ms), 0.5),
            quantile(&of(&|m| m.whole_ms), 0.95),
            mean(of(&|m| m.partial_cpu_per_s)),
            if before.is_empty() {
                "not run".to_string()
            } else {
                format!("{:.2}", mean(before))
            }
        );
    }
    let pauses: Vec<f64> = measured.iter().filter_map(|m| m.pause_ms).collect();
    println!(
        "\nEnd of speech -> pause reported (the pause decode and an early answer start there): p50 {:.0} ms, p95 {:.0} ms; {} of {} clips before the release.",
        quantile(&pauses, 0.5),
        quantile(&pauses, 0.95),
        pauses.len(),
        measured.len()
    );
    println!("\n| clips | words | WER streaming | WER whole |");
    println!("|---|---|---|---|");
    for (label, real) in [("real speech", true), ("espeak-ng", false)] {
        let picked: Vec<(&Clip, &Measured)> = clips
            .iter()
            .zip(&measured)
            .filter(|(c, _)| c.real == real)
            .collect();
        let words: f64 = picked
            .iter()
            .map(|(c, _)| c.text.split_whitespace().count() as f64)
            .sum();
        let weighted = |f: &dyn Fn(&Measured) -> f64| {
            picked
                .iter()
                .map(|(c, m)| f(m) * c.text.split_whitespace().count() as f64)
                .sum::<f64>()
                / words.max(1.0)
        };
        println!(
            "| {label} | {words:.0} | {:.1} % | {:.1} % |",
            weighted(&|m| m.wer_stream) * 100.0,
            weighted(&|m| m.wer_whole) * 100.0
        );
    }
    turn_model_cost(&store, &clips)?;
    println!(
        "\n```json\n{}\n```",
        serde_json::to_string_pretty(&measured)?
    );
    Ok(())
}

/// The end-of-turn model's cost per call (it runs on the listening thread, one thread,
/// each time a pause reaches 200 ms in hands-free): every clip's audio, as the endpointer
/// hands it over, five times each.
fn turn_model_cost(store: &ModelStore, clips: &[Clip]) -> anyhow::Result<()> {
    let mut model = SmartTurn::load(store)?;
    let mut times = Vec::new();
    for clip in clips {
        let mut heard = clip.audio.clone();
        heard.extend(silence(200));
        for _ in 0..5 {
            let started = Instant::now();
            model.completion(&heard)?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    println!("\n### End-of-turn model: Smart Turn v3.2 (ONNX Runtime, 1 thread)\n");
    println!("| calls | p50 | p95 | max |");
    println!("|---|---|---|---|");
    println!(
        "| {} | {:.1} ms | {:.1} ms | {:.1} ms |",
        times.len(),
        quantile(&times, 0.5),
        quantile(&times, 0.95),
        times.iter().copied().fold(0.0, f64::max)
    );
    Ok(())
}
