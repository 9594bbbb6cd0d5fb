//! Voice to voice: whole turns on the default local models, ten spoken questions in
//! push-to-talk and in hands-free mode, with the per-stage breakdown the turn itself
//! records; barge-in silence latency; peak memory of the app and the LLM worker.
//!
//! The questions are spoken by a Kokoro voice other than the assistant's and fed at
//! real-time pace as a microphone would; the answers play into a real-time WAV sink. In
//! push-to-talk the key goes up 250 ms after each question's sound ends (before
//! 2026-12-07 it went up at the end of the clip, about half a second later).
//! `SOTTO_BENCH_LLM=<model id>` runs it on another local model than the default.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sotto_audio::analysis::{speech_span_ms, SOUND_DBFS};
use sotto_audio::{AudioBuffer, ListenMode, Pace, Player, WavSource, WavSourceConfig};
use sotto_core::assemble::{self, Launch};
use sotto_core::settings::Settings;
use sotto_core::{Assistant, AssistantState, Command, Event, Timings, TurnOutcome};
use sotto_models::ModelStore;
use tokio::sync::broadcast;

use crate::quantile;

const QUESTIONS: [&str; 10] = [
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky?",
    "What is two plus two?",
    "Name a planet in our solar system.",
    "What language do people speak in Spain?",
    "What is the largest ocean?",
    "How many legs does a spider have?",
    "What do bees make?",
    "What is the opposite of hot?",
];

/// Silence after each question: room for the answer to play out.
const GAP_MS: u64 = 9_000;

#[derive(Serialize, Default)]
struct ModeRow {
    mode: String,
    turns: usize,
    v2v_p50: f64,
    v2v_p95: f64,
    stt_p50: f64,
    first_token_p50: f64,
    first_sentence_p50: f64,
    first_audio_p50: f64,
}

/// Runs the voice-to-voice benchmark and prints its tables.
pub fn run() -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    runtime.block_on(measure())
}

/// Questions the default intents answer at once.
const INSTANT_QUESTIONS: [&str; 5] = [
    "Who are you?",
    "Thank you very much.",
    "What can you do?",
    "Hello there!",
    "What is your name?",
];

pub(crate) fn spoken(store: &ModelStore, questions: &[&str]) -> anyhow::Result<Vec<AudioBuffer>> {
    let mut voice = sotto_tts::load_voice(store, "kokoro-82m-int8/am_michael", 2)?;
    questions
        .iter()
        .map(|q| {
            let audio = voice.synthesize_all(q, 1.0)?;
            Ok(AudioBuffer {
                samples: audio.samples,
                channels: 1,
                sample_rate: audio.sample_rate,
            })
        })
        .collect()
}

/// The key goes up this long after a question's sound ends (as the app bench and the
/// stream bench release it); the synthesized clips end with about half a second of
/// silence, which a person would not hold the key through.
const RELEASE_AFTER_MS: u64 = 250;

/// Where the sound of `samples` ends, in milliseconds: after the last 10 ms louder than
/// [`SOUND_DBFS`] (0 for silence; the stream bench's rule, and the app bench's).
fn sound_end_ms(samples: &[f32], rate: u32) -> u64 {
    speech_span_ms(samples, rate, SOUND_DBFS).map_or(0, |(_, end)| end)
}

/// The questions one after another with a gap after each; returns the audio and, per
/// question, its start and the key's release in milliseconds ([`RELEASE_AFTER_MS`] after
/// its sound ends).
fn programme(questions: &[AudioBuffer]) -> (AudioBuffer, Vec<(u64, u64)>) {
    let rate = questions[0].sample_rate;
    let mut samples = vec![0.0; rate as usize / 2];
    let mut spans = Vec::new();
    for q in questions {
        let start = samples.len() as u64 * 1000 / u64::from(rate);
        let sound = sound_end_ms(&q.samples, rate);
        samples.extend_from_slice(&q.samples);
        spans.push((start, start + sound + RELEASE_AFTER_MS));
        samples.resize(
            samples.len() + (GAP_MS * u64::from(rate) / 1000) as usize,
            0.0,
        );
    }
    (
        AudioBuffer {
            samples,
            channels: 1,
            sample_rate: rate,
        },
        spans,
    )
}

struct Session {
    assistant: Assistant,
    events: broadcast::Receiver<Event>,
    player: Arc<Player>,
    _source: WavSource,
}

async fn session(
    store: &ModelStore,
    mode: ListenMode,
    audio: AudioBuffer,
    intents: Option<std::path::PathBuf>,
) -> anyhow::Result<Session> {
    let out = std::env::temp_dir().join("sotto-bench-reply.wav");
    let player = Arc::new(Player::wav(&out, 24_000, Pace::RealTime)?);
    // The questions play once the engines are loaded.
    let (input, blocks) = sotto_audio::deferred_input();
    // The user's defaults, with repeatable, short answers.
    let defaults = Settings::default();
    let settings = Settings {
        mode,
        temperature: 0.0,
        max_tokens: 48,
        // Another local model, to compare it with the default in the same run.
        llm_model: std::env::var("SOTTO_BENCH_LLM").unwrap_or_else(|_| defaults.llm_model.clone()),
        ..defaults
    };
    let launch = Launch {
        intents,
        ..Launch::new(Arc::clone(&player), blocks)
    };
    let started = assemble::start(store, &settings, launch).await?;
    let (source, question_blocks) = WavSource::from_buffer(
        audio,
        "questions".into(),
        WavSourceConfig {
            pace: Pace::RealTime,
            ..WavSourceConfig::default()
        },
    );
    input.attach(question_blocks)?;
    Ok(Session {
        assistant: started.assistant,
        events: started.events,
        player,
        _source: source,
    })
}

/// Plays the programme through a session, pressing and releasing the key around each
/// question in push-to-talk; returns the timings of every answered turn, and who answered.
async fn turns(
    session: &mut Session,
    mode: ListenMode,
    spans: &[(u64, u64)],
    worker_peak: &mut f64,
) -> Vec<(Timings, Option<String>)> {
    let started = tokio::time::Instant::now();
    let mut keys: Vec<(u64, Command)> = Vec::new();
    if mode == ListenMode::PushToTalk {
        for &(start, end) in spans {
            keys.push((start.saturating_sub(100), Command::StartListening));
            keys.push((end, Command::StopListening));
        }
    }
    keys.reverse();
    let mut timings = Vec::new();
    loop {
        let next = keys
            .last()
            .map(|(at, _)| started + Duration::from_millis(*at));
        let wait = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = session.events.recv() => match event {
                Ok(Event::TurnFinished { outcome: TurnOutcome::Answered, timings: t, provider, .. }) => {
                    timings.push((t, provider));
                    // The worker lives as long as the session: sample it while it runs.
                    for pid in worker_pids() {
                        *worker_peak = worker_peak.max(peak_mib(&pid).unwrap_or(0.0));
                    }
                }
                Ok(Event::ErrorOccurred { message, .. }) => eprintln!("bench: {message}"),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = wait => {
                if let Some((_, command)) = keys.pop() {
                    session.assistant.send(command);
                }
            }
        }
    }
    timings
}

/// One turn's stages in ms after the user stopped (push-to-talk: the key release), and
/// whether its answer started early: where a slow turn lost its time.
fn timeline(t: &Timings) -> String {
    let after = |at: Option<f64>| match (at, t.speech_end_ms) {
        (Some(at), Some(end)) => format!("{:.0}", at - end),
        _ => "-".into(),
    };
    let early = match t.early_start {
        Some(true) => "kept",
        Some(false) => "dropped",
        None => "no",
    };
    format!(
        "early {early}, llm asked {}, transcript {}, first token {}, first sentence {}, \
         first audio {} ms",
        after(t.llm_start_ms),
        after(t.stt_final_ms),
        after(t.first_token_ms),
        after(t.first_sentence_ms),
        after(t.first_audio_ms),
    )
}

fn row(mode: &str, timings: &[Timings]) -> ModeRow {
    let pick = |f: &dyn Fn(&Timings) -> Option<f64>| -> Vec<f64> {
        timings.iter().filter_map(f).collect()
    };
    let v2v = pick(&|t| t.v2v_ms);
    ModeRow {
        mode: mode.into(),
        turns: timings.len(),
        v2v_p50: quantile(&v2v, 0.5),
        v2v_p95: quantile(&v2v, 0.95),
        stt_p50: quantile(&pick(&|t| Some(t.stt_final_ms? - t.speech_end_ms?)), 0.5),
        first_token_p50: quantile(&pick(&|t| Some(t.first_token_ms? - t.stt_final_ms?)), 0.5),
        first_sentence_p50: quantile(
            &pick(&|t| Some(t.first_sentence_ms? - t.first_token_ms?)),
            0.5,
        ),
        first_audio_p50: quantile(
            &pick(&|t| Some(t.first_audio_ms? - t.first_sentence_ms?)),
            0.5,
        ),
    }
}

/// Interrupts `count` answers half a second into their playback and measures how long
/// the player still plays.
async fn barge_in(
    store: &ModelStore,
    questions: &[AudioBuffer],
    count: usize,
) -> anyhow::Result<Vec<f64>> {
    let (audio, spans) = programme(&questions[..count]);
    let mut session = session(store, ListenMode::PushToTalk, audio, None).await?;
    let started = tokio::time::Instant::now();
    let mut silences = Vec::new();
    let mut next = 0;
    let mut pressed = false;
    let mut speaking_since: Option<Instant> = None;
    loop {
        if next < spans.len() {
            let (start, end) = spans[next];
            let elapsed = started.elapsed().as_millis() as u64;
            if !pressed && elapsed + 100 >= start {
                session.assistant.send(Command::StartListening);
                pressed = true;
            }
            if pressed && elapsed >= end {
                session.assistant.send(Command::StopListening);
                pressed = false;
                next += 1;
            }
        }
        match tokio::time::timeout(Duration::from_millis(5), session.events.recv()).await {
            Ok(Ok(Event::StateChanged {
                state: AssistantState::Speaking,
                ..
            })) => {
                speaking_since = Some(Instant::now());
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => break,
            _ => {}
        }
        if speaking_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(500)) {
            speaking_since = None;
            let interrupted = Instant::now();
            session.assistant.send(Command::Interrupt);
            session.assistant.send(Command::StopListening);
            let mut last = session.player.played_samples();
            let mut silent_at = interrupted;
            while interrupted.elapsed() < Duration::from_millis(300) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let now = session.player.played_samples();
                if now != last {
                    silent_at = Instant::now();
                    last = now;
                }
            }
            silences.push(silent_at.duration_since(interrupted).as_secs_f64() * 1000.0);
        }
    }
    Ok(silences)
}

/// Peak resident memory (VmHWM) of a process, in MiB.
fn peak_mib(pid: &str) -> Option<f64> {
    crate::status_kib(pid, "VmHWM").map(|kib| kib as f64 / 1024.0)
}

/// The LLM workers this process started.
pub(crate) fn worker_pids() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let parent = stat
                .rsplit(") ")
                .next()?
                .split_whitespace()
                .nth(1)?
                .to_string();
            (stat.contains("(sotto-llm-work") && parent == me).then_some(pid)
        })
        .collect()
}

async fn measure() -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let questions = spoken(&store, &QUESTIONS)?;
    let mut rows = Vec::new();
    let mut worker_peak: f64 = 0.0;
    for (name, mode) in [
        ("push-to-talk", ListenMode::PushToTalk),
        ("hands-free", ListenMode::HandsFree),
    ] {
        let (audio, spans) = programme(&questions);
        let mut s = session(&store, mode, audio, None).await?;
        let answered = turns(&mut s, mode, &spans, &mut worker_peak).await;
        eprintln!("bench: {name}: {} answered turns", answered.len());
        for (i, (t, provider)) in answered.iter().enumerate() {
            let by = provider.as_deref().unwrap_or("-");
            eprintln!("bench: {name} turn {} ({by}): {}", i + 1, timeline(t));
        }
        let timings: Vec<Timings> = answered.iter().map(|(t, _)| *t).collect();
        rows.push(row(name, &timings));
        // Sums worked out exactly skip the model: its own figures without them.
        let by_model: Vec<Timings> = answered
            .iter()
            .filter(|(_, p)| p.as_deref() != Some(sotto_llm::exact::PROVIDER))
            .map(|(t, _)| *t)
            .collect();
        if by_model.len() < timings.len() {
            rows.push(row(&format!("{name}, the model's answers only"), &by_model));
        }
        // The first question the model answers after Sotto starts: every engine's first
        // run, which the medians above hide.
        if let Some(first) = by_model.first() {
            rows.push(row(&format!("{name}, first turn after start"), &[*first]));
        }
    }
    let silences = barge_in(&store, &questions, 5).await?;

    // Instant answers: the default intents, in a scratch intents file.
    let intents_dir = std::env::temp_dir().join("sotto-bench-intents");
    let _ = std::fs::remove_dir_all(&intents_dir);
    let intents = Some(intents_dir.join("intents.toml"));
    let instant_questions = spoken(&store, &INSTANT_QUESTIONS)?;
    let (audio, spans) = programme(&instant_questions);
    let mut s = session(&store, ListenMode::PushToTalk, audio, intents).await?;
    let instant: Vec<Timings> = turns(&mut s, ListenMode::PushToTalk, &spans, &mut worker_peak)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let instant_after_transcript: Vec<f64> = instant
        .iter()
        .filter(|t| t.first_token_ms.is_none())
        .filter_map(|t| Some(t.first_audio_ms? - t.stt_final_ms?))
        .collect();
    let instant_row = row("push-to-talk, instant answers", &instant);
    let app_peak = peak_mib("self").unwrap_or(f64::NAN);

    println!(
        "\n### Voice to voice: {} spoken questions per mode, default local models\n",
        QUESTIONS.len()
    );
    println!("| mode | answered | v2v p50 | v2v p95 | speech end -> transcript | -> first token | -> first sentence | -> first audio |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows.iter().chain(std::iter::once(&instant_row)) {
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            r.mode,
            r.turns,
            r.v2v_p50,
            r.v2v_p95,
            r.stt_p50,
            r.first_token_p50,
            r.first_sentence_p50,
            r.first_audio_p50
        );
    }
    println!(
        "\nBarge-in: the last output sample left {:.1} ms (p50) / {:.1} ms (max) after the interrupt \
         command, over {} interrupts (the sink takes 10 ms blocks, as a sound card would).",
        quantile(&silences, 0.5),
        silences.iter().cloned().fold(0.0, f64::max),
        silences.len()
    );
    println!(
        "Instant answers: {} of {} questions answered without the LLM; transcript -> first audio {:.1} ms p50 / {:.1} ms max.",
        instant_after_transcript.len(),
        INSTANT_QUESTIONS.len(),
        quantile(&instant_after_transcript, 0.5),
        instant_after_transcript.iter().cloned().fold(0.0, f64::max)
    );
    println!("Peak memory: app {app_peak:.0} MiB, LLM worker {worker_peak:.0} MiB.");
    println!(
        "\n```json\n{}\n```",
        serde_json::to_string_pretty(&serde_json::json!({
            "modes": rows, "instant": instant_row, "instant_after_transcript_ms": instant_after_transcript, "barge_in_ms": silences, "peak_app_mib": app_peak, "peak_worker_mib": worker_peak
        }))?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_goes_up_a_quarter_second_after_the_sound_not_the_clip() {
        let rate = 16_000;
        let mut speech: Vec<f32> = (0..rate).map(|i| 0.5 * (i as f32 * 0.05).sin()).collect();
        // A soft tail (0.02: -34 dBFS) still counts; the half second of silence does not.
        speech.extend(std::iter::repeat_n(0.02, 1_600));
        speech.extend(std::iter::repeat_n(0.0, 8_000));
        assert_eq!(sound_end_ms(&speech, rate as u32), 1_100); // 17,600 samples
        assert_eq!(sound_end_ms(&[0.0; 100], 16_000), 0);
        let question = AudioBuffer {
            samples: speech,
            channels: 1,
            sample_rate: rate as u32,
        };
        let (audio, spans) = programme(&[question.clone(), question]);
        // Half a second of lead-in, then each question and its gap.
        assert_eq!(spans[0], (500, 500 + 1_100 + RELEASE_AFTER_MS));
        let second = 500 + 1_600 + GAP_MS;
        assert_eq!(spans[1], (second, second + 1_100 + RELEASE_AFTER_MS));
        assert_eq!(
            audio.samples.len(),
            (second as usize + 1_600 + GAP_MS as usize) * 16
        );
    }
}
