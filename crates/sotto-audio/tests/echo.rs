//! Echo cancellation on real speech in simulated rooms: jfk.wav (installed as
//! `sample-jfk` by `cargo xtask test`) plays from the speakers, the alsa-utils clips are
//! the person talking over it.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::mpsc;

use sotto_audio::analysis::{energy, erle_db};
use sotto_audio::echo::FRAME;
use sotto_audio::room::{self, Heard, Room, RoomConfig};
use sotto_audio::{
    wav, EchoCanceller, EchoReference, Endpointer, EndpointerConfig, ListenEvent, ListenMode,
    Listener, ListenerConfig, SileroVad,
};

fn jfk() -> Vec<f32> {
    let store = sotto_models::ModelStore::open_default().expect("models folder");
    let sample = store
        .require("sample-jfk")
        .expect("sample-jfk is installed by `cargo xtask test`");
    let audio = wav::read(sample.main_file()).expect("jfk.wav reads");
    sotto_audio::to_mono_16k(&audio).expect("16 kHz")
}

fn clip_16k(name: &str) -> Vec<f32> {
    let audio = wav::read(&Path::new("/usr/share/sounds/alsa").join(name))
        .expect("alsa-utils is installed by `cargo xtask test`");
    sotto_audio::to_mono_16k(&audio).expect("16 kHz")
}

/// Plays `far` in `room` (10 ms at a time, as a sound card takes it), the person saying
/// `person` from `person_at` (samples), through a canceller: (what the room made of it,
/// what came out of the canceller), both as long as `far`.
fn play(
    room: &mut Room,
    far: &[f32],
    person: Option<(&[f32], usize)>,
) -> (Heard, Vec<f32>, EchoCanceller) {
    let (tx, rx) = mpsc::sync_channel(4096);
    let mut canceller = EchoCanceller::new(EchoReference::from_channel(rx, 16_000)).expect("aec");
    let mut heard = Heard {
        echo: Vec::new(),
        person: Vec::new(),
        noise: Vec::new(),
    };
    let mut out = Vec::new();
    for (i, played) in far.chunks(FRAME).enumerate() {
        if let Some((speech, at)) = person {
            if i * FRAME == at {
                room.say(speech);
            }
        }
        tx.send(played.to_vec()).expect("reference");
        let part = room.hear_parts(played).expect("room");
        out.extend(canceller.process(&part.mix()).expect("cancels"));
        heard.echo.extend(part.echo);
        heard.person.extend(part.person);
        heard.noise.extend(part.noise);
    }
    (heard, out, canceller)
}

fn rooms() -> [RoomConfig; 2] {
    [room::OFFICE, room::LIVING_ROOM]
}

#[test]
fn the_echo_of_real_speech_is_removed_by_25_db_in_two_rooms() {
    let far = jfk();
    for config in rooms() {
        let mut room = Room::new(config);
        let (heard, out, canceller) = play(&mut room, &far, None);
        // After 3 s to converge, frames where the echo is louder than the noise. (The
        // rooms' noise is what bounds what can be measured: 35 dB under the echo.)
        let erle = erle_db(&heard.echo, &out, 3 * 16_000);
        eprintln!(
            "room {config:?}: ERLE {erle:.1} dB, AEC3 says {:?}",
            canceller.stats()
        );
        assert!(erle >= 25.0, "room {config:?}: ERLE {erle:.1} dB");
    }
}

#[test]
fn a_person_talking_over_the_echo_is_kept() {
    let far = jfk();
    let person = clip_16k("Front_Center.wav");
    for config in rooms() {
        let mut room = Room::new(config);
        // The person speaks 5 s in, once the canceller has converged.
        let at = 5 * 16_000;
        let (heard, out, _) = play(&mut room, &far, Some((&person, at)));
        let span = at..at + person.len();
        // What came out over the person's words is still their voice: it follows it
        // closely and keeps its level (AEC3 takes the echo, not the person).
        let (_, similarity) = best_match(&out[span.clone()], &heard.person[span.clone()]);
        let level_db =
            10.0 * (energy(&out[span.clone()]) / energy(&heard.person[span.clone()])).log10();
        let echo_db =
            10.0 * (energy(&heard.echo[span.clone()]) / energy(&heard.person[span])).log10();
        eprintln!(
            "room {config:?}: echo {echo_db:+.1} dB against the person; out {level_db:+.1} dB, \
             similarity {similarity:.2}"
        );
        assert!(similarity > 0.55, "room {config:?}: {similarity:.2}");
        assert!(level_db.abs() < 6.0, "room {config:?}: {level_db:.1} dB");
    }
}

#[test]
fn without_anything_played_the_microphone_passes_unharmed() {
    let person = jfk();
    let (_tx, rx) = mpsc::sync_channel::<Vec<f32>>(16);
    let mut canceller = EchoCanceller::new(EchoReference::from_channel(rx, 16_000)).expect("aec");
    let mut out = Vec::new();
    for piece in person.chunks(320) {
        out.extend(canceller.process(piece).expect("cancels"));
    }
    assert_eq!(out.len(), person.len() / FRAME * FRAME);
    let n = out.len();
    let db = 10.0 * (energy(&out) / energy(&person[..n])).log10();
    assert!(db.abs() < 1.0, "{db:.2} dB");
    // The same sound, a few milliseconds later (AEC3 works in 4 ms blocks; its
    // high-pass filter takes the rumble under 80 Hz).
    let (lag, similarity) = best_match(&out, &person[..n]);
    assert!(lag <= 80, "{lag} samples late");
    assert!(similarity > 0.8, "{similarity:.2}");
}

/// The alsa-utils clips: a person saying two words, studio-clean.
const CLIPS: [&str; 8] = [
    "Front_Center.wav",
    "Front_Left.wav",
    "Front_Right.wav",
    "Rear_Center.wav",
    "Rear_Left.wav",
    "Rear_Right.wav",
    "Side_Left.wav",
    "Side_Right.wav",
];

#[test]
fn a_person_talking_over_the_voice_is_noticed_at_once_and_the_voice_alone_is_not() {
    // Hands-free listening as the app assembles it (Silero, the default endpointer)
    // behind the canceller. The speakers play jfk.wav twice with a second of silence
    // between (two answers); the person starts talking at a different moment of the
    // second one in each trial. Voice barge-in pauses the answer on the listener's
    // `SpeechOnset`: it must come soon after the person's first word, and never before.
    let store = sotto_models::ModelStore::open_default().expect("models folder");
    let voice = jfk();
    let mut far = voice.clone();
    far.extend(vec![0.0; 16_000]);
    let second = far.len();
    far.extend_from_slice(&voice);
    let mut lags = Vec::new();
    for config in rooms() {
        for (k, name) in CLIPS.iter().enumerate() {
            let person = clip_16k(name);
            let (first_word, _) =
                sotto_audio::analysis::speech_span_ms(&person, sotto_audio::SPEECH_RATE, -40.0)
                    .unwrap();
            let at = second + 700 * 16 + k * 900 * 16;
            let at = at - at % FRAME;
            let (tx, rx) = mpsc::sync_channel(4096);
            let canceller =
                EchoCanceller::new(EchoReference::from_channel(rx, 16_000)).expect("aec");
            let vad = SileroVad::load(&store).expect("silero is installed");
            let mut listener = Listener::new(
                ListenerConfig {
                    mode: ListenMode::HandsFree,
                    ..ListenerConfig::default()
                },
                Endpointer::new(Box::new(vad), EndpointerConfig::default()),
            )
            .with_echo_canceller(canceller);
            let mut room = Room::new(config);
            let mut events = Vec::new();
            let mut ready_ms = None;
            for (i, played) in far.chunks(FRAME).enumerate() {
                if i * FRAME == at {
                    room.say(&person);
                }
                tx.send(played.to_vec()).expect("reference");
                let heard = room.hear(played).expect("room");
                let capture = sotto_audio::CaptureEvent::Audio(sotto_audio::AudioBuffer {
                    samples: heard,
                    channels: 1,
                    sample_rate: 16_000,
                });
                let heard = listener.on_capture(capture).expect("listens");
                if heard
                    .iter()
                    .any(|e| matches!(e, ListenEvent::EchoCancellerReady))
                {
                    ready_ms = Some((i * FRAME / 16) as u64);
                }
                if ready_ms.is_some() {
                    events.extend(heard);
                }
            }
            let first_word_ms = (at as u64) / 16 + first_word;
            // Voice barge-in acts once the canceller has learned the room (before, the
            // echo guard covers the voice): what the listener said from then on. That must
            // come within the first answer.
            let ready_ms = ready_ms.expect("the canceller learns the room");
            assert!(ready_ms < 5_000, "ready at {ready_ms} ms");
            // A possible onset, or an utterance opening (each interrupts the answer).
            let onsets: Vec<u64> = events
                .iter()
                .filter_map(|e| match e {
                    ListenEvent::SpeechOnset { at_ms } => Some(*at_ms),
                    ListenEvent::UtteranceStarted { at_ms } if *at_ms < first_word_ms => {
                        Some(*at_ms)
                    }
                    _ => None,
                })
                .collect();
            eprintln!(
                "{name} in room {:?} at {} ms (first word {first_word_ms}, ready at {ready_ms} ms): onsets {onsets:?}",
                config.delay_ms,
                at / 16
            );
            let early: Vec<&u64> = onsets.iter().filter(|t| **t < first_word_ms).collect();
            assert!(
                early.is_empty(),
                "{name}: the voice alone made onsets {early:?}"
            );
            let lag = onsets.first().map(|t| t - first_word_ms);
            lags.push(lag);
        }
    }
    eprintln!("first word -> onset: {lags:?}");
    // Each person is noticed, and (the bar for the whole barge-in, the
    // orchestrator's few milliseconds included) within 300 ms of the first word in all
    // but one of the sixteen.
    assert!(lags.iter().all(Option::is_some), "{lags:?}");
    let late = lags
        .iter()
        .filter(|lag| lag.is_some_and(|ms| ms > 300))
        .count();
    assert!(late <= 1, "{lags:?}");
}

/// The delay (samples, up to 10 ms) at which `out` is most like `input`, and how alike
/// they are there (normalised correlation).
fn best_match(out: &[f32], input: &[f32]) -> (usize, f64) {
    let n = out.len().min(input.len());
    let norm = (energy(&out[..n]) * energy(&input[..n])).sqrt();
    (0..160usize)
        .map(|lag| {
            let dot: f64 = out[lag..n]
                .iter()
                .zip(&input[..n - lag])
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            (lag, dot / norm)
        })
        .fold((0, f64::MIN), |best, x| if x.1 > best.1 { x } else { best })
}
