//! The voice turn on scripted engines and tokio's paused clock: the test plays the
//! ears (it sends what they would hear and reads the key presses they get).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use sotto_llm::LlmError;
use tokio::sync::broadcast::error::RecvError;

use super::*;
use crate::fakes::{self, FakeInstant, FakeLlm, FakePlayer, FakeStt, FakeVoice, Step};
use crate::{Assistant, Engines};

const QUESTION: &str = "what is the capital of france";
const ANSWER: &str = "The capital of France is Paris. It lies on the Seine.";

/// Aborts the test binary if a test runs past its limit: a hang fails, never stalls CI.
struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    fn new() -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&done);
        std::thread::spawn(move || {
            for _ in 0..200 {
                std::thread::sleep(std::time::Duration::from_millis(50));
                if seen.load(Ordering::SeqCst) {
                    return;
                }
            }
            eprintln!("an orchestrator test hung for 10 s");
            std::process::abort();
        });
        Watchdog(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A running assistant on fakes, and the test's end of its ears.
struct Rig {
    assistant: Assistant,
    events: broadcast::Receiver<Event>,
    heard: mpsc::UnboundedSender<Heard>,
    ears: std_mpsc::Receiver<EarsControl>,
    llm: Arc<FakeLlm>,
    player: Arc<FakePlayer>,
    stt: Arc<FakeStt>,
    spoken: Arc<Mutex<Vec<String>>>,
    _watchdog: Watchdog,
}

struct Parts {
    settings: TurnSettings,
    llm: FakeLlm,
    player: FakePlayer,
    stt: FakeStt,
    voice: FakeVoice,
    instant: Option<FakeInstant>,
    /// Keep the stall watchdog of `settings` (see [`quiet_watchdog`]).
    watchdog: bool,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            settings: TurnSettings {
                partial_interval_ms: 0,
                ..TurnSettings::default()
            },
            llm: FakeLlm::saying(ANSWER, Duration::from_millis(20)),
            player: FakePlayer::instant(),
            stt: FakeStt::new(),
            voice: FakeVoice::new(),
            instant: None,
            watchdog: false,
        }
    }
}

/// `settings` without the stall watchdog. The voice and the recogniser run on real threads
/// the paused clock does not wait for: with a deadline armed, tokio would jump to it while
/// they work. The watchdog's own tests arm it and wait as [`Rig::wait_spoken`] does.
fn quiet_watchdog(settings: TurnSettings) -> TurnSettings {
    TurnSettings {
        stall_timeout: Duration::ZERO,
        playback_stall: Duration::ZERO,
        ..settings
    }
}

/// The default fakes with a partial transcript every 500 ms of speech.
fn partials_every_500_ms() -> Rig {
    start(Parts {
        settings: TurnSettings {
            partial_interval_ms: 500,
            ..TurnSettings::default()
        },
        ..Parts::default()
    })
}

fn start(parts: Parts) -> Rig {
    let watchdog = Watchdog::new();
    let llm = Arc::new(parts.llm);
    let player = Arc::new(parts.player);
    let stt = Arc::new(parts.stt);
    let spoken = parts.voice.spoken();
    let engines = Engines {
        stt: Arc::clone(&stt) as Arc<dyn sotto_stt::SpeechToText>,
        llm: Arc::clone(&llm) as Arc<dyn Llm>,
        voice: Box::new(parts.voice),
        player: Arc::clone(&player) as Arc<dyn AudioOut>,
        instant: parts
            .instant
            .map(|i| Box::new(i) as Box<dyn crate::intents::InstantSource>),
        memory: None,
    };
    let (heard, heard_rx) = mpsc::unbounded_channel();
    let (ears_tx, ears) = std_mpsc::channel();
    let settings = if parts.watchdog {
        parts.settings
    } else {
        quiet_watchdog(parts.settings)
    };
    let (assistant, events) =
        Assistant::with_ears(engines, settings, heard_rx, ears_tx).expect("starts");
    Rig {
        assistant,
        events,
        heard,
        ears,
        llm,
        player,
        stt,
        spoken,
        _watchdog: watchdog,
    }
}

impl Rig {
    async fn next(&mut self) -> Event {
        loop {
            match self.events.recv().await {
                Ok(event) => return event,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => panic!("the assistant stopped"),
            }
        }
    }

    /// Events up to and including the first that `stop` accepts.
    async fn until(&mut self, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            let last = stop(&event);
            seen.push(event);
            if last {
                return seen;
            }
        }
    }

    /// Events up to the state `state`.
    async fn until_state(&mut self, state: AssistantState) -> Vec<Event> {
        self.until(|e| matches!(e, Event::StateChanged { state: s, .. } if *s == state))
            .await
    }

    /// Events up to the end of a turn, and how it ended.
    async fn until_finished(&mut self) -> (Vec<Event>, TurnOutcome, String) {
        let events = self
            .until(|e| matches!(e, Event::TurnFinished { .. }))
            .await;
        match events.last() {
            Some(Event::TurnFinished {
                outcome,
                heard_text,
                ..
            }) => {
                let (outcome, heard) = (*outcome, heard_text.clone());
                (events, outcome, heard)
            }
            _ => unreachable!("until stops at a finished turn"),
        }
    }

    /// The ears hear `text` spoken, in 100 ms blocks, up to its end.
    fn say(&self, text: &str) {
        let audio = fakes::spoken(text);
        self.heard.send(Heard::Started).expect("listening");
        for block in audio.chunks(1_600) {
            self.heard
                .send(Heard::Audio(block.to_vec()))
                .expect("listening");
        }
        self.heard
            .send(Heard::Utterance {
                audio,
                ended_at: Instant::now(),
            })
            .expect("listening");
    }

    /// Push-to-talk: the key goes down, `text` is said, the key comes up.
    fn ask(&self, text: &str) {
        self.send(Command::StartListening);
        self.say(text);
        self.send(Command::StopListening);
    }

    /// As [`Rig::say`], at a pace the recogniser keeps up with (real 100 ms blocks
    /// would take as long as the speech; a few real milliseconds each are enough).
    async fn say_slowly(&self, text: &str) {
        let audio = fakes::spoken(text);
        self.heard.send(Heard::Started).expect("listening");
        for block in audio.chunks(1_600) {
            self.heard
                .send(Heard::Audio(block.to_vec()))
                .expect("listening");
            tokio::time::sleep(Duration::from_millis(1)).await;
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
        self.heard
            .send(Heard::Utterance {
                audio,
                ended_at: Instant::now(),
            })
            .expect("listening");
    }

    fn send(&self, command: Command) {
        self.assistant.send(command);
    }

    /// Lets the assistant act on everything sent so far before the test goes on (it
    /// runs on this thread: the test's next step would otherwise race it).
    async fn settle(&self) {
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
    }

    /// Every key press and cancel the ears got so far.
    fn controls(&self) -> Vec<EarsControl> {
        self.ears.try_iter().collect()
    }

    /// Waits until the mouth has finished `pieces` pieces (it reports a piece just
    /// after the voice returns), then lets its report through.
    async fn wait_spoken(&self, pieces: usize) {
        while self.spoken.lock().map_or(0, |s| s.len()) < pieces {
            // Lets the model's scripted delays run on the paused clock, and the voice
            // thread on the real one.
            tokio::time::sleep(Duration::from_millis(1)).await;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn states(events: &[Event]) -> Vec<AssistantState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StateChanged { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

fn errors(events: &[Event]) -> Vec<ErrorKind> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ErrorOccurred { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

fn answer_text(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::LlmTextChunk { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

use AssistantState::*;

#[tokio::test(start_paused = true)]
async fn a_spoken_question_goes_through_every_state_and_is_answered() {
    let mut rig = start(Parts::default());
    // Push-to-talk rests in IDLE, where it starts: no event for that.
    rig.send(Command::StartListening);
    rig.until_state(Listening).await;
    rig.say(QUESTION);
    rig.send(Command::StopListening);
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(
        states(&events),
        [
            AnalyzingSpeech,
            CheckingCache,
            RoutingToLlm,
            GeneratingSpeech,
            Speaking
        ]
    );
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(heard, ANSWER);
    assert_eq!(answer_text(&events), ANSWER);
    assert!(events.iter().any(|e| matches!(e,
        Event::TranscriptFinal { turn_id: 1, text } if text == QUESTION)));
    let Some(Event::TurnFinished {
        turn_id,
        timings,
        provider,
        ..
    }) = events.last()
    else {
        unreachable!()
    };
    assert_eq!(*turn_id, 1);
    assert_eq!(provider.as_deref(), Some("fake"));
    for (stage, time) in [
        ("speech end", timings.speech_end_ms),
        ("final", timings.stt_final_ms),
        ("cache", timings.cache_decision_ms),
        ("first token", timings.first_token_ms),
        ("first sentence", timings.first_sentence_ms),
        ("first audio", timings.first_audio_ms),
        ("playback end", timings.playback_end_ms),
        ("v2v", timings.v2v_ms),
    ] {
        assert!(time.is_some(), "{stage} missing: {timings:?}");
    }
    assert_eq!(states(&rig.until_state(Idle).await), [Idle]);
    assert_eq!(rig.controls(), [EarsControl::Press, EarsControl::Release]);
    // The model got the persona and the question; it read the persona at start.
    let requests = rig.llm.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].messages.len(), 2);
    assert_eq!(requests[0].messages[0].role, Role::System);
    assert_eq!(requests[0].messages[1].content, QUESTION);
    assert_eq!(rig.llm.warmed().len(), 1);
    assert_eq!(
        *rig.spoken.lock().expect("spoken"),
        ["The capital of France is Paris.", "It lies on the Seine."]
    );
}

#[tokio::test(start_paused = true)]
async fn hands_free_listens_at_rest_and_again_after_each_answer() {
    let mut rig = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        ..Parts::default()
    });
    let first = rig.next().await;
    assert!(
        matches!(
            first,
            Event::StateChanged {
                state: Listening,
                turn_id: 1,
                ..
            }
        ),
        "{first:?}"
    );
    for turn in 1..=2 {
        rig.say(QUESTION);
        let (_, outcome, _) = rig.until_finished().await;
        assert_eq!(outcome, TurnOutcome::Answered);
        let rest = rig.next().await;
        assert!(
            matches!(rest, Event::StateChanged { state: Listening, turn_id, .. } if turn_id == turn + 1),
            "{rest:?}"
        );
    }
    assert!(rig.controls().is_empty(), "hands-free presses no key");
}

#[tokio::test(start_paused = true)]
async fn partials_follow_the_audio_and_belong_to_the_turn_being_listened_to() {
    let mut rig = partials_every_500_ms();
    rig.send(Command::StartListening);
    rig.say_slowly("tell me a long story about a brave little dragon")
        .await;
    rig.send(Command::StopListening);
    let events = rig
        .until(|e| matches!(e, Event::TranscriptFinal { .. }))
        .await;
    let partials: Vec<(u64, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::TranscriptPartial { turn_id, text } => Some((*turn_id, text.clone())),
            _ => None,
        })
        .collect();
    assert!(!partials.is_empty(), "{events:?}");
    assert!(partials.iter().all(|(id, _)| *id == 1), "{partials:?}");
    // Each partial is the start of the question, and grows.
    for (_, text) in &partials {
        assert!(
            "tell me a long story about a brave little dragon".starts_with(text.as_str()),
            "{text:?}"
        );
    }
    assert!(partials.windows(2).all(|w| w[1].1.len() > w[0].1.len()));
    assert!(rig.stt.calls() > partials.len(), "the final is a call too");
}

#[tokio::test(start_paused = true)]
async fn the_model_reads_the_question_ahead_while_it_is_said() {
    const SAID: &str = "tell me a long story about a brave little dragon";
    let mut rig = partials_every_500_ms();
    rig.send(Command::StartListening);
    rig.say_slowly(SAID).await;
    rig.send(Command::StopListening);
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    let read = rig.llm.read_ahead_of();
    assert!(!read.is_empty(), "nothing was read ahead");
    let asked = rig.llm.requests();
    assert_eq!(asked.len(), 1, "reading ahead asks nothing");
    let question = &asked[0].messages;
    for ahead in &read {
        // While the user spoke, before the question was asked (then the answer has the
        // model): the conversation it is asked in, ending with the words said so far.
        assert_eq!(
            ahead.chats_before, 0,
            "read ahead after the question was asked"
        );
        assert!(!ahead.stopped_at_start);
        // Stopped once the utterance closed: the recogniser's final wants the cores.
        assert!(ahead.cancel.is_cancelled(), "still reading ahead");
        let (said, before) = ahead.messages.split_last().expect("messages");
        assert_eq!(before, &question[..question.len() - 1]);
        assert_eq!(said.role, sotto_llm::Role::User);
        assert!(SAID.starts_with(said.content.as_str()), "{said:?}");
    }
}

/// Waits (on both clocks: the recogniser is a real thread) until `done` holds.
async fn wait_for(rig: &Rig, what: &str, done: impl Fn(&Rig) -> bool) {
    for _ in 0..2_000 {
        if done(rig) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("never: {what}");
}

#[tokio::test(start_paused = true)]
async fn reading_ahead_stops_at_the_pause_and_starts_again_only_with_speech() {
    let rig = partials_every_500_ms();
    let say = |text: &str| {
        for block in fakes::spoken(text).chunks(1_600) {
            rig.heard
                .send(Heard::Audio(block.to_vec()))
                .expect("listening");
        }
    };
    rig.send(Command::StartListening);
    rig.heard.send(Heard::Started).expect("listening");
    say("tell me a long story about");
    wait_for(&rig, "a read-ahead", |r| !r.llm.read_ahead_of().is_empty()).await;
    rig.heard.send(Heard::Paused).expect("listening");
    // The decode at the pause starts the answer early.
    wait_for(&rig, "the early answer", |r| r.llm.requests().len() == 1).await;
    let at_pause = rig.llm.read_ahead_of();
    // Every read-ahead so far was stopped, and none started after the pause (it would
    // hold a stop of its own, unused): a partial that comes back late is not read.
    assert!(
        at_pause
            .iter()
            .all(|a| !a.stopped_at_start && a.cancel.is_cancelled()),
        "{at_pause:?}"
    );
    // Speech again: the early answer is dropped, and reading ahead starts again.
    rig.heard.send(Heard::Resumed).expect("listening");
    say("a brave little dragon");
    wait_for(&rig, "a read-ahead after the pause", |r| {
        r.llm.read_ahead_of().len() > at_pause.len()
    })
    .await;
    let resumed = rig.llm.read_ahead_of();
    assert!(resumed[at_pause.len()..]
        .iter()
        .all(|a| !a.stopped_at_start && !a.cancel.is_cancelled()));
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_while_speaking_keeps_only_what_was_heard() {
    let mut rig = start(Parts {
        player: FakePlayer::manual(),
        ..Parts::default()
    });
    rig.ask(QUESTION);
    rig.until_state(Speaking).await;
    rig.wait_spoken(1).await;
    // Three words of "The capital of France is Paris." (100 ms a word).
    rig.player.advance_ms(350);
    rig.send(Command::Interrupt);
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted, "{events:?}");
    assert_eq!(heard, "The capital of");
    assert_eq!(states(&rig.until_state(Listening).await), [Listening]);
    assert!(rig.player.stops() >= 1, "the voice was silenced");
    assert_eq!(
        rig.controls().last(),
        Some(&EarsControl::Press),
        "listens again"
    );
    // The next question carries only what was heard.
    rig.say("and of spain");
    rig.send(Command::StopListening);
    rig.until_state(RoutingToLlm).await;
    let requests = rig.llm.requests();
    let context = &requests[1].messages;
    assert_eq!(context.len(), 4, "{context:?}");
    assert_eq!(context[2].role, Role::Assistant);
    assert_eq!(context[2].content, "The capital of");
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_while_the_model_thinks_cancels_it_and_says_nothing() {
    let mut rig = start(Parts {
        llm: FakeLlm::new(vec![
            vec![Step::Hang],
            fakes::tokens("Two.", Duration::from_millis(10)),
        ]),
        ..Parts::default()
    });
    rig.ask(QUESTION);
    rig.until_state(RoutingToLlm).await;
    rig.send(Command::Interrupt);
    let (_, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted);
    assert_eq!(heard, "");
    rig.until_state(Listening).await;
    rig.send(Command::StopListening);
    rig.send(Command::SendText("what is one plus one".into()));
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(answer_text(&events), "Two.");
    assert_eq!(*rig.spoken.lock().expect("spoken"), ["Two."]);
}

#[tokio::test(start_paused = true)]
async fn a_final_arriving_after_an_interrupt_is_dropped() {
    let (stt, gate) = FakeStt::gated();
    let mut rig = start(Parts {
        stt,
        ..Parts::default()
    });
    rig.ask(QUESTION);
    rig.until_state(AnalyzingSpeech).await;
    rig.send(Command::Interrupt);
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted);
    // The recogniser finishes the old question now; a typed one follows.
    gate.open();
    rig.send(Command::StopListening);
    rig.send(Command::SendText("hello".into()));
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::TranscriptFinal { turn_id: 1, .. })),
        "{events:?}"
    );
    let asked: Vec<String> = rig
        .llm
        .requests()
        .iter()
        .filter_map(|r| r.messages.last().map(|m| m.content.clone()))
        .collect();
    assert_eq!(
        asked,
        ["hello"],
        "the interrupted question was never answered"
    );
}

#[tokio::test(start_paused = true)]
async fn pressing_the_key_while_speaking_interrupts_and_listens() {
    let mut rig = start(Parts {
        player: FakePlayer::manual(),
        ..Parts::default()
    });
    rig.ask(QUESTION);
    rig.until_state(Speaking).await;
    let _ = rig.controls();
    rig.send(Command::StartListening);
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted);
    assert_eq!(states(&rig.until_state(Listening).await), [Listening]);
    assert_eq!(rig.controls(), [EarsControl::Press]);
}

#[tokio::test(start_paused = true)]
async fn hands_free_ignores_its_own_voice_unless_voice_barge_in_is_on() {
    for barge_in in [false, true] {
        let mut rig = start(Parts {
            settings: TurnSettings {
                mode: ListenMode::HandsFree,
                partial_interval_ms: 0,
                barge_in_while_speaking: barge_in,
                ..TurnSettings::default()
            },
            player: FakePlayer::manual(),
            ..Parts::default()
        });
        rig.say(QUESTION);
        rig.until_state(Speaking).await;
        // The microphone hears the answer start.
        rig.heard.send(Heard::Started).expect("ears");
        rig.settle().await;
        if barge_in {
            let (_, outcome, _) = rig.until_finished().await;
            assert_eq!(outcome, TurnOutcome::Interrupted);
            assert_eq!(states(&rig.until_state(Listening).await), [Listening]);
        } else {
            rig.wait_spoken(1).await;
            rig.player.play_all();
            rig.wait_spoken(2).await;
            rig.player.play_all();
            let (events, outcome, _) = rig.until_finished().await;
            assert_eq!(outcome, TurnOutcome::Answered, "{events:?}");
            let controls = rig.controls();
            assert!(
                controls.contains(&EarsControl::Cancel),
                "{controls:?} {events:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_too_short_for_speech_during_the_answer_leaves_it_alone() {
    // Hands-free, the detector hears a click (or a syllable of the assistant's own
    // voice) too short to be speech: the answer goes on, nothing starts listening.
    let mut rig = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        player: FakePlayer::manual(),
        ..Parts::default()
    });
    rig.say(QUESTION);
    rig.until_state(Speaking).await;
    rig.wait_spoken(1).await;
    rig.heard.send(Heard::NoSpeech).expect("ears");
    rig.settle().await;
    let events = pending(&mut rig);
    assert!(states(&events).is_empty(), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::TurnFinished { .. })),
        "{events:?}"
    );
    rig.player.play_all();
    rig.wait_spoken(2).await;
    rig.player.play_all();
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered, "{events:?}");
}

/// A hands-free assistant with voice barge-in (as with the echo canceller on), speaking
/// its first piece of the answer.
async fn speaking_with_voice_barge_in() -> Rig {
    let mut rig = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            barge_in_while_speaking: true,
            ..TurnSettings::default()
        },
        player: FakePlayer::manual(),
        ..Parts::default()
    });
    rig.say(QUESTION);
    rig.until_state(Speaking).await;
    rig.wait_spoken(1).await;
    // "The capital of" heard.
    rig.player.advance_ms(350);
    rig.settle().await;
    pending(&mut rig);
    rig
}

fn voice_paused(events: &[Event]) -> Vec<bool> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::VoicePaused { paused, .. } => Some(*paused),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn speech_over_the_answer_pauses_the_voice_and_interrupts_when_it_lasts() {
    let mut rig = speaking_with_voice_barge_in().await;
    rig.heard.send(Heard::Onset).expect("ears");
    rig.settle().await;
    assert!(rig.player.is_paused(), "the voice holds at once");
    assert_eq!(voice_paused(&pending(&mut rig)), [true]);
    // Nothing plays while the user may be talking.
    rig.player.advance_ms(500);
    // The speech lasts: the turn is interrupted, with what was heard before the pause.
    rig.heard.send(Heard::Started).expect("ears");
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted, "{events:?}");
    assert_eq!(heard, "The capital of");
    assert!(!rig.player.is_paused() && rig.player.stops() >= 1);
    assert_eq!(states(&rig.until_state(Listening).await), [Listening]);
}

#[tokio::test(start_paused = true)]
async fn a_short_sound_over_the_answer_only_pauses_it() {
    // An "mm-hm": onset, then too short for speech. The endpointer says so only after
    // its hangover (600 ms of silence): the voice has played on after the hold by then,
    // and the late NoSpeech changes nothing.
    let mut rig = speaking_with_voice_barge_in().await;
    rig.heard.send(Heard::Onset).expect("ears");
    rig.settle().await;
    assert!(rig.player.is_paused());
    tokio::time::advance(Duration::from_millis(690)).await;
    rig.heard.send(Heard::NoSpeech).expect("ears");
    rig.settle().await;
    assert!(!rig.player.is_paused());
    assert_eq!(voice_paused(&pending(&mut rig)), [true, false]);
    // A NoSpeech inside the hold (a detector that rejects sooner) plays on at once.
    rig.heard.send(Heard::Onset).expect("ears");
    rig.settle().await;
    rig.heard.send(Heard::NoSpeech).expect("ears");
    rig.settle().await;
    assert!(!rig.player.is_paused());
    assert_eq!(voice_paused(&pending(&mut rig)), [true, false]);
    // A click nobody follows up: the voice plays on by itself after the hold.
    rig.heard.send(Heard::Onset).expect("ears");
    rig.settle().await;
    assert!(rig.player.is_paused());
    tokio::time::advance(HOLD_FOR_SPEECH + Duration::from_millis(10)).await;
    rig.settle().await;
    assert!(!rig.player.is_paused(), "plays on after the hold");
    assert_eq!(voice_paused(&pending(&mut rig)), [true, false]);
    rig.player.play_all();
    rig.wait_spoken(2).await;
    rig.player.play_all();
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered, "{events:?}");
    assert_eq!(heard, ANSWER, "the whole answer, once");
    assert_eq!(rig.player.pauses(), 3);
}

#[tokio::test(start_paused = true)]
async fn when_the_echo_canceller_stops_speech_over_the_answer_no_longer_interrupts_it() {
    let mut rig = speaking_with_voice_barge_in().await;
    rig.heard
        .send(Heard::EchoStopped("AEC3 failed".into()))
        .expect("ears");
    rig.settle().await;
    let events = pending(&mut rig);
    let message = events
        .iter()
        .find_map(|e| match e {
            Event::ErrorOccurred {
                kind: ErrorKind::Microphone,
                message,
                ..
            } => Some(message.clone()),
            _ => None,
        })
        .expect("the user is told");
    assert!(message.contains("Interrupt button"), "{message}");
    // Its own voice, heard again: neither pauses nor interrupts the answer.
    rig.heard.send(Heard::Onset).expect("ears");
    rig.heard.send(Heard::Started).expect("ears");
    rig.settle().await;
    assert_eq!(rig.player.pauses(), 0);
    rig.player.play_all();
    rig.wait_spoken(2).await;
    rig.player.play_all();
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered, "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn a_click_while_the_question_is_transcribed_does_not_cancel_it() {
    // Hands-free: the user stopped, the final is decoding, a cough is heard and proves
    // too short. The question is still answered.
    let (stt, gate) = FakeStt::gated();
    let mut rig = start(Parts {
        stt,
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            barge_in_while_speaking: true,
            ..TurnSettings::default()
        },
        ..Parts::default()
    });
    rig.say(QUESTION);
    rig.until_state(AnalyzingSpeech).await;
    rig.heard.send(Heard::Onset).expect("ears");
    tokio::time::advance(Duration::from_millis(690)).await;
    rig.heard.send(Heard::NoSpeech).expect("ears");
    rig.settle().await;
    gate.open();
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered, "{events:?}");
    assert_eq!(heard, ANSWER);
}

#[tokio::test(start_paused = true)]
async fn without_voice_barge_in_a_possible_onset_leaves_the_voice_alone() {
    let mut rig = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        player: FakePlayer::manual(),
        ..Parts::default()
    });
    rig.say(QUESTION);
    rig.until_state(Speaking).await;
    rig.wait_spoken(1).await;
    rig.heard.send(Heard::Onset).expect("ears");
    rig.settle().await;
    assert_eq!(rig.player.pauses(), 0);
    assert!(voice_paused(&pending(&mut rig)).is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_echo_guard_lasts_a_moment_after_the_sound_stops() {
    let mut rig = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        // The model stalls after its first sentence, so the voice runs dry mid-answer.
        llm: FakeLlm::new(vec![vec![
            Step::Text(Duration::from_millis(10), "Paris. ".into()),
            Step::Text(Duration::from_millis(10), "It ".into()),
            Step::Until(Arc::new(Notify::new())),
        ]]),
        player: FakePlayer::manual(),
        ..Parts::default()
    });
    rig.say(QUESTION);
    rig.until_state(Speaking).await;
    rig.wait_spoken(1).await;
    rig.player.play_all();
    rig.settle().await;
    tokio::time::advance(Duration::from_millis(100)).await;
    rig.heard.send(Heard::Started).expect("ears");
    rig.settle().await;
    tokio::time::advance(Duration::from_millis(400)).await;
    // Still the same turn: an onset 100 ms after the sound stopped was taken for echo;
    // one 500 ms after is the user.
    rig.heard.send(Heard::Started).expect("ears");
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted, "{events:?}");
    assert_eq!(heard, "Paris.");
    assert_eq!(
        rig.controls()
            .iter()
            .filter(|c| **c == EarsControl::Cancel)
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_model_error_mid_answer_fails_the_turn_after_saying_what_came() {
    let mut steps = fakes::tokens("It is forty two. And", Duration::from_millis(10));
    steps.push(Step::Fail(LlmError::Worker("the worker crashed".into())));
    let mut rig = start(Parts {
        llm: FakeLlm::new(vec![steps, fakes::tokens("Yes.", Duration::ZERO)]),
        ..Parts::default()
    });
    rig.send(Command::SendText("what is six times seven".into()));
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Failed);
    assert_eq!(errors(&events), [ErrorKind::Llm]);
    assert_eq!(heard, "It is forty two. And");
    rig.until_state(Idle).await;
    // The assistant goes on.
    rig.send(Command::SendText("are you there".into()));
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
}

#[tokio::test(start_paused = true)]
async fn a_model_error_before_any_word_fails_at_once() {
    let mut rig = start(Parts {
        llm: FakeLlm::new(vec![vec![Step::Fail(LlmError::Worker("no model".into()))]]),
        ..Parts::default()
    });
    rig.send(Command::SendText("hi".into()));
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Failed);
    assert_eq!(errors(&events), [ErrorKind::Llm]);
    assert_eq!(heard, "");
    assert!(!states(&events).contains(&Speaking));
    assert_eq!(states(&rig.until_state(Idle).await), [Idle]);
    assert!(rig.spoken.lock().expect("spoken").is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_instant_answer_is_spoken_without_the_model() {
    let mut rig = start(Parts {
        instant: Some(FakeInstant {
            question: "who are you".into(),
            answer: "I am Sotto.".into(),
        }),
        ..Parts::default()
    });
    rig.send(Command::SendText("who are you".into()));
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(heard, "I am Sotto.");
    assert_eq!(states(&events), [CheckingCache, Speaking]);
    assert!(matches!(events.last(),
        Some(Event::TurnFinished { provider: Some(p), .. }) if p == "instant"));
    assert!(rig.llm.requests().is_empty());
    // Anything else still goes to the model.
    rig.send(Command::SendText("who am i".into()));
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(rig.llm.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_typed_question_while_listening_drops_the_open_utterance() {
    let mut rig = start(Parts::default());
    rig.send(Command::StartListening);
    rig.until_state(Listening).await;
    rig.heard.send(Heard::Started).expect("ears");
    rig.heard
        .send(Heard::Audio(fakes::spoken("what is")))
        .expect("ears");
    rig.settle().await;
    rig.send(Command::SendText("what is two plus two".into()));
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert!(events.iter().any(|e| matches!(e,
        Event::TranscriptFinal { text, .. } if text == "what is two plus two")));
    assert_eq!(
        rig.controls(),
        [EarsControl::Press, EarsControl::Cancel],
        "the half-said question was dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn silence_and_empty_transcripts_end_as_no_speech() {
    let mut rig = start(Parts::default());
    rig.send(Command::StartListening);
    rig.until_state(Listening).await;
    rig.heard.send(Heard::NoSpeech).expect("ears");
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::NoSpeech);
    rig.until_state(Idle).await;
    // Sound without words: whisper finds nothing to say.
    rig.send(Command::StartListening);
    rig.heard.send(Heard::Started).expect("ears");
    rig.heard
        .send(Heard::Utterance {
            audio: vec![0.01; 16_000],
            ended_at: Instant::now(),
        })
        .expect("ears");
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::NoSpeech, "{events:?}");
    assert!(rig.llm.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_recogniser_failure_fails_the_turn_and_says_why() {
    let mut rig = start(Parts {
        stt: FakeStt::failing("whisper broke"),
        ..Parts::default()
    });
    rig.ask(QUESTION);
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Failed);
    assert_eq!(errors(&events), [ErrorKind::SpeechToText]);
    assert!(events.iter().any(|e| matches!(e,
        Event::ErrorOccurred { message, .. } if message.contains("whisper broke"))));
    assert_eq!(states(&rig.until_state(Idle).await), [Idle]);
}

#[tokio::test(start_paused = true)]
async fn a_voice_failure_silences_the_turn_and_fails_it() {
    let mut rig = start(Parts {
        voice: FakeVoice::failing_on("Seine"),
        player: FakePlayer::manual(),
        ..Parts::default()
    });
    rig.send(Command::SendText(QUESTION.into()));
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Failed);
    assert!(errors(&events).contains(&ErrorKind::Voice), "{events:?}");
    assert!(rig.player.stops() >= 1);
    assert_eq!(states(&rig.until_state(Idle).await), [Idle]);
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_starts_repeating_itself_ends_at_the_repetition() {
    let mut steps = fakes::tokens(
        "Octopuses are clever. They can open jars. They can open jars. They can open jars.",
        Duration::from_millis(10),
    );
    // A model that would go on for ever unless it is stopped.
    steps.push(Step::Hang);
    let mut rig = start(Parts {
        llm: FakeLlm::new(vec![steps, fakes::tokens("Squid too.", Duration::ZERO)]),
        ..Parts::default()
    });
    rig.send(Command::SendText("tell me about octopuses".into()));
    let (_, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(heard, "Octopuses are clever. They can open jars.");
    rig.until_state(Idle).await;
    // What was not said is not remembered as said.
    rig.send(Command::SendText("and squid".into()));
    rig.until_finished().await;
    let turns: Vec<String> = rig.llm.requests()[1]
        .turns()
        .map(|m| m.content.clone())
        .collect();
    assert_eq!(
        turns,
        [
            "tell me about octopuses",
            "Octopuses are clever. They can open jars.",
            "and squid"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_answer_ends_at_the_sentence_that_would_pass_its_length() {
    let mut steps = fakes::tokens(
        "Sleep at the same time. Avoid coffee after noon. Keep the room dark and cool. Read.",
        Duration::from_millis(10),
    );
    steps.push(Step::Hang);
    let mut rig = start(Parts {
        settings: TurnSettings {
            answer_words: 10,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        llm: FakeLlm::new(vec![steps]),
        ..Parts::default()
    });
    rig.send(Command::SendText("how do I sleep better".into()));
    let (_, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(heard, "Sleep at the same time. Avoid coffee after noon.");
}

#[tokio::test(start_paused = true)]
async fn the_model_sees_the_last_turns_up_to_the_limit() {
    let mut rig = start(Parts {
        settings: TurnSettings {
            history_turns: 1,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        llm: FakeLlm::new(vec![
            fakes::tokens("One.", Duration::ZERO),
            fakes::tokens("Two.", Duration::ZERO),
            fakes::tokens("Three.", Duration::ZERO),
        ]),
        ..Parts::default()
    });
    for question in ["first", "second", "third"] {
        rig.send(Command::SendText(question.into()));
        let (_, outcome, _) = rig.until_finished().await;
        assert_eq!(outcome, TurnOutcome::Answered);
    }
    let contents: Vec<Vec<String>> = rig
        .llm
        .requests()
        .iter()
        .map(|r| r.turns().map(|m| m.content.clone()).collect())
        .collect();
    assert_eq!(contents[0], ["first"]);
    assert_eq!(contents[1], ["first", "One.", "second"]);
    assert_eq!(
        contents[2],
        ["second", "Two.", "third"],
        "one earlier turn kept"
    );
}

#[tokio::test(start_paused = true)]
async fn a_settings_restart_ends_the_old_assistant_cleanly_and_starts_the_new_one() {
    let mut old = start(Parts {
        llm: FakeLlm::new(vec![vec![Step::Hang]]),
        ..Parts::default()
    });
    old.send(Command::SendText("tell me everything".into()));
    old.until_state(RoutingToLlm).await;
    // What the app does on a settings change: shut down, wait, start anew.
    old.send(Command::Shutdown);
    let (_, outcome, _) = old.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted);
    let Rig {
        assistant,
        mut events,
        ..
    } = old;
    assistant.finished().await;
    // The event stream closes once the orchestrator is gone.
    while let Ok(_) | Err(RecvError::Lagged(_)) = events.recv().await {}
    let mut new = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            system_prompt: "You are terse.".into(),
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        ..Parts::default()
    });
    assert!(matches!(
        new.next().await,
        Event::StateChanged {
            state: Listening,
            ..
        }
    ));
    assert_eq!(new.llm.warmed()[0][0].content, "You are terse.");
    new.say(QUESTION);
    let (_, outcome, _) = new.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(new.llm.requests()[0].messages[0].content, "You are terse.");
}

#[tokio::test(start_paused = true)]
async fn the_end_of_the_audio_source_stops_the_assistant_after_the_last_turn() {
    let mut rig = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        ..Parts::default()
    });
    rig.say(QUESTION);
    rig.heard.send(Heard::Ended).expect("ears");
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(states(&rig.until_state(Idle).await), [Idle]);
    let Rig { mut assistant, .. } = rig;
    // Its owner sees it end, unasked, as often as it asks.
    assert_eq!(assistant.ended().await, crate::Ended::Stopped);
    assert_eq!(assistant.ended().await, crate::Ended::Stopped);
    assistant.finished().await;
}

fn hands_free() -> Parts {
    Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        ..Parts::default()
    }
}

fn finals(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::TranscriptFinal { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn hands_free_waits_for_the_rest_of_a_broken_off_sentence() {
    let mut rig = start(hands_free());
    rig.say("can you tell me");
    // The transcript sounds broken off: shown, not answered.
    let held = rig
        .until(|e| matches!(e, Event::TranscriptPartial { .. }))
        .await;
    assert!(finals(&held).is_empty(), "{held:?}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    rig.say("what the capital of france is");
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(
        finals(&events),
        ["can you tell me what the capital of france is"]
    );
    let asked = rig.llm.requests();
    assert_eq!(asked.len(), 1, "one question, not two");
    assert_eq!(
        asked[0].messages.last().map(|m| m.content.as_str()),
        Some("can you tell me what the capital of france is")
    );
    assert!(events.iter().all(|e| match e {
        Event::TurnFinished { turn_id, .. } | Event::TranscriptFinal { turn_id, .. } =>
            *turn_id == 1,
        _ => true,
    }));
}

#[tokio::test(start_paused = true)]
async fn a_broken_off_sentence_is_answered_as_it_is_when_nothing_follows() {
    let mut rig = start(hands_free());
    rig.say("remind me to");
    rig.until(|e| matches!(e, Event::TranscriptPartial { .. }))
        .await;
    let held_at = tokio::time::Instant::now();
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(finals(&events), ["remind me to"]);
    assert!(
        held_at.elapsed() >= UNFINISHED_WAIT,
        "{:?}",
        held_at.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_finished_sentence_is_answered_without_waiting() {
    let mut rig = start(hands_free());
    rig.say(QUESTION);
    let started = tokio::time::Instant::now();
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(finals(&events), [QUESTION]);
    assert!(
        started.elapsed() < UNFINISHED_WAIT,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn speech_again_before_the_transcript_is_in_continues_the_turn() {
    let (stt, gate) = FakeStt::gated();
    let mut rig = start(Parts {
        stt,
        ..hands_free()
    });
    // The first part's transcript is held up: the user goes on before it is in.
    rig.say("what is the capital");
    rig.until_state(AnalyzingSpeech).await;
    rig.say("of france");
    gate.open();
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(finals(&events), ["what is the capital of france"]);
    assert_eq!(rig.llm.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_click_while_waiting_for_the_rest_does_not_end_the_sentence() {
    let mut rig = start(hands_free());
    rig.say("remind me to");
    rig.until(|e| matches!(e, Event::TranscriptPartial { .. }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Too short to be speech: the listener rejects it.
    rig.heard.send(Heard::NoSpeech).expect("ears");
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.say("buy milk");
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(finals(&events), ["remind me to buy milk"]);
    assert_eq!(rig.llm.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_microphone_lost_while_the_rest_is_spoken_answers_the_first_part() {
    let mut rig = start(hands_free());
    rig.say("can you tell me");
    rig.until(|e| matches!(e, Event::TranscriptPartial { .. }))
        .await;
    // The user goes on, and the microphone is unplugged mid-word: that utterance never
    // closes.
    rig.heard.send(Heard::Started).expect("ears");
    rig.heard
        .send(Heard::Lost("unplugged".into()))
        .expect("ears");
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(finals(&events), ["can you tell me"]);
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::ErrorOccurred {
                kind: ErrorKind::Microphone,
                ..
            }
        )),
        "{events:?}"
    );
}

/// Push-to-talk: the key goes down, `text` is said, and the user goes quiet with the key
/// still held (the ears report the pause); returns the audio said.
async fn say_and_pause(rig: &mut Rig, text: &str) -> Vec<f32> {
    rig.send(Command::StartListening);
    let audio = fakes::spoken(text);
    rig.heard.send(Heard::Started).expect("listening");
    for block in audio.chunks(1_600) {
        rig.heard
            .send(Heard::Audio(block.to_vec()))
            .expect("listening");
    }
    rig.heard.send(Heard::Paused).expect("listening");
    // The decode made at the pause comes back as a partial.
    rig.until(|e| matches!(e, Event::TranscriptPartial { .. }))
        .await;
    audio
}

/// Every event already sent, without waiting.
fn pending(rig: &mut Rig) -> Vec<Event> {
    std::iter::from_fn(|| rig.events.try_recv().ok()).collect()
}

fn finished_timings(events: &[Event]) -> Timings {
    events
        .iter()
        .find_map(|e| match e {
            Event::TurnFinished { timings, .. } => Some(*timings),
            _ => None,
        })
        .expect("a finished turn")
}

fn first_index(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().position(f).expect("the event")
}

#[tokio::test(start_paused = true)]
async fn the_answer_starts_at_the_pause_and_is_kept_when_the_final_says_the_same() {
    let mut rig = start(Parts::default());
    let audio = say_and_pause(&mut rig, QUESTION).await;
    // Asked while the key is still held, and streamed into the buffer, not the window.
    assert_eq!(rig.llm.requests().len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let early = pending(&mut rig);
    assert!(
        !early
            .iter()
            .any(|e| matches!(e, Event::LlmTextChunk { .. })),
        "nothing of the answer before the final: {early:?}"
    );
    assert!(rig.spoken.lock().expect("spoken").is_empty());
    rig.heard
        .send(Heard::Utterance {
            audio,
            ended_at: Instant::now(),
        })
        .expect("listening");
    rig.send(Command::StopListening);
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!((outcome, heard.as_str()), (TurnOutcome::Answered, ANSWER));
    assert_eq!(answer_text(&events), ANSWER);
    assert_eq!(
        rig.llm.requests().len(),
        1,
        "the early answer was the answer"
    );
    let final_at = first_index(&events, |e| matches!(e, Event::TranscriptFinal { .. }));
    let text_at = first_index(&events, |e| matches!(e, Event::LlmTextChunk { .. }));
    assert!(final_at < text_at, "the transcript first, then the answer");
    let timings = finished_timings(&events);
    assert_eq!(timings.early_start, Some(true));
    let (asked, heard_at) = (timings.llm_start_ms, timings.stt_final_ms);
    assert!(
        asked.zip(heard_at).is_some_and(|(a, f)| a < f),
        "asked before the final: {timings:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_early_answer_to_other_words_is_dropped_for_the_final_question() {
    let france = "Paris is the capital of France.";
    let spain = "Madrid is the capital of Spain.";
    let mut rig = start(Parts {
        llm: FakeLlm::new(vec![
            fakes::tokens(france, Duration::from_millis(20)),
            fakes::tokens(spain, Duration::from_millis(20)),
        ]),
        ..Parts::default()
    });
    say_and_pause(&mut rig, "what is the capital of france").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The final transcript says other words than the pause's.
    rig.heard
        .send(Heard::Utterance {
            audio: fakes::spoken("what is the capital of spain"),
            ended_at: Instant::now(),
        })
        .expect("listening");
    rig.send(Command::StopListening);
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!((outcome, heard.as_str()), (TurnOutcome::Answered, spain));
    assert_eq!(answer_text(&events), spain);
    let requests = rig.llm.requests();
    assert_eq!(requests.len(), 2);
    let asked = requests[1].messages.last().map(|m| m.content.as_str());
    assert_eq!(asked, Some("what is the capital of spain"));
    let spoken = rig.spoken.lock().expect("spoken").clone();
    assert!(
        spoken.iter().all(|piece| !piece.contains("Paris")),
        "{spoken:?}"
    );
    assert!(events.iter().any(|e| matches!(e,
        Event::TurnFinished { user_text, .. } if user_text == "what is the capital of spain")));
    assert_eq!(finished_timings(&events).early_start, Some(false));
}

#[tokio::test(start_paused = true)]
async fn speaking_again_after_the_pause_cancels_the_early_answer() {
    let mut rig = start(Parts {
        llm: FakeLlm::new(vec![
            fakes::tokens("Paris.", Duration::from_millis(20)),
            fakes::tokens("Madrid.", Duration::from_millis(20)),
        ]),
        ..Parts::default()
    });
    say_and_pause(&mut rig, "what is the capital of").await;
    rig.heard.send(Heard::Resumed).expect("listening");
    let rest = fakes::spoken("spain");
    for block in rest.chunks(1_600) {
        rig.heard
            .send(Heard::Audio(block.to_vec()))
            .expect("listening");
    }
    let mut all = fakes::spoken("what is the capital of");
    all.extend(rest);
    rig.heard
        .send(Heard::Utterance {
            audio: all,
            ended_at: Instant::now(),
        })
        .expect("listening");
    rig.send(Command::StopListening);
    let (events, _, heard) = rig.until_finished().await;
    assert_eq!(heard, "Madrid.");
    assert_eq!(rig.llm.requests().len(), 2);
    // Dropped when the user spoke again, before the final: not a restart at the final.
    assert_eq!(finished_timings(&events).early_start, None);
}

#[tokio::test(start_paused = true)]
async fn hands_free_words_that_sound_broken_off_do_not_start_an_answer() {
    let mut rig = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        ..Parts::default()
    });
    rig.until_state(Listening).await;
    let audio = fakes::spoken("can you tell me");
    rig.heard.send(Heard::Started).expect("listening");
    for block in audio.chunks(1_600) {
        rig.heard
            .send(Heard::Audio(block.to_vec()))
            .expect("listening");
    }
    rig.heard.send(Heard::Paused).expect("listening");
    rig.until(|e| matches!(e, Event::TranscriptPartial { .. }))
        .await;
    assert!(rig.llm.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_lost_microphone_pauses_listening_until_it_is_back_and_typing_still_works() {
    let mut rig = start(Parts {
        settings: TurnSettings {
            mode: ListenMode::HandsFree,
            partial_interval_ms: 0,
            ..TurnSettings::default()
        },
        ..Parts::default()
    });
    rig.until_state(Listening).await;
    rig.heard
        .send(Heard::Lost("The microphone stopped working.".into()))
        .expect("ears");
    let events = rig.until_state(AssistantState::Idle).await;
    assert_eq!(errors(&events), [ErrorKind::Microphone]);
    // The assistant goes on: a typed question is answered, and it rests idle after it
    // (nothing to listen with).
    rig.send(Command::SendText(QUESTION.into()));
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(answer_text(&events), ANSWER);
    let rest = rig.next().await;
    assert!(
        matches!(
            rest,
            Event::StateChanged {
                state: AssistantState::Idle,
                ..
            }
        ),
        "{rest:?}"
    );
    // Plugged back in: said, and listening again.
    rig.heard
        .send(Heard::Restored("USB mic".into()))
        .expect("ears");
    let events = rig.until_state(Listening).await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Recovered { kind: ErrorKind::Microphone, message } if message.contains("USB mic")
        )),
        "{events:?}"
    );
    rig.say(QUESTION);
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(finals(&events), [QUESTION]);
}

#[tokio::test(start_paused = true)]
async fn the_talk_key_without_a_microphone_says_why_instead_of_listening() {
    let mut rig = start(Parts::default());
    rig.heard
        .send(Heard::Lost("The microphone stopped working.".into()))
        .expect("ears");
    rig.until(|e| matches!(e, Event::ErrorOccurred { .. }))
        .await;
    rig.send(Command::StartListening);
    let event = rig.next().await;
    assert!(
        matches!(&event, Event::ErrorOccurred { kind: ErrorKind::Microphone, message, .. } if message.contains("stopped working")),
        "{event:?}"
    );
    rig.settle().await;
    assert!(rig.controls().is_empty(), "no key press reached the ears");
    rig.heard
        .send(Heard::Restored("USB mic".into()))
        .expect("ears");
    rig.until(|e| matches!(e, Event::Recovered { .. })).await;
    rig.ask(QUESTION);
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
}

#[tokio::test(start_paused = true)]
async fn a_model_that_hangs_fails_the_turn_at_the_stall_limit_and_the_next_question_is_answered() {
    let mut rig = start(Parts {
        llm: FakeLlm::new(vec![
            vec![Step::Hang],
            fakes::tokens(ANSWER, Duration::from_millis(20)),
        ]),
        watchdog: true,
        ..Parts::default()
    });
    let asked = tokio::time::Instant::now();
    rig.send(Command::SendText(QUESTION.into()));
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Failed);
    assert_eq!(errors(&events), [ErrorKind::Llm]);
    let waited = asked.elapsed();
    let limit = TurnSettings::default().stall_timeout;
    assert!(
        waited >= limit && waited < limit + Duration::from_secs(1),
        "{waited:?}"
    );
    rig.send(Command::SendText(QUESTION.into()));
    // Both sentences spoken, waiting on the voice thread as it works.
    rig.wait_spoken(2).await;
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(answer_text(&events), ANSWER);
}

#[tokio::test(start_paused = true)]
async fn a_speaker_that_stops_playing_fails_the_turn_with_a_speaker_error() {
    let mut rig = start(Parts {
        player: FakePlayer::manual(),
        watchdog: true,
        ..Parts::default()
    });
    rig.send(Command::SendText(QUESTION.into()));
    rig.wait_spoken(2).await;
    rig.until_state(AssistantState::Speaking).await;
    // A little is played, then the device stops taking sound.
    rig.player.advance_ms(200);
    let (events, outcome, heard) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Failed);
    let message = events.iter().find_map(|e| match e {
        Event::ErrorOccurred {
            kind: ErrorKind::Speaker,
            message,
            ..
        } => Some(message.clone()),
        _ => None,
    });
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("stopped playing")),
        "{events:?}"
    );
    // What was played through is what the user heard: not the whole answer.
    assert_ne!(heard, ANSWER);
    // The assistant is free: the next question is answered as far as the voice.
    rig.until_state(AssistantState::Idle).await;
    rig.send(Command::SendText(QUESTION.into()));
    rig.wait_spoken(3).await;
    assert_eq!(rig.llm.requests().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn typed_questions_are_trimmed_cut_to_the_limit_and_the_context_fits() {
    let mut rig = start(Parts {
        settings: TurnSettings {
            partial_interval_ms: 0,
            history_turns: 2,
            context_tokens: 1_000,
            ..TurnSettings::default()
        },
        ..Parts::default()
    });
    // Nothing typed: nothing asked.
    rig.send(Command::SendText("   \n ".into()));
    // A pasted wall of text: cut, and the user told.
    rig.send(Command::SendText(format!(
        "  {}",
        "tell me more ".repeat(2_000)
    )));
    rig.wait_spoken(2).await;
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(errors(&events), [ErrorKind::Limit]);
    let limit = TurnSettings::default().max_typed_chars;
    let asked: String = "tell me more ".repeat(2_000).chars().take(limit).collect();
    assert_eq!(finals(&events), [asked]);
    for n in 0..3 {
        rig.send(Command::SendText(format!("{QUESTION} {n}")));
        rig.wait_spoken(4 + 2 * n).await;
        rig.until_finished().await;
    }
    let requests = rig.llm.requests();
    assert_eq!(requests.len(), 4, "the empty question was never asked");
    assert_eq!(
        requests[0]
            .messages
            .last()
            .map(|m| m.content.chars().count()),
        Some(limit)
    );
    for request in &requests {
        let tokens: usize = request
            .messages
            .iter()
            .map(sotto_llm::context::estimate_tokens)
            .sum();
        assert!(tokens + 160 <= 1_000, "{tokens} tokens sent");
    }
    // The last request: the persona, the two latest turns, the question; the long one
    // is gone.
    let last = &requests[3].messages;
    assert_eq!(last.len(), 1 + 2 * 2 + 1, "{last:?}");
    assert!(last.iter().all(|m| !m.content.starts_with("tell me more")));
}

#[tokio::test(start_paused = true)]
async fn an_utterance_cut_at_the_limit_is_answered_and_the_user_told() {
    let mut rig = start(Parts::default());
    rig.send(Command::StartListening);
    rig.heard.send(Heard::LimitReached(60_000)).expect("ears");
    rig.say(QUESTION);
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(finals(&events), [QUESTION]);
    let told = events.iter().find_map(|e| match e {
        Event::ErrorOccurred {
            kind: ErrorKind::Limit,
            message,
            ..
        } => Some(message.clone()),
        _ => None,
    });
    assert!(
        told.as_deref().is_some_and(|m| m.contains("60 s")),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn listening_opened_by_the_interrupt_button_closes_if_nothing_is_said() {
    let mut rig = start(Parts {
        player: FakePlayer::manual(),
        ..Parts::default()
    });
    rig.ask(QUESTION);
    rig.until_state(Speaking).await;
    let _ = rig.controls();
    rig.send(Command::Interrupt);
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted);
    rig.settle().await;
    assert_eq!(rig.controls(), [EarsControl::Press]);
    // No key comes up and no word is said: the ears are told to close if still silent.
    tokio::time::sleep(INTERRUPT_LISTEN_LIMIT - Duration::from_millis(100)).await;
    rig.settle().await;
    assert!(rig.controls().is_empty(), "not before the limit");
    tokio::time::sleep(Duration::from_millis(200)).await;
    rig.settle().await;
    assert_eq!(rig.controls(), [EarsControl::ReleaseIfSilent]);
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_while_the_final_is_decoded_abandons_it_and_the_next_question_is_answered() {
    let (stt, gate) = FakeStt::gated();
    let mut rig = start(Parts {
        stt,
        ..Parts::default()
    });
    rig.ask(QUESTION);
    rig.until_state(AssistantState::AnalyzingSpeech).await;
    rig.send(Command::Interrupt);
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Interrupted);
    // The decode still waiting at the gate is abandoned, not left to finish.
    let freed = std::time::Instant::now();
    while rig.stt.cancelled() == 0 {
        assert!(
            freed.elapsed() < std::time::Duration::from_secs(2),
            "the final was not abandoned"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    gate.open();
    rig.send(Command::StopListening);
    rig.ask("what time is it");
    rig.wait_spoken(1).await;
    let (events, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    assert_eq!(finals(&events), ["what time is it"]);
}

#[tokio::test(start_paused = true)]
async fn a_new_conversation_asks_without_the_earlier_turns() {
    let mut rig = start(Parts::default());
    rig.send(Command::SendText("What is the capital of France?".into()));
    let (_, outcome, _) = rig.until_finished().await;
    assert_eq!(outcome, TurnOutcome::Answered);
    rig.send(Command::SendText("And of Spain?".into()));
    rig.until_finished().await;
    rig.send(Command::NewConversation);
    rig.send(Command::SendText("Hello.".into()));
    rig.until_finished().await;
    let turns: Vec<usize> = rig
        .llm
        .requests()
        .iter()
        .map(|r| r.turns().count())
        .collect();
    // The second question came with the first turn; the one after starting over alone.
    assert_eq!(turns, [1, 3, 1]);
}
