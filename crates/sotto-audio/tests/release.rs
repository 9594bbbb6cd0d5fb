//! The push-to-talk key coming up, on real speech with the Silero detector the app uses:
//! a release after the last word closes the utterance at once; a release inside the last
//! word takes the tail. The alsa-utils clips (studio speech with true silence after it,
//! so where the sound ends is exact), in a quiet room's hiss.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sotto_audio::analysis::{speech_span_ms, white_noise, SOUND_DBFS};
use sotto_audio::{
    wav, Endpointer, EndpointerConfig, ListenEvent, ListenMode, Listener, ListenerConfig,
    SileroVad, SPEECH_RATE,
};

fn clips() -> Vec<(String, Vec<f32>)> {
    let mut clips = Vec::new();
    for name in ["Front_Center.wav", "Rear_Left.wav", "Side_Right.wav"] {
        let audio = wav::read(&Path::new("/usr/share/sounds/alsa").join(name))
            .expect("alsa-utils is installed by `cargo xtask test`");
        clips.push((
            name.to_string(),
            sotto_audio::to_mono_16k(&audio).expect("16 kHz"),
        ));
    }
    clips
}

/// Room before a clip, in samples.
const LEAD: usize = 500 * 16;

/// A push-to-talk listener with the app's detector.
fn listener() -> Listener {
    let store = sotto_models::ModelStore::open_default().expect("models folder");
    let vad = SileroVad::load(&store).expect("silero is installed");
    Listener::new(
        ListenerConfig {
            mode: ListenMode::PushToTalk,
            ..ListenerConfig::default()
        },
        Endpointer::new(Box::new(vad), EndpointerConfig::default()),
    )
}

/// `clip` in a quiet room: [`LEAD`] before it, two seconds after, -60 dBFS hiss over all.
fn in_room(clip: &[f32]) -> Vec<f32> {
    let mut audio = vec![0f32; LEAD];
    audio.extend_from_slice(clip);
    audio.extend(vec![0f32; 2 * SPEECH_RATE as usize]);
    let hiss = white_noise(audio.len(), -60.0);
    for (s, n) in audio.iter_mut().zip(hiss) {
        *s += n;
    }
    audio
}

/// Holds the key over `clip` (after 500 ms of room), lets go `release_ms` after the
/// clip's sound ends (negative: before), then lets the room go on; whether the
/// utterance closed at the release, and the audio it kept past the release (ms).
fn release_at(clip: &[f32], release_ms: i64) -> (bool, u64) {
    let mut listener = listener();
    let audio = in_room(clip);
    let (_, end_ms) = speech_span_ms(clip, SPEECH_RATE, SOUND_DBFS).expect("speech");
    let release = LEAD + ((end_ms as i64 + release_ms) * 16) as usize;
    let release = release - release % 320;
    let pushed = |l: &mut Listener, from: usize, to: usize| -> Vec<ListenEvent> {
        audio[from..to]
            .chunks(320)
            .flat_map(|block| l.push(block).expect("push"))
            .collect()
    };
    pushed(&mut listener, 0, LEAD - 320 * 10);
    listener.press();
    pushed(&mut listener, LEAD - 320 * 10, release);
    let closed_at_release = listener
        .release()
        .iter()
        .any(|e| matches!(e, ListenEvent::Utterance { .. }));
    let mut after = pushed(&mut listener, release, release + 500 * 16);
    if closed_at_release {
        return (true, 0);
    }
    after.retain(|e| matches!(e, ListenEvent::Utterance { .. }));
    let Some(ListenEvent::Utterance {
        start_ms,
        end_ms,
        audio,
    }) = after.first()
    else {
        panic!("the utterance never closed");
    };
    // The utterance runs from the press (less its pre-roll) to the release, then the tail.
    let kept_ms = audio.len() as u64 / 16;
    (false, kept_ms.saturating_sub(end_ms - start_ms))
}

#[test]
fn a_release_after_the_last_word_closes_at_once_and_one_inside_it_takes_the_tail() {
    for (name, clip) in clips() {
        // 150 ms after the sound ends: the microphone hears only the room, but the
        // detector's probability is still up (Silero stays above its threshold for
        // 120-160 ms after these clips, 150-200 ms after Kokoro's voice).
        let (closed, tail) = release_at(&clip, 150);
        assert!(
            closed,
            "{name}: released 150 ms after the speech, took {tail} ms"
        );
        // Inside the last word: the word goes on past the key, the tail keeps it.
        let (closed, tail) = release_at(&clip, -40);
        assert!(
            !closed,
            "{name}: released inside the last word, closed at once"
        );
        assert!(tail >= 190, "{name}: {tail} ms kept past the release");
    }
}

#[test]
fn the_pause_is_reported_when_the_sound_stops_not_when_the_detector_lets_go() {
    for (name, clip) in clips() {
        let mut listener = listener();
        let audio = in_room(&clip);
        listener.press();
        let paused: Vec<u64> = audio
            .chunks(320)
            .flat_map(|block| listener.push(block).expect("push"))
            .filter_map(|e| match e {
                ListenEvent::Paused { at_ms } => Some(at_ms),
                _ => None,
            })
            .collect();
        let (_, end_ms) = speech_span_ms(&clip, SPEECH_RATE, SOUND_DBFS).expect("speech");
        let end_ms = LEAD as u64 / 16 + end_ms;
        let after: Vec<i64> = paused.iter().map(|&p| p as i64 - end_ms as i64).collect();
        // Reported once the room has been quiet 100 ms (in 20 ms blocks). (Rear_Left's
        // last sound over -40 dBFS is a faint "t" 80 ms after its last pause, heard as
        // the room by both rules; its other pause is the gap between the two words.)
        let last = *after.last().expect("a pause");
        assert!(
            (-100..=140).contains(&last),
            "{name}: pauses at {after:?} ms"
        );
    }
}
