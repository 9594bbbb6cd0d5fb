//! Whole voice turns on the real default models: a spoken question fed at real-time pace,
//! the answer played into a real-time WAV sink. The states arrive in order, the answer
//! streams, the reply transcribes back, and barge-in silences the voice at once and keeps
//! only what was heard.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_audio::{AudioBuffer, ListenMode, Pace, Player, WavSource, WavSourceConfig};
use sotto_core::assemble::{self, Launch};
use sotto_core::settings::Settings;
use sotto_core::{Assistant, AssistantState, Command, Event, Timings, TurnOutcome};
use sotto_models::ModelStore;
use sotto_stt::{word_error_rate, CancelFlag, SttConfig, WhisperStt};
use tokio::sync::broadcast;

/// One turn at a time: three voice pipelines at once on two cores measure contention,
/// not the assistant.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn store() -> ModelStore {
    ModelStore::open_default().expect("models folder")
}

/// A spoken question, in a different voice from the assistant's.
fn spoken(text: &str) -> AudioBuffer {
    let mut voice = sotto_tts::load_voice(&store(), "kokoro-82m-int8/am_michael", 2)
        .expect("Kokoro is installed");
    let audio = voice.synthesize_all(text, 1.0).expect("speech");
    AudioBuffer {
        samples: audio.samples,
        channels: 1,
        sample_rate: audio.sample_rate,
    }
}

fn transcribe(path: &std::path::Path) -> String {
    let audio = sotto_audio::wav::read(path).expect("reply wav");
    let mono = sotto_audio::to_mono_16k(&audio).expect("resample");
    let stt = WhisperStt::load(&store(), "whisper-tiny.en", SttConfig::default()).expect("stt");
    stt.transcribe(&mono, &CancelFlag::default())
        .expect("transcribe")
        .text
}

struct Run {
    assistant: Assistant,
    events: broadcast::Receiver<Event>,
    player: Arc<Player>,
    _source: WavSource,
    question_ms: u64,
}

async fn start(
    question: &str,
    mode: ListenMode,
    out: &std::path::Path,
    settings: Settings,
    trailing_silence_ms: u32,
) -> Run {
    start_with(question, mode, out, settings, trailing_silence_ms, None).await
}

/// Starts the assistant the way the app does (`assemble::start`), on the default models,
/// hearing `question` at real-time pace.
async fn start_with(
    question: &str,
    mode: ListenMode,
    out: &std::path::Path,
    settings: Settings,
    trailing_silence_ms: u32,
    intents: Option<std::path::PathBuf>,
) -> Run {
    let audio = spoken(question);
    let question_ms = audio.samples.len() as u64 * 1000 / u64::from(audio.sample_rate);
    let player = Arc::new(Player::wav(out, 24_000, Pace::RealTime).expect("player"));
    // The question plays only once the engines are loaded, as a user speaks to a ready
    // assistant.
    let (input, blocks) = sotto_audio::deferred_input();
    let settings = Settings { mode, ..settings };
    let launch = Launch {
        intents,
        ..Launch::new(Arc::clone(&player), blocks)
    };
    let started = assemble::start(&store(), &settings, launch)
        .await
        .expect("the default engines load");
    let (source, question_blocks) = WavSource::from_buffer(
        audio,
        "question".into(),
        WavSourceConfig {
            pace: Pace::RealTime,
            trailing_silence_ms,
            ..WavSourceConfig::default()
        },
    );
    input.attach(question_blocks).expect("input relay");
    Run {
        assistant: started.assistant,
        events: started.events,
        player,
        _source: source,
        question_ms,
    }
}

/// Collects events until the assistant stops, sending `at` commands at their times. With
/// `stop_after_answer`, it is shut down once an answered turn has settled.
async fn collect(
    run: &mut Run,
    mut at: Vec<(Duration, Command)>,
    stop_after_answer: bool,
) -> Vec<(Instant, Event)> {
    let mut answered = false;
    let started = tokio::time::Instant::now();
    let mut events = Vec::new();
    let deadline = started + Duration::from_secs(60);
    loop {
        at.sort_by_key(|(t, _)| *t);
        let next = at.first().map(|(t, _)| started + *t);
        let wait = async {
            match next {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = run.events.recv() => match event {
                Ok(event) => {
                    let settled = answered && matches!(event, Event::StateChanged { .. });
                    answered |= matches!(
                        event,
                        Event::TurnFinished { outcome: TurnOutcome::Answered, .. }
                    );
                    events.push((Instant::now(), event));
                    if settled && stop_after_answer {
                        run.assistant.send(Command::Shutdown);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
                Err(e) => panic!("events lost: {e}"),
            },
            () = wait => {
                let (_, command) = at.remove(0);
                run.assistant.send(command);
            }
            () = tokio::time::sleep_until(deadline) => panic!("the turn took over 60 s: {events:?}"),
        }
    }
    events
}

fn states(events: &[(Instant, Event)]) -> Vec<AssistantState> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::StateChanged { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

fn finished(events: &[(Instant, Event)]) -> Vec<(TurnOutcome, String, String, Timings)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::TurnFinished {
                outcome,
                user_text,
                heard_text,
                timings,
                ..
            } => Some((*outcome, user_text.clone(), heard_text.clone(), *timings)),
            _ => None,
        })
        .collect()
}

fn answer_text(events: &[(Instant, Event)]) -> String {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::LlmTextChunk { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn assert_timings_in_order(t: &Timings) {
    let stages = [
        ("speech_end", t.speech_end_ms),
        ("stt_final", t.stt_final_ms),
        ("cache_decision", t.cache_decision_ms),
        ("first_token", t.first_token_ms),
        ("first_sentence", t.first_sentence_ms),
        ("first_audio", t.first_audio_ms),
        ("playback_end", t.playback_end_ms),
    ];
    let mut last = 0.0;
    for (name, value) in stages {
        let value = value.unwrap_or_else(|| panic!("{name} missing: {t:?}"));
        assert!(value >= last, "{name} before the stage before it: {t:?}");
        last = value;
    }
    let v2v = t.v2v_ms.expect("v2v");
    assert!(v2v > 0.0, "{t:?}");
}

async fn full_turn(mode: ListenMode) {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("reply.wav");
    let question = "What is the capital of France?";
    // Hands-free keeps listening after the answer, as long as the "microphone" runs.
    let silence = if mode == ListenMode::HandsFree {
        8_000
    } else {
        1_500
    };
    // Greedy decoding: the same answer every run.
    let settings = Settings {
        temperature: 0.0,
        max_tokens: 60,
        ..Settings::default()
    };
    let mut run = start(question, mode, &out, settings, silence).await;
    let mut commands = Vec::new();
    if mode == ListenMode::PushToTalk {
        run.assistant.send(Command::StartListening);
        commands.push((
            Duration::from_millis(run.question_ms),
            Command::StopListening,
        ));
    }
    let events = collect(&mut run, commands, true).await;

    use AssistantState::*;
    let expected_rest = if mode == ListenMode::PushToTalk {
        Idle
    } else {
        Listening
    };
    let seen = states(&events);
    let answering = [
        Listening,
        AnalyzingSpeech,
        CheckingCache,
        RoutingToLlm,
        GeneratingSpeech,
        Speaking,
        expected_rest,
    ];
    let start = seen
        .iter()
        .position(|s| *s == Listening)
        .expect("listening");
    assert_eq!(
        &seen[start..start + answering.len()],
        &answering,
        "{seen:?}"
    );

    let partials = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::TranscriptPartial { .. }))
        .count();
    assert!(
        partials >= 1,
        "no partial transcript while the question played"
    );
    let turns = finished(&events);
    let (outcome, user_text, heard, timings) = turns
        .iter()
        .find(|t| t.0 != TurnOutcome::NoSpeech)
        .cloned()
        .expect("a finished turn");
    assert_eq!(outcome, TurnOutcome::Answered, "{events:?}");
    assert!(
        word_error_rate(question, &user_text) <= 0.2,
        "{user_text:?}"
    );
    let answer = answer_text(&events);
    assert!(!answer.trim().is_empty());
    assert!(!heard.is_empty());
    assert_timings_in_order(&timings);

    run.player.finish().expect("reply written");
    let replied = transcribe(&out);
    let wer = word_error_rate(&heard, &replied);
    assert!(
        wer <= 0.35,
        "WER {wer:.2}: said {heard:?}, heard back {replied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_talk_turn_goes_through_every_state_and_speaks_the_answer() {
    full_turn(ListenMode::PushToTalk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hands_free_turn_finds_the_question_by_itself() {
    full_turn(ListenMode::HandsFree).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_silences_the_voice_at_once_and_keeps_only_what_was_heard() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("reply.wav");
    let settings = Settings {
        temperature: 0.0,
        max_tokens: 200,
        ..Settings::default()
    };
    let mut run = start(
        "Please tell me a long story about a brave dragon.",
        ListenMode::PushToTalk,
        &out,
        settings,
        1_500,
    )
    .await;
    run.assistant.send(Command::StartListening);
    let release = Duration::from_millis(run.question_ms);
    // Wait until the answer is playing, then interrupt 800 ms into it.
    let started = tokio::time::Instant::now();
    let mut events = Vec::new();
    let mut released = false;
    let mut speaking_at = None;
    loop {
        let event = tokio::time::timeout(Duration::from_millis(20), run.events.recv()).await;
        if !released && started.elapsed() >= release {
            released = true;
            run.assistant.send(Command::StopListening);
        }
        if let Ok(Ok(event)) = event {
            if matches!(
                event,
                Event::StateChanged {
                    state: AssistantState::Speaking,
                    ..
                }
            ) {
                speaking_at = Some(Instant::now());
            }
            events.push((Instant::now(), event));
        }
        if speaking_at.is_some_and(|t| t.elapsed() >= Duration::from_millis(800)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "never spoke: {events:?}"
        );
    }
    let before = run.player.played_ms();
    let interrupted_at = Instant::now();
    run.assistant.send(Command::Interrupt);
    // Playback must go silent within 100 ms: sample the played count.
    let mut silent_after = None;
    let mut last = run.player.played_ms();
    while interrupted_at.elapsed() < Duration::from_millis(400) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = run.player.played_ms();
        if now == last && silent_after.is_none() && run.player.queued_samples() == 0 {
            silent_after = Some(interrupted_at.elapsed());
        }
        if now != last {
            silent_after = None;
        }
        last = now;
    }
    let silent_after = silent_after.expect("playback never went silent");
    assert!(
        silent_after < Duration::from_millis(100),
        "silent {silent_after:?} after the interrupt"
    );
    assert!(
        before > 300.0,
        "only {before} ms played before the interrupt"
    );

    events.extend(collect(&mut run, Vec::new(), false).await);
    let turns = finished(&events);
    let (outcome, _, heard, timings) = turns
        .iter()
        .find(|t| t.0 == TurnOutcome::Interrupted)
        .cloned()
        .expect("an interrupted turn");
    assert_eq!(outcome, TurnOutcome::Interrupted);
    let answer = answer_text(&events);
    assert!(!heard.is_empty(), "something was heard");
    let heard_words = heard.split_whitespace().count();
    let answer_words = answer.split_whitespace().count();
    assert!(
        heard_words < answer_words,
        "heard {heard_words} of {answer_words} words: history must keep only the heard part"
    );
    // What was heard is the start of the answer.
    let first_heard = heard.split_whitespace().next().expect("a word");
    assert!(answer.contains(first_heard), "{heard:?} vs {answer:?}");
    assert!(timings.first_audio_ms.is_some() && timings.playback_end_ms.is_some());
    let seen = states(&events);
    let speaking = seen
        .iter()
        .rposition(|s| *s == AssistantState::Speaking)
        .expect("speaking");
    assert_eq!(
        seen.get(speaking + 1),
        Some(&AssistantState::Listening),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_answer_is_spoken_without_asking_the_language_model() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("reply.wav");
    let mut run = start_with(
        "Who are you?",
        ListenMode::PushToTalk,
        &out,
        Settings::default(),
        1_500,
        Some(dir.path().join("intents.toml")),
    )
    .await;
    assert!(
        dir.path().join("intents.toml").is_file(),
        "the defaults were written"
    );
    run.assistant.send(Command::StartListening);
    let release = Duration::from_millis(run.question_ms);
    let events = collect(&mut run, vec![(release, Command::StopListening)], true).await;
    let seen = states(&events);
    let heard: Vec<&str> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::TranscriptFinal { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        !seen.contains(&AssistantState::RoutingToLlm),
        "{seen:?}, heard {heard:?}"
    );
    let checking = seen
        .iter()
        .position(|s| *s == AssistantState::CheckingCache)
        .expect("checked the cache");
    assert_eq!(
        seen.get(checking + 1),
        Some(&AssistantState::Speaking),
        "{seen:?}"
    );
    let (outcome, _, heard, timings) = finished(&events)
        .into_iter()
        .find(|t| t.0 == TurnOutcome::Answered)
        .expect("answered");
    assert_eq!(outcome, TurnOutcome::Answered);
    assert!(heard.starts_with("I'm Sotto"), "{heard:?}");
    let provider = events.iter().find_map(|(_, e)| match e {
        Event::TurnFinished { provider, .. } => provider.clone(),
        _ => None,
    });
    assert_eq!(provider.as_deref(), Some("instant"));
    assert!(
        timings.first_token_ms.is_none(),
        "no LLM token: {timings:?}"
    );
    let from_transcript =
        timings.first_audio_ms.expect("audio") - timings.stt_final_ms.expect("stt");
    assert!(
        from_transcript < 150.0,
        "instant answer took {from_transcript} ms after the transcript"
    );
}
