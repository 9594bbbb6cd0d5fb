//! Endpointing and resampling on real speech: the alsa-utils clips (48 kHz studio speech
//! with true silence around it, so the truth is exact) and jfk.wav (from the models
//! folder, installed as `sample-jfk` by `cargo xtask test`).

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sotto_audio::analysis::{speech_span_ms, white_noise};
use sotto_audio::resample::resample;
use sotto_audio::vad::Aggressiveness;
use sotto_audio::{
    wav, AudioBuffer, Endpointer, EndpointerConfig, SpeechEvent, WebRtcVad, SPEECH_RATE,
};

const ALSA: &str = "/usr/share/sounds/alsa";

fn clip_16k(name: &str) -> Vec<f32> {
    let path = Path::new(ALSA).join(name);
    let audio = wav::read(&path).expect("alsa-utils is installed by `cargo xtask test`");
    assert_eq!(audio.sample_rate, 48_000);
    sotto_audio::to_mono_16k(&audio).expect("resamples")
}

fn jfk() -> Vec<f32> {
    let store = sotto_models::ModelStore::open_default().expect("models folder");
    let sample = store
        .require("sample-jfk")
        .expect("sample-jfk is installed by `cargo xtask test`");
    wav::read(sample.main_file())
        .expect("jfk.wav reads")
        .samples
}

fn truth_ms(clean: &[f32]) -> (u64, u64) {
    speech_span_ms(clean, sotto_audio::SPEECH_RATE, -50.0).expect("speech")
}

fn noise(len: usize, db: f32) -> Vec<f32> {
    white_noise(len, db)
}

/// The announced events: Started and Ended (Rejected bursts are the endpointer doing its
/// job, and are counted separately where a test cares).
fn endpoints(audio: &[f32]) -> Vec<SpeechEvent> {
    let vad = WebRtcVad::new(Aggressiveness::Aggressive);
    let mut ep = Endpointer::new(Box::new(vad), EndpointerConfig::default());
    let mut events = Vec::new();
    // 20 ms pushes, as a microphone callback delivers them.
    for chunk in audio.chunks(320) {
        events.extend(ep.push(chunk).expect("vad"));
    }
    events.extend(ep.finish());
    events.retain(|e| !matches!(e, SpeechEvent::Rejected { .. }));
    events
}

#[test]
fn clips_padded_with_silence_and_room_noise_are_endpointed_within_100_ms() {
    for name in ["Front_Center.wav", "Rear_Left.wav", "Side_Right.wav"] {
        let clean = clip_16k(name);
        let (from, to) = truth_ms(&clean);
        let lead = 1_500u64;
        let mut audio = vec![0f32; (lead * 16) as usize];
        audio.extend_from_slice(&clean);
        audio.extend(vec![0f32; 2 * SPEECH_RATE as usize]);
        let hiss = noise(audio.len(), -60.0);
        for (s, n) in audio.iter_mut().zip(hiss) {
            *s += n;
        }
        let events = endpoints(&audio);
        let [SpeechEvent::Started { at_ms }, SpeechEvent::Ended {
            start_ms,
            end_ms,
            audio: utterance,
        }] = &events[..]
        else {
            let brief: Vec<String> = events.iter().map(brief).collect();
            panic!("{name}: expected one utterance, got {brief:?}");
        };
        let (want_from, want_to) = (lead + from, lead + to);
        eprintln!("{name}: truth {want_from}..{want_to} ms, found {start_ms}..{end_ms} ms");
        assert_eq!(at_ms, start_ms);
        assert!(
            start_ms.abs_diff(want_from) <= 100,
            "{name}: onset {start_ms} vs {want_from}"
        );
        assert!(
            end_ms.abs_diff(want_to) <= 100,
            "{name}: end {end_ms} vs {want_to}"
        );
        // Nothing clipped: the utterance covers the truth with pre-roll and tail to spare.
        let covered_from = start_ms - 300;
        assert!(
            covered_from <= want_from && (covered_from + utterance.len() as u64 / 16) >= want_to
        );
    }
}

fn brief(e: &SpeechEvent) -> String {
    match e {
        SpeechEvent::Started { at_ms } => format!("started {at_ms}"),
        SpeechEvent::Ended {
            start_ms, end_ms, ..
        } => format!("ended {start_ms}..{end_ms}"),
        SpeechEvent::Rejected { start_ms, end_ms } => format!("rejected {start_ms}..{end_ms}"),
    }
}

#[test]
fn room_noise_alone_never_opens_an_utterance() {
    // -60 dBFS is a quiet room through a desk microphone. webrtc-vad is energy-based and
    // does open on loud broadband noise; the Silero detector is the answer for that.
    let events = endpoints(&noise(5 * SPEECH_RATE as usize, -60.0));
    let brief: Vec<String> = events.iter().map(brief).collect();
    assert!(events.is_empty(), "{brief:?}");
}

fn snr_db(reference: &[f32], other: &[f32]) -> f32 {
    let err: f32 = reference
        .iter()
        .zip(other)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let power: f32 = reference.iter().map(|a| a * a).sum();
    10.0 * (power / err).log10()
}

#[test]
fn resampling_real_speech_is_aligned_and_transparent_in_the_passband() {
    // The first round trip removes what lies beyond the filters' pass band (jfk.wav's
    // hiss reaches 8 kHz); after that, a round trip through 48 kHz stereo or 44.1 kHz must
    // give the same signal back, sample for sample.
    let band_limited =
        resample(&resample(&jfk(), 16_000, 48_000).unwrap(), 48_000, 16_000).unwrap();
    for rate in [48_000, 44_100] {
        let up = resample(&band_limited, 16_000, rate).expect("up");
        let stereo: Vec<f32> = up.iter().flat_map(|&s| [s, s]).collect();
        let back = sotto_audio::to_mono_16k(&AudioBuffer {
            samples: stereo,
            channels: 2,
            sample_rate: rate,
        })
        .expect("down");
        assert_eq!(back.len(), band_limited.len());
        let snr = snr_db(&band_limited, &back);
        assert!(snr > 30.0, "{rate} Hz round trip: SNR {snr:.1} dB");
    }
}
