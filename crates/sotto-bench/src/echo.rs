//! Echo cancellation and voice barge-in in a simulated room (`cargo xtask bench echo
//! [--user-speech DIR] [--json FILE]`).
//!
//! 1. Echo return loss enhancement: the assistant's own voice (the default voice saying
//!    answers like its own) plays in two rooms (synthetic impulse responses, see
//!    [`ROOMS`]); the canceller's output against the echo it was given, after 3 s to
//!    converge, and its CPU time per 10 ms frame.
//! 2. The live assistant, hands-free with the default settings (canceller and voice
//!    barge-in on), its microphone in the first room: the room hears what the player
//!    plays, at its pace ([`sotto_audio::room::RoomMicrophone`]).
//!    - 20 typed questions answered aloud with nobody speaking: any turn its own voice
//!      starts, any answer it interrupts, is counted.
//!    - 20 answers with the user talking over them 0.7 s into the playback (clips from
//!      `--user-speech DIR`, or short interruptions a Kokoro voice says): interrupted or
//!      not; how long after the user's first word (the clip's first 10 ms above -40 dBFS)
//!      the voice paused (the barge-in decision) and the turn was interrupted (the speech
//!      lasted); how long after the pause the speakers were silent; whether what the
//!      assistant remembers of its answer is what was heard. Pauses of the voice with
//!      nobody talking are counted too.
//! 3. Voice to voice in the room, canceller on against off (voice barge-in off in both so
//!    that only the canceller differs): two assistants, the soak's eight spoken questions
//!    twice, each asked of both in turn (which goes first alternating), paired.

use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sotto_audio::analysis::{erle_db, speech_span_ms};
use sotto_audio::echo::FRAME;
use sotto_audio::room::{self, Room, RoomConfig, RoomMicrophone};
use sotto_audio::{EchoCanceller, EchoReference, ListenMode, Pace, Player};
use sotto_core::assemble::{self, Launch};
use sotto_core::settings::Settings;
use sotto_core::{Assistant, AssistantState, Command, Event, TurnOutcome};
use sotto_models::ModelStore;
use tokio::sync::broadcast;

use crate::quantile;

/// The two rooms.
const ROOMS: [(&str, RoomConfig); 2] = [
    (
        "office, laptop speakers (RT60 0.25 s, DRR +10 dB, 40 ms, gain 0.5, noise -60 dBFS)",
        room::OFFICE,
    ),
    (
        "living room, desk speakers (RT60 0.5 s, DRR 0 dB, 180 ms, gain 0.3, noise -65 dBFS)",
        room::LIVING_ROOM,
    ),
];

/// What the assistant's voice says for the echo measurement: answers like its own.
const ANSWERS: [&str; 4] = [
    "The capital of France is Paris. It lies on the river Seine, in the north of the country.",
    "A spider has eight legs. Insects have six, which is one way to tell them apart.",
    "Bees make honey from the nectar of flowers, and wax to build their combs.",
    "The largest ocean is the Pacific. It covers about a third of the surface of the Earth.",
];

/// Typed questions whose answers are spoken with nobody talking.
const QUIET_QUESTIONS: [&str; 5] = [
    "Tell me about the moon.",
    "What is a rainbow?",
    "Why do cats purr?",
    "How do plants grow?",
    "What is the weather like in spring?",
];

/// Typed questions with long answers, to be interrupted.
const LONG_QUESTIONS: [&str; 4] = [
    "Describe the city of Rome.",
    "Explain how a car engine works.",
    "Tell me about the history of the ocean.",
    "What should I pack for a week at the beach?",
];

/// What the user says over the answer when no `--user-speech` folder is given.
const INTERRUPTIONS: [&str; 5] = [
    "Wait, stop please.",
    "Hold on a second.",
    "Actually, never mind that.",
    "Sorry, can you say that again?",
    "Okay, that is enough, thank you.",
];

/// When the user starts talking over the answer.
const INTERRUPT_AFTER: Duration = Duration::from_millis(700);

/// The most a turn may take here.
const TURN_LIMIT: Duration = Duration::from_secs(60);

struct Options {
    user_speech: Option<PathBuf>,
    json: Option<PathBuf>,
    trials: usize,
    answers: usize,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            user_speech: None,
            json: None,
            trials: 20,
            answers: 20,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("{flag} takes a value"))
                    .cloned()
            };
            match flag.as_str() {
                "--user-speech" => options.user_speech = Some(value()?.into()),
                "--json" => options.json = Some(value()?.into()),
                "--trials" => options.trials = value()?.parse().context("--trials N")?,
                "--answers" => options.answers = value()?.parse().context("--answers N")?,
                other => anyhow::bail!(
                    "echo takes --user-speech DIR, --json FILE, --answers N and --trials N, not {other}"
                ),
            }
        }
        Ok(options)
    }
}

#[derive(Serialize)]
struct Report {
    erle_db: Vec<f64>,
    aec3_erle_db: Vec<Option<f64>>,
    cpu_us_per_frame: Vec<f64>,
    answers: usize,
    false_turns: usize,
    false_interrupts: usize,
    false_pauses: usize,
    /// Pauses of the voice in the interruption trials before the user spoke.
    pauses_before_user: usize,
    interrupt_trials: usize,
    interrupts_detected: usize,
    detect_ms_p95: f64,
    detect_ms_p50: f64,
    commit_ms_p50: f64,
    commit_ms_p95: f64,
    silence_ms_p95: f64,
    heard_kept: usize,
    v2v_on_p50: f64,
    v2v_off_p50: f64,
    v2v_on_p95: f64,
    v2v_off_p95: f64,
    /// Canceller on minus off, question by question: the median.
    v2v_paired_median_ms: f64,
    /// How many questions both answered.
    v2v_pairs: usize,
}

/// Runs the echo benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = Options::parse(args)?;
    let runtime = crate::runtime()?;
    runtime.block_on(measure(&options))
}

async fn measure(options: &Options) -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let defaults = Settings::default();

    // 1. The canceller alone, on the assistant's own voice.
    let far = own_voice(&store, &defaults.voice)?;
    let mut erle = Vec::new();
    let mut aec3 = Vec::new();
    let mut cpu = Vec::new();
    for (name, room) in ROOMS {
        let (db, reported, us) = erle_in(room, &far)?;
        eprintln!("bench: {name}: ERLE {db:.1} dB (AEC3's own estimate {reported:?}), {us:.0} us per 10 ms frame");
        erle.push(db);
        aec3.push(reported);
        cpu.push(us);
    }

    // 2. The live assistant in the first room.
    let user = match &options.user_speech {
        Some(dir) => clips_in(dir)?,
        None => spoken_16k(&store, &INTERRUPTIONS)?,
    };
    anyhow::ensure!(!user.is_empty(), "no user speech to interrupt with");
    let mut live = Live::start(&store, ROOMS[0].1, true, true).await?;
    let quiet = live.quiet_answers(options.answers).await?;
    eprintln!(
        "bench: {} answers with nobody talking: {} turns started by the assistant's voice, {} answers it interrupted, {} pauses",
        quiet.answers, quiet.false_turns, quiet.false_interrupts, quiet.false_pauses
    );
    let mut trials = Vec::new();
    let mut asked = 0;
    while trials.len() < options.trials && asked < 3 * options.trials {
        let clip = &user[trials.len() % user.len()];
        let question = LONG_QUESTIONS[asked % LONG_QUESTIONS.len()];
        asked += 1;
        match live.interrupted_answer(question, clip).await? {
            Some(trial) => {
                let log = live.room.log();
                eprintln!(
                    "bench: interruption {}: {trial:?} (room: {} blocks, {} dropped)",
                    trials.len() + 1,
                    log.blocks,
                    log.dropped
                );
                drop(log);
                trials.push(trial);
            }
            None => {
                let log = live.room.log();
                eprintln!(
                    "bench: the answer to {question:?} ended before the user spoke (room: {} blocks, {} dropped)",
                    log.blocks, log.dropped
                );
            }
        }
    }
    live.stop().await;

    // 3. Voice to voice in the room, canceller on and off: two assistants (voice
    //    barge-in off in both, so that only the canceller differs), each question asked
    //    of both in turn, which goes first alternating, every question twice. Each turn
    //    starts a new conversation, so both answer the same thing.
    let questions = spoken_16k(&store, &crate::soak::QUESTIONS)?;
    let mut on = Live::start(&store, ROOMS[0].1, true, false).await?;
    let mut off = Live::start(&store, ROOMS[0].1, false, false).await?;
    let mut v2v = [Vec::new(), Vec::new()];
    let mut pairs = Vec::new();
    for (i, question) in questions.iter().chain(questions.iter()).enumerate() {
        let (first, second) = if i % 2 == 0 {
            (&mut on, &mut off)
        } else {
            (&mut off, &mut on)
        };
        let a = first.spoken_turn(question).await?;
        let b = second.spoken_turn(question).await?;
        let (t_on, t_off) = if i % 2 == 0 { (a, b) } else { (b, a) };
        if let Some(t) = t_on {
            v2v[0].push(t);
        }
        if let Some(t) = t_off {
            v2v[1].push(t);
        }
        if let (Some(x), Some(y)) = (t_on, t_off) {
            pairs.push(x - y);
        }
    }
    on.stop().await;
    off.stop().await;
    eprintln!("bench: voice to voice, canceller on: {:?}", v2v[0]);
    eprintln!("bench: voice to voice, canceller off: {:?}", v2v[1]);
    eprintln!("bench: on - off, per question: {pairs:?}");

    let detected: Vec<&Trial> = trials.iter().filter(|t| t.interrupted).collect();
    let detect: Vec<f64> = detected.iter().map(|t| t.detect_ms).collect();
    let commit: Vec<f64> = detected.iter().map(|t| t.commit_ms).collect();
    let silence: Vec<f64> = detected.iter().filter_map(|t| t.silence_ms).collect();
    let report = Report {
        erle_db: erle,
        aec3_erle_db: aec3,
        cpu_us_per_frame: cpu,
        answers: quiet.answers,
        false_turns: quiet.false_turns,
        false_interrupts: quiet.false_interrupts,
        false_pauses: quiet.false_pauses,
        pauses_before_user: trials.iter().map(|t| t.pauses_before).sum(),
        interrupt_trials: trials.len(),
        interrupts_detected: detected.len(),
        detect_ms_p95: quantile(&detect, 0.95),
        detect_ms_p50: quantile(&detect, 0.5),
        commit_ms_p50: quantile(&commit, 0.5),
        commit_ms_p95: quantile(&commit, 0.95),
        silence_ms_p95: quantile(&silence, 0.95),
        heard_kept: detected.iter().filter(|t| t.heard_is_prefix).count(),
        v2v_on_p50: quantile(&v2v[0], 0.5),
        v2v_off_p50: quantile(&v2v[1], 0.5),
        v2v_on_p95: quantile(&v2v[0], 0.95),
        v2v_off_p95: quantile(&v2v[1], 0.95),
        v2v_paired_median_ms: quantile(&pairs, 0.5),
        v2v_pairs: pairs.len(),
    };
    print_report(&report);
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn print_report(r: &Report) {
    println!("\n### Echo cancellation in a simulated room\n");
    println!("| room | ERLE after 3 s | AEC3's own ERLE estimate | CPU per 10 ms frame |");
    println!("|---|---|---|---|");
    for (i, (name, _)) in ROOMS.iter().enumerate() {
        println!(
            "| {name} | {:.1} dB | {} | {:.0} us ({:.1} % of a core) |",
            r.erle_db[i],
            r.aec3_erle_db[i].map_or("-".into(), |db| format!("{db:.1} dB")),
            r.cpu_us_per_frame[i],
            r.cpu_us_per_frame[i] / 100.0
        );
    }
    println!(
        "\nNobody talking, {} spoken answers: {} turns started by the assistant's own voice, {} answers interrupted, \
         {} pauses of the voice.",
        r.answers, r.false_turns, r.false_interrupts, r.false_pauses
    );
    println!(
        "Pauses of the voice in the trials before the user spoke: {}.",
        r.pauses_before_user
    );
    println!(
        "User talking over {} answers: {} interrupted; user's first word -> voice paused {:.0} ms p50 / {:.0} ms p95, \
         -> turn interrupted {:.0} / {:.0} ms; paused -> speakers silent {:.0} ms p95; what the assistant remembers is \
         what was heard in {} of {}.",
        r.interrupt_trials,
        r.interrupts_detected,
        r.detect_ms_p50,
        r.detect_ms_p95,
        r.commit_ms_p50,
        r.commit_ms_p95,
        r.silence_ms_p95,
        r.heard_kept,
        r.interrupts_detected
    );
    println!(
        "Voice to voice in the room (8 spoken questions twice, hands-free, asked of both in turn): canceller on {:.0} ms p50 / {:.0} ms p95, \
         off {:.0} / {:.0} ms; on - off per question {:+.0} ms median over {} pairs.",
        r.v2v_on_p50,
        r.v2v_on_p95,
        r.v2v_off_p50,
        r.v2v_off_p95,
        r.v2v_paired_median_ms,
        r.v2v_pairs
    );
}

/// The default voice saying [`ANSWERS`], at 16 kHz.
fn own_voice(store: &ModelStore, voice: &str) -> anyhow::Result<Vec<f32>> {
    let mut voice = sotto_tts::load_voice(store, voice, 2)?;
    let mut far = Vec::new();
    for text in ANSWERS {
        let audio = voice.synthesize_all(text, 1.0)?;
        far.extend(sotto_audio::resample::resample(
            &audio.samples,
            audio.sample_rate,
            16_000,
        )?);
        far.extend(std::iter::repeat_n(0.0, 4_000));
    }
    Ok(far)
}

/// `texts` said by a Kokoro voice other than the assistant's, at 16 kHz.
fn spoken_16k(store: &ModelStore, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
    crate::voice::spoken(store, texts)?
        .iter()
        .map(|a| Ok(sotto_audio::to_mono_16k(a)?))
        .collect()
}

/// Every WAV file in `dir`, at 16 kHz, in name order.
fn clips_in(dir: &Path) -> anyhow::Result<Vec<Vec<f32>>> {
    sotto_audio::wav::files_in(dir)?
        .iter()
        .map(|p| Ok(sotto_audio::to_mono_16k(&sotto_audio::wav::read(p)?)?))
        .collect()
}

/// ERLE in `config` for `far` after 3 s, AEC3's own estimate, and microseconds of CPU
/// per 10 ms frame.
fn erle_in(config: RoomConfig, far: &[f32]) -> anyhow::Result<(f64, Option<f64>, f64)> {
    let (tx, rx) = std_mpsc::sync_channel(far.len() / FRAME + 1);
    let mut canceller = EchoCanceller::new(EchoReference::from_channel(rx, 16_000))?;
    let mut room = Room::new(config);
    let mut echo = Vec::with_capacity(far.len());
    let mut out = Vec::with_capacity(far.len());
    let mut busy = Duration::ZERO;
    for played in far.chunks(FRAME) {
        let _ = tx.send(played.to_vec());
        let heard = room.hear_parts(played)?;
        let mic = heard.mix();
        let started = Instant::now();
        out.extend(canceller.process(&mic)?);
        busy += started.elapsed();
        echo.extend(heard.echo);
    }
    let frames = far.len() / FRAME;
    Ok((
        erle_db(&echo, &out, 3 * 16_000),
        canceller.stats().erle_db,
        busy.as_secs_f64() * 1e6 / frames.max(1) as f64,
    ))
}

/// What nobody talking showed.
struct Quiet {
    answers: usize,
    false_turns: usize,
    false_interrupts: usize,
    /// The voice paused for speech nobody said.
    false_pauses: usize,
}

/// One answer the user talked over.
#[derive(Debug)]
struct Trial {
    interrupted: bool,
    /// The user's first word -> the voice paused (the barge-in decision).
    detect_ms: f64,
    /// The user's first word -> the turn interrupted (the speech lasted).
    commit_ms: f64,
    /// The voice paused -> the speakers' last sound.
    silence_ms: Option<f64>,
    /// What the assistant keeps of its answer is no more than it said before the user.
    heard_is_prefix: bool,
    /// How the answer's turn ended (`None`: not within 20 s).
    outcome: Option<TurnOutcome>,
    /// The voice paused, and played on, this many times.
    pauses: usize,
    played_on: usize,
    /// Pauses before the user said anything (its own voice taken for the user's).
    pauses_before: usize,
}

/// A hands-free assistant whose microphone is in a simulated room.
struct Live {
    assistant: Assistant,
    events: broadcast::Receiver<Event>,
    room: RoomMicrophone,
    _player: Arc<Player>,
}

impl Live {
    async fn start(
        store: &ModelStore,
        config: RoomConfig,
        echo_cancellation: bool,
        voice_barge_in: bool,
    ) -> anyhow::Result<Live> {
        let out = std::env::temp_dir().join("sotto-bench-echo.wav");
        // At 16 kHz the room's clock is the player's, sample for sample.
        let player = Arc::new(Player::wav(&out, 16_000, Pace::RealTime)?);
        let (tx, rx) = std_mpsc::sync_channel(256);
        let room = RoomMicrophone::spawn(player.echo_reference(), Room::new(config), tx)?;
        let settings = Settings {
            mode: ListenMode::HandsFree,
            echo_cancellation,
            voice_barge_in,
            temperature: 0.0,
            ..Settings::default()
        };
        let started = assemble::start(store, &settings, Launch::new(Arc::clone(&player), rx))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Let the room settle (listening starts, the canceller sees its first silence).
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Live {
            assistant: started.assistant,
            events: started.events,
            room,
            _player: player,
        })
    }

    async fn stop(self) {
        self.assistant.send(Command::Shutdown);
        self.assistant.finished().await;
    }

    async fn next_event(&mut self, until: tokio::time::Instant) -> anyhow::Result<Option<Event>> {
        loop {
            match tokio::time::timeout_at(until, self.events.recv()).await {
                Err(_) => return Ok(None),
                Ok(Ok(event)) => return Ok(Some(event)),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    anyhow::bail!("the assistant stopped")
                }
            }
        }
    }

    /// Counts, for `count` typed questions answered aloud, the turns speech started and
    /// the answers interrupted (watching 2 s past each answer for its echo's tail).
    async fn quiet_answers(&mut self, count: usize) -> anyhow::Result<Quiet> {
        let mut quiet = Quiet {
            answers: 0,
            false_turns: 0,
            false_interrupts: 0,
            false_pauses: 0,
        };
        for i in 0..count {
            self.assistant.send(Command::SendText(
                QUIET_QUESTIONS[i % QUIET_QUESTIONS.len()].into(),
            ));
            let limit = tokio::time::Instant::now() + TURN_LIMIT;
            let mut after: Option<tokio::time::Instant> = None;
            let mut answered = false;
            loop {
                let until = after.unwrap_or(limit);
                let Some(event) = self.next_event(until).await? else {
                    break;
                };
                match event {
                    Event::StateChanged {
                        state: AssistantState::AnalyzingSpeech,
                        ..
                    } => quiet.false_turns += 1,
                    Event::VoicePaused { paused: true, .. } => quiet.false_pauses += 1,
                    Event::TurnFinished { outcome, .. } if !answered => {
                        answered = true;
                        match outcome {
                            TurnOutcome::Answered => quiet.answers += 1,
                            TurnOutcome::Interrupted => quiet.false_interrupts += 1,
                            other => eprintln!("bench: a typed question ended {other:?}"),
                        }
                        after = Some(tokio::time::Instant::now() + Duration::from_secs(2));
                    }
                    Event::ErrorOccurred { message, .. } => eprintln!("bench: {message}"),
                    _ => {}
                }
            }
            anyhow::ensure!(answered, "typed question {i} was not answered in time");
        }
        Ok(quiet)
    }

    /// Asks `question`, talks over the answer with `clip` and measures what happened.
    /// `None` when the answer ended by itself within half a second of the user's first
    /// word (not a trial).
    async fn interrupted_answer(
        &mut self,
        question: &str,
        clip: &[f32],
    ) -> anyhow::Result<Option<Trial>> {
        // Each trial on its own: with the earlier (interrupted) answers in its context,
        // the model repeats what it said last time the same question came, cut where
        // the user cut it.
        self.assistant.send(Command::NewConversation);
        self.assistant.send(Command::SendText(question.into()));
        let limit = tokio::time::Instant::now() + TURN_LIMIT;
        let mut answer = String::new();
        let mut seen = Vec::new();
        // Until the answer plays.
        let turn = loop {
            let Some(event) = self.next_event(limit).await? else {
                anyhow::bail!("the answer to {question:?} never played; events: {seen:?}");
            };
            if seen.len() < 40 {
                seen.push(format!("{event:?}").chars().take(160).collect::<String>());
            }
            match event {
                Event::StateChanged {
                    state: AssistantState::Speaking,
                    turn_id,
                    ..
                } => break Some(turn_id),
                Event::LlmTextChunk { text, .. } => answer.push_str(&text),
                Event::TurnFinished { outcome, .. } => {
                    anyhow::bail!(
                        "the answer to {question:?} ended {outcome:?} before it played; events: {seen:?}"
                    )
                }
                _ => {}
            }
        };
        // The answer plays with nobody talking until the user starts: what happens
        // meanwhile is read as it happens (a pause now is the assistant's own doing).
        let speak_at = tokio::time::Instant::now() + INTERRUPT_AFTER;
        let mut pauses_before = 0;
        while let Some(event) = self.next_event(speak_at).await? {
            match event {
                Event::LlmTextChunk { text, turn_id } if Some(turn_id) == turn => {
                    answer.push_str(&text);
                }
                Event::VoicePaused {
                    turn_id,
                    paused: true,
                } if Some(turn_id) == turn => pauses_before += 1,
                Event::TurnFinished { turn_id, .. } if Some(turn_id) == turn => {
                    eprintln!("bench: the answer ended before the user spoke");
                    self.settle().await?;
                    return Ok(None);
                }
                _ => {}
            }
        }
        let said_before = self.room.log().said_at.len();
        self.room.say(clip.to_vec());
        // Its first word, from the clip's start.
        let onset =
            speech_span_ms(clip, sotto_audio::SPEECH_RATE, -40.0).map_or(0, |(from, _)| from);
        let mut trial = Trial {
            interrupted: false,
            detect_ms: f64::NAN,
            commit_ms: f64::NAN,
            silence_ms: None,
            heard_is_prefix: false,
            outcome: None,
            pauses: 0,
            played_on: 0,
            pauses_before,
        };
        let mut paused_at: Option<Instant> = None;
        let give_up = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let Some(event) = self.next_event(give_up).await? else {
                break;
            };
            match event {
                Event::LlmTextChunk { text, turn_id } if Some(turn_id) == turn => {
                    answer.push_str(&text);
                }
                Event::VoicePaused { turn_id, paused } if Some(turn_id) == turn => {
                    if paused {
                        trial.pauses += 1;
                        paused_at = paused_at.or(Some(Instant::now()));
                    } else {
                        trial.played_on += 1;
                    }
                }
                Event::TurnFinished {
                    turn_id,
                    outcome,
                    heard_text,
                    ..
                } if Some(turn_id) == turn => {
                    let stopped = Instant::now();
                    trial.outcome = Some(outcome);
                    if outcome == TurnOutcome::Interrupted {
                        trial.interrupted = true;
                        // Interrupted without a pause first (speech while no sound played).
                        let decided = paused_at.unwrap_or(stopped);
                        let said = self.room.log().said_at.get(said_before).copied();
                        if let Some(said) = said {
                            let first_word = said + Duration::from_millis(onset);
                            trial.detect_ms = signed_ms(decided, first_word);
                            trial.commit_ms = signed_ms(stopped, first_word);
                        }
                        let heard = heard_text.trim_end_matches('…').trim();
                        trial.heard_is_prefix = !heard.is_empty()
                            && heard.len() < answer.len()
                            && answer.starts_with(heard);
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        trial.silence_ms = self
                            .room
                            .log()
                            .last_sound
                            .map(|last| signed_ms(last, decided).max(0.0));
                    }
                    break;
                }
                _ => {}
            }
        }
        // An answer that ended by itself less than half a second after the user's first
        // word had nothing left to interrupt: not a trial.
        let first_word = self
            .room
            .log()
            .said_at
            .get(said_before)
            .map(|said| *said + Duration::from_millis(onset));
        let ended_early = !trial.interrupted
            && match (first_word, self.room.log().last_sound) {
                (Some(first), Some(last)) => signed_ms(last, first) < 500.0,
                _ => false,
            };
        if ended_early {
            eprintln!(
                "bench: the answer was {:?}",
                answer.chars().take(200).collect::<String>()
            );
        }
        // The user's words make a turn of their own: let it end, stop its answer, and
        // leave the room quiet before the next trial.
        self.settle().await?;
        Ok((!ended_early).then_some(trial))
    }

    /// Waits for the assistant to rest (listening, no turn under way) for 1.5 s,
    /// interrupting whatever it says. (A quiet spell alone is not enough: a turn on the
    /// user's words can be held for the rest of a sentence, or thinking, without a word.)
    async fn settle(&mut self) -> anyhow::Result<()> {
        let limit = tokio::time::Instant::now() + TURN_LIMIT;
        let mut resting = false;
        // Quiet spells in a row without a state seen (it may have rested before).
        let mut quiet = 0;
        loop {
            let quiet_until = tokio::time::Instant::now() + Duration::from_millis(1_500);
            match self.next_event(quiet_until.min(limit)).await? {
                None if resting || quiet >= 3 => return Ok(()),
                None => quiet += 1,
                Some(Event::StateChanged { state, .. }) => {
                    quiet = 0;
                    resting = matches!(state, AssistantState::Listening | AssistantState::Idle);
                    if state == AssistantState::Speaking {
                        self.assistant.send(Command::Interrupt);
                    }
                }
                Some(_) => {}
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < limit,
                "the assistant never went quiet"
            );
        }
    }

    /// Says `question` into the room, in a new conversation, and returns its voice to
    /// voice time (`None`: not answered in time).
    async fn spoken_turn(&mut self, question: &[f32]) -> anyhow::Result<Option<f64>> {
        self.assistant.send(Command::NewConversation);
        self.room.say(question.to_vec());
        let limit = tokio::time::Instant::now() + TURN_LIMIT;
        let mut time = None;
        loop {
            let Some(event) = self.next_event(limit).await? else {
                eprintln!("bench: a spoken question was not answered in time");
                break;
            };
            if let Event::TurnFinished {
                outcome: TurnOutcome::Answered,
                timings,
                ..
            } = event
            {
                time = timings.v2v_ms;
                break;
            }
        }
        self.settle().await?;
        Ok(time)
    }
}

/// `a - b` in milliseconds, negative when `a` came first.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(b.duration_since(a).as_secs_f64() * 1000.0),
    }
}
