//! Listening as the app does it, on real speech: a WAV file played as a microphone
//! (48 kHz stereo, padded with silence and room noise), push-to-talk and hands-free with
//! both detectors, an unplugged device, and whisper transcribing what was heard.
//!
//! Needs the models (`cargo xtask test` fetches them) and alsa-utils' clips.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sotto_audio::analysis::{speech_span_ms, white_noise};
use sotto_audio::vad::Aggressiveness;
use sotto_audio::{
    wav, AudioBuffer, CaptureEvent, Endpointer, EndpointerConfig, ListenEvent, ListenMode,
    Listener, ListenerConfig, Pace, VadKind, WavSource, WavSourceConfig,
};
use sotto_models::ModelStore;
use sotto_stt::{word_error_rate, CancelFlag, SttConfig, SttError, WhisperStt};

/// A clip with what it says: 48 kHz studio speech with digital silence around it.
struct Clip {
    /// The recording, padded: 1.5 s before, 1.5 s after, plus -60 dBFS noise throughout,
    /// as 48 kHz stereo.
    padded: AudioBuffer,
    /// Where the speech is in `padded`, in ms.
    truth: (u64, u64),
    words: &'static str,
}

fn clip(name: &str, words: &'static str) -> Clip {
    let audio = wav::read(&Path::new("/usr/share/sounds/alsa").join(name))
        .expect("alsa-utils is installed by `cargo xtask test`");
    let clean = sotto_audio::to_mono_16k(&audio).expect("resamples");
    let (from, to) = speech_span_ms(&clean, sotto_audio::SPEECH_RATE, -50.0).expect("speech");
    let mono = audio.downmix();
    let lead = 72_000; // 1.5 s at 48 kHz
    let mut padded = vec![0f32; lead];
    padded.extend_from_slice(&mono);
    padded.extend(vec![0f32; lead]);
    let hiss = white_noise(padded.len(), -60.0);
    for (s, n) in padded.iter_mut().zip(hiss) {
        *s += n;
    }
    Clip {
        padded: AudioBuffer {
            samples: padded.iter().flat_map(|&s| [s, s]).collect(),
            channels: 2,
            sample_rate: 48_000,
        },
        truth: (1_500 + from, 1_500 + to),
        words,
    }
}

fn store() -> ModelStore {
    ModelStore::open_default().expect("models folder")
}

fn listener(store: &ModelStore, mode: ListenMode, vad: VadKind) -> Listener {
    let detector = vad.build(store).expect("detector loads");
    Listener::new(
        ListenerConfig {
            mode,
            ..ListenerConfig::default()
        },
        Endpointer::new(detector, EndpointerConfig::default()),
    )
}

/// Plays `audio` through a WAV source into `listener`; `keys` says at which stream times
/// (ms) the push-to-talk key goes down and up.
fn listen(
    listener: &mut Listener,
    audio: AudioBuffer,
    keys: Option<(u64, u64)>,
) -> Vec<ListenEvent> {
    let config = WavSourceConfig {
        pace: Pace::AsFastAsPossible,
        ..WavSourceConfig::default()
    };
    let (_source, blocks) = WavSource::from_buffer(audio, "clip".into(), config);
    let mut events = Vec::new();
    let (mut pressed, mut released) = (false, false);
    for block in blocks {
        if let Some((down, up)) = keys {
            if !pressed && listener.stream_ms() >= down {
                events.extend(listener.press());
                pressed = true;
            }
            if !released && listener.stream_ms() >= up {
                events.extend(listener.release());
                released = true;
            }
        }
        events.extend(listener.on_capture(block).expect("listens"));
    }
    events.extend(listener.finish());
    events
}

fn utterances(events: &[ListenEvent]) -> Vec<(u64, u64, &Vec<f32>)> {
    events
        .iter()
        .filter_map(|e| match e {
            ListenEvent::Utterance {
                start_ms,
                end_ms,
                audio,
            } => Some((*start_ms, *end_ms, audio)),
            _ => None,
        })
        .collect()
}

fn forwarded(events: &[ListenEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            ListenEvent::UtteranceAudio { samples } => samples.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn hands_free_finds_and_transcribes_speech_with_either_detector() {
    let store = store();
    let stt = WhisperStt::load(&store, "whisper-tiny.en", SttConfig::default()).expect("stt");
    let clips = [
        clip("Front_Center.wav", "Front center"),
        clip("Rear_Left.wav", "Rear left"),
    ];
    let detectors = [
        VadKind::Silero,
        VadKind::WebRtc {
            aggressiveness: Aggressiveness::Aggressive,
        },
    ];
    for vad in detectors {
        for clip in &clips {
            let mut l = listener(&store, ListenMode::HandsFree, vad);
            let events = listen(&mut l, clip.padded.clone(), None);
            let found = utterances(&events);
            assert_eq!(found.len(), 1, "{vad:?} {}: {found:?}", clip.words);
            let (start, end, audio) = found[0];
            eprintln!(
                "{vad:?} {}: truth {:?}, found {start}..{end}",
                clip.words, clip.truth
            );
            assert!(
                start.abs_diff(clip.truth.0) <= 100,
                "{vad:?}: onset {start} vs {:?}",
                clip.truth
            );
            assert!(
                end.abs_diff(clip.truth.1) <= 100,
                "{vad:?}: end {end} vs {:?}",
                clip.truth
            );
            // The level meter ran all along, and partials saw the utterance as it grew.
            let levels = events
                .iter()
                .filter(|e| matches!(e, ListenEvent::Level(_)))
                .count();
            assert!(levels >= 60, "{levels} levels");
            assert!(forwarded(&events) >= audio.len());
            let text = stt
                .transcribe(audio, &CancelFlag::default())
                .expect("stt")
                .text;
            let wer = word_error_rate(clip.words, &text);
            assert!(wer <= 0.5, "{vad:?}: {text:?} for {:?}", clip.words);
        }
    }
}

#[test]
fn silero_ignores_loud_noise_that_webrtc_takes_for_speech() {
    let store = store();
    // -25 dBFS broadband noise: a fan blowing at the microphone.
    let noise = AudioBuffer::mono(white_noise(5 * 16_000, -25.0), 16_000);
    let mut webrtc = listener(
        &store,
        ListenMode::HandsFree,
        VadKind::WebRtc {
            aggressiveness: Aggressiveness::Aggressive,
        },
    );
    let fooled = listen(&mut webrtc, noise.clone(), None);
    assert!(
        fooled
            .iter()
            .any(|e| matches!(e, ListenEvent::UtteranceStarted { .. })),
        "webrtc-vad is energy-based: this noise should fool it (else the test proves nothing)"
    );
    let mut silero = listener(&store, ListenMode::HandsFree, VadKind::Silero);
    let heard = listen(&mut silero, noise, None);
    assert!(
        !heard
            .iter()
            .any(|e| matches!(e, ListenEvent::UtteranceStarted { .. })),
        "Silero opened on noise: {:?}",
        heard
            .iter()
            .filter(|e| !matches!(e, ListenEvent::Level(_)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn push_to_talk_pressed_and_released_exactly_at_the_speech_clips_nothing() {
    let store = store();
    let stt = WhisperStt::load(&store, "whisper-tiny.en", SttConfig::default()).expect("stt");
    let clip = clip("Side_Right.wav", "Side right");
    let mut l = listener(&store, ListenMode::PushToTalk, VadKind::Silero);
    // The key goes down as the first sound starts and up as the last one ends: what a
    // hurried user does. Blocks are 20 ms, so the key lands within 20 ms of the truth.
    let events = listen(&mut l, clip.padded.clone(), Some(clip.truth));
    let found = utterances(&events);
    assert_eq!(found.len(), 1, "{found:?}");
    let (start, end, audio) = found[0];
    // The utterance runs from 200 ms before the press to 200 ms after the release.
    assert!(
        start + 200 <= clip.truth.0 + 20 && start + 240 >= clip.truth.0,
        "{start} vs {:?}",
        clip.truth
    );
    assert!(
        end >= clip.truth.1 && end <= clip.truth.1 + 20,
        "{end} vs {:?}",
        clip.truth
    );
    let covered = start + audio.len() as u64 / 16;
    assert!(covered >= clip.truth.1 + 180, "audio ends at {covered} ms");
    let text = stt
        .transcribe(audio, &CancelFlag::default())
        .expect("stt")
        .text;
    assert!(word_error_rate(clip.words, &text) <= 0.5, "{text:?}");
}

#[test]
fn push_to_talk_in_silence_is_no_speech_not_a_hallucination() {
    let store = store();
    let mut l = listener(&store, ListenMode::PushToTalk, VadKind::Silero);
    let room = AudioBuffer::mono(white_noise(3 * 16_000, -60.0), 16_000);
    let events = listen(&mut l, room, Some((500, 2_000)));
    assert!(utterances(&events).is_empty());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ListenEvent::NoSpeech { .. })),
        "{events:?}"
    );
}

#[test]
fn a_microphone_unplugged_mid_utterance_ends_it_with_a_clear_event() {
    let store = store();
    let clip = clip("Front_Center.wav", "Front center");
    let mut l = listener(&store, ListenMode::HandsFree, VadKind::Silero);
    let config = WavSourceConfig {
        pace: Pace::AsFastAsPossible,
        // In the middle of "Front center".
        lose_after_ms: Some(((clip.truth.0 + clip.truth.1) / 2) as u32),
        ..WavSourceConfig::default()
    };
    let (_source, blocks) = WavSource::from_buffer(clip.padded.clone(), "USB mic".into(), config);
    let mut events = Vec::new();
    for block in blocks {
        let lost = matches!(block, CaptureEvent::Lost(_));
        events.extend(l.on_capture(block).expect("listens"));
        if lost {
            break;
        }
    }
    events.extend(l.finish());
    let Some(ListenEvent::SourceLost {
        message,
        utterance_dropped,
    }) = events.last()
    else {
        panic!("{:?}", events.last())
    };
    assert!(utterance_dropped);
    assert!(
        message.contains("USB mic") && message.contains("unplugged"),
        "{message}"
    );
    assert!(utterances(&events).is_empty());
}

#[test]
fn a_damaged_whisper_model_is_refused_with_a_repair_hint() {
    let real = store();
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = ModelStore::new(dir.path(), real.manifest().clone());
    let source = real.require("whisper-tiny.en").expect("installed");
    let target = copy.dir("whisper-tiny.en");
    std::fs::create_dir_all(&target).expect("mkdir");
    let name = source.main_file().file_name().expect("file name");
    let mut bytes = std::fs::read(source.main_file()).expect("read");
    // Flip bytes in the weights: the header is still fine, only the checksum can tell.
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(target.join(name), bytes).expect("write");
    let err = WhisperStt::load(&copy, "whisper-tiny.en", SttConfig::default())
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(matches!(err, SttError::Model(_)), "{text}");
    assert!(text.contains("sotto models fetch"), "{text}");
}
