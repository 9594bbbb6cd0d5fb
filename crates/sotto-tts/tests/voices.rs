//! The Piper voice for real: speech that whisper understands again, speed, streaming by
//! sentence, cancellation inside a sentence, damaged voice files, and playback that stops
//! when told.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use sotto_audio::{Pace, Player};
use sotto_models::ModelStore;
use sotto_stt::{word_error_rate, CancelFlag, SttConfig, WhisperStt};
use sotto_tts::piper::PiperVoice;

/// The Piper voice the tests speak with (a default model, so it is installed).
const DEFAULT_PIPER_VOICE: &str = "piper-en_US-joe-medium";
use sotto_tts::{CancellationToken, Tts, TtsError};

fn store() -> ModelStore {
    ModelStore::open_default().expect("models folder")
}

fn voice() -> PiperVoice {
    PiperVoice::load(&store(), DEFAULT_PIPER_VOICE, 2).expect("the Piper voice is installed")
}

fn transcribe(samples: &[f32], rate: u32) -> String {
    let mono16k = sotto_audio::resample::resample(samples, rate, 16_000).expect("resample");
    let stt = WhisperStt::load(&store(), "whisper-tiny.en", SttConfig::default()).expect("whisper");
    stt.transcribe(&mono16k, &CancelFlag::default())
        .expect("transcribe")
        .text
}

#[test]
fn whisper_understands_what_the_voice_says() {
    let text =
        "The weather today is sunny and warm. Would you like me to set a timer for ten minutes?";
    let audio = voice().synthesize_all(text, 1.0).expect("speech");
    assert_eq!(audio.sample_rate, 22_050);
    let seconds = audio.samples.len() as f64 / 22_050.0;
    assert!((3.0..10.0).contains(&seconds), "{seconds} s of speech");
    let peak = audio.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(peak > 0.1 && peak <= 1.0, "peak {peak}");
    let heard = transcribe(&audio.samples, audio.sample_rate);
    let wer = word_error_rate(text, &heard);
    assert!(wer <= 0.15, "WER {wer:.2}: {heard:?}");
}

#[test]
fn each_sentence_arrives_as_soon_as_it_is_made_and_speed_changes_the_pace() {
    let mut voice = voice();
    let text = "This is the first sentence. And this is the second one, which is a bit longer.";
    let started = Instant::now();
    let mut arrivals = Vec::new();
    let mut lengths = Vec::new();
    voice
        .synthesize(text, 1.0, &CancellationToken::new(), &mut |chunk| {
            arrivals.push(started.elapsed());
            lengths.push(chunk.samples.len());
        })
        .expect("speech");
    assert_eq!(lengths.len(), 2, "one chunk per sentence");
    assert!(arrivals[0] < arrivals[1]);
    assert!(lengths[1] > lengths[0]);

    let normal: usize = lengths.iter().sum();
    let fast = voice.synthesize_all(text, 1.5).expect("fast").samples.len();
    let ratio = fast as f64 / normal as f64;
    assert!(
        (0.55..0.8).contains(&ratio),
        "1.5x speed gave {ratio:.2} of the length"
    );
}

#[test]
fn cancelling_stops_inside_a_long_sentence() {
    let mut voice = voice();
    let long = "This sentence goes on and on, describing the rolling hills, the quiet rivers, \
                the busy markets, the old stone bridges and the long summer evenings of a \
                country that the speaker clearly loves very much indeed.";
    let full_started = Instant::now();
    voice.synthesize_all(long, 1.0).expect("speech");
    let full = full_started.elapsed();

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(15));
        trigger.cancel();
        Instant::now()
    });
    let mut chunks = 0;
    voice
        .synthesize(long, 1.0, &cancel, &mut |_| chunks += 1)
        .expect("a cancelled synthesis is not an error");
    let returned = Instant::now();
    let cancelled_at = canceller.join().expect("thread");
    let lag = returned.saturating_duration_since(cancelled_at);
    assert_eq!(chunks, 0, "no audio after the cancel");
    assert!(
        lag < Duration::from_millis(50) && lag < full / 2,
        "stopped {lag:?} after the cancel (a whole run takes {full:?})"
    );
}

#[test]
fn a_missing_or_damaged_voice_is_a_clear_error() {
    let real = store();
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = ModelStore::new(dir.path(), real.manifest().clone());
    let error = PiperVoice::load(&copy, DEFAULT_PIPER_VOICE, 1)
        .err()
        .expect("missing");
    assert!(matches!(error, TtsError::Voice(_)), "{error:?}");
    assert!(error.to_string().contains("sotto models fetch"), "{error}");

    // The voice present but its config truncated.
    let source = real.require(DEFAULT_PIPER_VOICE).expect("installed");
    let target = copy.dir(DEFAULT_PIPER_VOICE);
    std::fs::create_dir_all(&target).expect("mkdir");
    for file in &source.files {
        let name = file.file_name().expect("name");
        let mut bytes = std::fs::read(file).expect("read");
        if name.to_string_lossy().ends_with(".json") {
            bytes.truncate(bytes.len() / 2);
        }
        std::fs::write(target.join(name), bytes).expect("write");
    }
    let error = PiperVoice::load(&copy, DEFAULT_PIPER_VOICE, 1)
        .err()
        .expect("damaged");
    let message = error.to_string();
    assert!(message.contains("damaged"), "{message}");
    assert!(message.contains("sotto models fetch"), "{message}");
}

#[test]
fn playback_stops_at_once_and_knows_what_was_heard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("reply.wav");
    let player = Player::wav(&out, 48_000, Pace::RealTime).expect("player");
    let audio = voice()
        .synthesize_all(
            "Here is a fairly long answer that the user will interrupt halfway through, \
             because they already know the rest.",
            1.0,
        )
        .expect("speech");
    let total_ms = audio.duration_ms();
    player
        .play(&audio.samples, audio.sample_rate)
        .expect("play");
    player.end_of_stream().expect("flush");
    std::thread::sleep(Duration::from_millis(600));
    let stop_at = player.played_ms();
    player.stop();
    let just_after = player.played_ms();
    std::thread::sleep(Duration::from_millis(200));
    let later = player.played_ms();
    assert!(
        (500.0..900.0).contains(&stop_at),
        "played {stop_at} ms in 600 ms of real time"
    );
    assert_eq!(later, just_after, "nothing plays after stop");
    assert!(
        later - stop_at <= 10.0,
        "{} ms played after stop",
        later - stop_at
    );
    assert!(later < total_ms / 2.0);
    assert_eq!(player.queued_samples(), 0);

    // Playing again after a stop works, and the file holds exactly what was played.
    player.play(&vec![0.25; 4_800], 48_000).expect("play again");
    player.end_of_stream().expect("flush");
    assert!(player.wait_until_idle(Duration::from_secs(2)));
    let played = player.played_samples();
    player.finish().expect("write");
    let written = sotto_audio::wav::read(&out).expect("wav");
    assert_eq!(written.sample_rate, 48_000);
    assert_eq!(written.samples.len() as u64, played);
}

#[test]
fn no_sound_card_is_a_clear_error_not_a_crash() {
    // Build machines have no sound card; a desktop has one. Either way: no panic, and
    // without one, a message that says what is missing.
    if let Err(error) = Player::speaker(None) {
        assert!(
            error.to_string().contains("no speaker or headphones"),
            "{error}"
        );
    }
    let error = Player::speaker(Some("USB Headset That Is Not Plugged In"))
        .err()
        .expect("no such device");
    let message = error.to_string();
    assert!(
        message.contains("USB Headset That Is Not Plugged In"),
        "{message}"
    );
    // The fact only: the window and the command line each add advice in their own terms.
    assert!(!message.contains("Settings"), "{message}");
}

#[test]
fn kokoro_speakers_are_understood_too() {
    let store = store();
    let text = "Good evening. The train to the city leaves in five minutes.";
    for speaker in ["af_heart", "bm_george"] {
        let mut voice = sotto_tts::load_voice(&store, &format!("kokoro-82m-int8/{speaker}"), 2)
            .expect("Kokoro is installed");
        assert_eq!(voice.sample_rate(), 24_000);
        let mut chunks = 0;
        let mut samples = Vec::new();
        voice
            .synthesize(text, 1.0, &CancellationToken::new(), &mut |c| {
                chunks += 1;
                samples.extend_from_slice(&c.samples);
            })
            .expect("speech");
        assert_eq!(chunks, 2, "one chunk per sentence");
        let heard = transcribe(&samples, 24_000);
        let wer = word_error_rate(text, &heard);
        assert!(wer <= 0.2, "{speaker}: WER {wer:.2}: {heard:?}");
    }
    let speakers = sotto_tts::kokoro::speakers(&store).expect("speakers");
    assert_eq!(speakers.len(), 54);
    let error = sotto_tts::load_voice(&store, "kokoro-82m-int8/qq_nobody", 1)
        .err()
        .expect("no such speaker");
    assert!(
        error.to_string().contains("not a Kokoro speaker"),
        "{error}"
    );
    let error = sotto_tts::load_voice(&store, "kokoro-82m-int8/af_nobody", 1)
        .err()
        .expect("no such speaker");
    assert!(
        error.to_string().contains("no speaker `af_nobody`"),
        "{error}"
    );
}
