use super::*;
use crate::vad::{Marker, Vad};

fn listener(mode: ListenMode) -> Listener {
    let config = ListenerConfig {
        mode,
        ..ListenerConfig::default()
    };
    Listener::new(
        config,
        Endpointer::new(Box::new(Marker), EndpointerConfig::default()),
    )
}

fn feed(l: &mut Listener, ms: u32, value: f32) -> Vec<ListenEvent> {
    let block = vec![value; 320];
    (0..ms / 20)
        .flat_map(|_| l.push(&block).expect("push"))
        .filter(|e| !matches!(e, ListenEvent::Level(_)))
        .collect()
}

fn forwarded(events: &[ListenEvent]) -> Vec<f32> {
    events
        .iter()
        .flat_map(|e| match e {
            ListenEvent::UtteranceAudio { samples } => samples.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// The pause reports in `events`: ("paused" | "resumed", at ms).
fn pauses(events: &[ListenEvent]) -> Vec<(&'static str, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            ListenEvent::Paused { at_ms } => Some(("paused", *at_ms)),
            ListenEvent::Resumed { at_ms } => Some(("resumed", *at_ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn pauses_inside_an_utterance_are_reported_once_each_after_the_audio_before_them() {
    let mut l = listener(ListenMode::PushToTalk);
    feed(&mut l, 200, 0.0);
    l.press();
    // Silence before any speech is no pause: there is nothing to transcribe.
    let mut events = feed(&mut l, 200, 0.0);
    assert!(pauses(&events).is_empty(), "{events:?}");
    events.extend(feed(&mut l, 400, 0.9));
    events.extend(feed(&mut l, 300, 0.0));
    events.extend(feed(&mut l, 200, 0.9));
    events.extend(feed(&mut l, 300, 0.0));
    // Speech 400-800 ms and 1100-1300 ms: each silence reported 60 ms in (rounded
    // up to the 20 ms block), the speech between as a resumption.
    assert_eq!(
        pauses(&events),
        [("paused", 880), ("resumed", 1120), ("paused", 1380)]
    );
    // The pause comes after the audio it follows: the recogniser has all of it.
    let paused_at = events
        .iter()
        .position(|e| matches!(e, ListenEvent::Paused { .. }))
        .expect("a pause");
    // (The pre-roll came with the press.)
    assert_eq!(forwarded(&events[..paused_at]).len(), 16 * (200 + 400 + 80));
    l.release();
    assert!(
        pauses(&feed(&mut l, 300, 0.0)).is_empty(),
        "closed: no more pauses"
    );

    // Hands-free too, inside the utterance the detector opened.
    let mut l = listener(ListenMode::HandsFree);
    feed(&mut l, 200, 0.0);
    let mut events = feed(&mut l, 600, 0.9);
    events.extend(feed(&mut l, 200, 0.0));
    assert_eq!(pauses(&events), [("paused", 880)]);
}

/// A detector that, like Silero, still hears speech for 200 ms after the sound stops.
struct Lingering(u32);

impl Vad for Lingering {
    fn frame_len(&self) -> usize {
        160
    }
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, AudioError> {
        self.0 = if frame[0] > 0.5 {
            20
        } else {
            self.0.saturating_sub(1)
        };
        Ok(if self.0 > 0 { 1.0 } else { 0.0 })
    }
    fn reset(&mut self) {}
}

#[test]
fn a_quiet_microphone_is_a_pause_and_no_reason_for_a_tail_while_the_detector_lingers() {
    let mut l = Listener::new(
        ListenerConfig::default(),
        Endpointer::new(Box::new(Lingering(0)), EndpointerConfig::default()),
    );
    feed(&mut l, 200, 0.0);
    l.press();
    let mut events = feed(&mut l, 600, 0.9);
    events.extend(feed(&mut l, 300, 0.0));
    events.extend(feed(&mut l, 200, 0.9));
    events.extend(feed(&mut l, 160, 0.0));
    // Sound 200-800 and 1100-1300 ms: each silence reported once 100 ms of it are in
    // (the detector alone: 260 ms in), the sound between as a resumption.
    assert_eq!(
        pauses(&events),
        [("paused", 900), ("resumed", 1120), ("paused", 1400)]
    );
    // The key comes up 160 ms after the sound, the detector still hearing speech:
    // closed at once, no tail.
    assert!(l.endpointer.heard_within(STILL_SPEAKING_MS));
    assert!(
        l.release()
            .iter()
            .any(|e| matches!(e, ListenEvent::Utterance { .. })),
        "closed at the release"
    );
}

/// A detector that hears the softest speech (anything over -46 dBFS).
struct Sensitive;

impl Vad for Sensitive {
    fn frame_len(&self) -> usize {
        160
    }
    fn speech_probability(&mut self, frame: &[f32]) -> Result<f32, AudioError> {
        Ok(if frame[0] > 0.005 { 1.0 } else { 0.0 })
    }
    fn reset(&mut self) {}
}

#[test]
fn soft_speech_after_a_loud_bump_is_believed_once_the_detector_s_lag_is_past() {
    let mut l = Listener::new(
        ListenerConfig::default(),
        Endpointer::new(Box::new(Sensitive), EndpointerConfig::default()),
    );
    feed(&mut l, 200, 0.0);
    l.press();
    // A bump at 0 dBFS, then the user speaks softly (-40 dBFS) for 800 ms.
    let mut events = feed(&mut l, 100, 1.0);
    events.extend(feed(&mut l, 800, 0.01));
    // The level takes it for a pause, but only for as long as a detector lags: then
    // the speech is believed, and nothing decoded at that pause becomes the final.
    assert_eq!(pauses(&events), [("paused", 400), ("resumed", 660)]);
    // A release now takes the tail: the detector hears speech, and the level's
    // silence is too long to be the detector's lag.
    assert!(!l
        .release()
        .iter()
        .any(|e| matches!(e, ListenEvent::Utterance { .. })));
}

#[test]
fn push_to_talk_keeps_audio_from_before_the_press_to_after_the_release() {
    let mut l = listener(ListenMode::PushToTalk);
    feed(&mut l, 1_000, 0.0);
    let mut events = l.press();
    assert_eq!(events[0], ListenEvent::UtteranceStarted { at_ms: 1_000 });
    events.extend(feed(&mut l, 600, 1.0));
    events.extend(l.release());
    assert!(!events
        .iter()
        .any(|e| matches!(e, ListenEvent::Utterance { .. })));
    // The word goes on past the release; the tail keeps it.
    events.extend(feed(&mut l, 100, 1.0));
    events.extend(feed(&mut l, 400, 0.0));
    let Some(ListenEvent::Utterance {
        start_ms,
        end_ms,
        audio,
    }) = events
        .iter()
        .find(|e| matches!(e, ListenEvent::Utterance { .. }))
    else {
        panic!("{events:?}")
    };
    assert_eq!((*start_ms, *end_ms), (800, 1_600));
    // 200 ms pre-roll + 600 ms held + 200 ms tail, in order.
    assert_eq!(audio.len(), samples(1_000));
    assert_eq!(audio[samples(199)], 0.0);
    assert_eq!(audio[samples(200)], 1.0);
    assert_eq!(audio[samples(899)], 1.0);
    assert_eq!(audio[samples(900)], 0.0);
    // Partials saw exactly the same audio.
    assert_eq!(&forwarded(&events), audio);
}

#[test]
fn a_release_in_silence_closes_at_once_without_a_tail() {
    let mut l = listener(ListenMode::PushToTalk);
    feed(&mut l, 500, 0.0);
    let mut events = l.press();
    events.extend(feed(&mut l, 600, 1.0));
    // The user stopped 200 ms before letting go of the key.
    events.extend(feed(&mut l, 200, 0.0));
    events.extend(l.release());
    let Some(ListenEvent::Utterance {
        start_ms,
        end_ms,
        audio,
    }) = events.last()
    else {
        panic!("closed at the release: {events:?}")
    };
    assert_eq!((*start_ms, *end_ms), (300, 1_300));
    // 200 ms pre-roll + 800 ms held, no tail.
    assert_eq!(audio.len(), samples(1_000));
    assert_eq!(&forwarded(&events), audio);
    assert!(!l.in_utterance());
}

#[test]
fn push_to_talk_in_silence_gives_no_speech() {
    let mut l = listener(ListenMode::PushToTalk);
    feed(&mut l, 500, 0.0);
    l.press();
    feed(&mut l, 500, 0.0);
    let events = l.release();
    assert!(
        events.contains(&ListenEvent::NoSpeech {
            start_ms: 300,
            end_ms: 1_000
        }),
        "{events:?}"
    );
    // Hands-free detection does not open utterances in push-to-talk.
    let events = feed(&mut l, 1_000, 1.0);
    assert!(forwarded(&events).is_empty() && !l.in_utterance());
}

#[test]
fn hands_free_reports_a_possible_onset_before_the_utterance_opens() {
    let mut l = listener(ListenMode::HandsFree);
    feed(&mut l, 500, 0.0);
    // 100 ms of speech: heard (the endpointer's start_ms), not an utterance yet.
    let events = feed(&mut l, 100, 0.9);
    assert!(
        matches!(events[..], [ListenEvent::SpeechOnset { at_ms }] if (580..=600).contains(&at_ms)),
        "{:?}",
        kinds(&events)
    );
    // It goes on: the utterance opens, no second onset.
    let events = feed(&mut l, 300, 0.9);
    assert_eq!(
        kinds(&events)[0],
        "UtteranceStarted",
        "{:?}",
        kinds(&events)
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, ListenEvent::SpeechOnset { .. })));
    feed(&mut l, 1_000, 0.0);
    // A short burst: onset, then no speech.
    let mut events = feed(&mut l, 120, 0.9);
    events.extend(feed(&mut l, 1_000, 0.0));
    assert_eq!(kinds(&events), ["SpeechOnset", "NoSpeech"]);
    // Push-to-talk has no use for it.
    let mut l = listener(ListenMode::PushToTalk);
    feed(&mut l, 500, 0.0);
    assert!(feed(&mut l, 300, 0.9).is_empty());
}

#[test]
fn a_cancelled_hands_free_utterance_never_comes_out_when_its_speech_ends() {
    // The echo guard cancels the assistant's own voice as it is heard: the end of
    // that voice must not close into an utterance (and start a turn on it).
    let mut l = listener(ListenMode::HandsFree);
    feed(&mut l, 500, 0.0);
    let events = feed(&mut l, 600, 0.9);
    assert!(events.contains(&ListenEvent::UtteranceStarted { at_ms: 500 }));
    l.cancel();
    let mut events = feed(&mut l, 100, 0.9);
    events.extend(feed(&mut l, 1_000, 0.0));
    assert!(
        !events.iter().any(|e| matches!(
            e,
            ListenEvent::Utterance { .. }
                | ListenEvent::UtteranceAudio { .. }
                | ListenEvent::UtteranceStarted { .. }
        )),
        "{:?}",
        kinds(&events)
    );
    assert!(!l.in_utterance());

    // Speech that goes on long after the cancel opens a new utterance, announced
    // again so that whoever cancelled the first can judge it.
    feed(&mut l, 600, 0.9);
    l.cancel();
    let events = feed(&mut l, 600, 0.9);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ListenEvent::UtteranceStarted { .. }))
            .count(),
        1,
        "{:?}",
        kinds(&events)
    );
    let events = feed(&mut l, 1_000, 0.0);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ListenEvent::Utterance { .. })),
        "{:?}",
        kinds(&events)
    );
}

/// The events' names, without their audio.
fn kinds(events: &[ListenEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!("{e:?}")
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect()
        })
        .collect()
}

#[test]
fn hands_free_forwards_the_utterance_from_its_pre_roll_and_closes_it() {
    let mut l = listener(ListenMode::HandsFree);
    let mut events = feed(&mut l, 1_000, 0.0);
    assert!(l.press().is_empty(), "keys do nothing hands-free");
    events.extend(feed(&mut l, 800, 1.0));
    events.extend(feed(&mut l, 1_000, 0.0));
    // (Speech heard 90 ms in was announced as a possible onset first.)
    assert!(matches!(events[0], ListenEvent::SpeechOnset { .. }));
    assert_eq!(events[1], ListenEvent::UtteranceStarted { at_ms: 1_000 });
    let Some(ListenEvent::Utterance {
        start_ms,
        end_ms,
        audio,
    }) = events
        .iter()
        .find(|e| matches!(e, ListenEvent::Utterance { .. }))
    else {
        panic!("{events:?}")
    };
    assert_eq!((*start_ms, *end_ms), (1_000, 1_800));
    // The forwarded audio starts where the final one does.
    let partial = forwarded(&events);
    assert!(
        partial.len() >= audio.len(),
        "{} < {}",
        partial.len(),
        audio.len()
    );
    assert_eq!(&partial[..audio.len()], &audio[..]);
}

#[test]
fn a_lost_source_drops_the_open_utterance_and_says_so() {
    let mut l = listener(ListenMode::HandsFree);
    feed(&mut l, 500, 0.0);
    feed(&mut l, 500, 1.0);
    assert!(l.in_utterance());
    let events = l.source_lost("the microphone was unplugged".into());
    assert_eq!(
        events,
        vec![ListenEvent::SourceLost {
            message: "the microphone was unplugged".into(),
            utterance_dropped: true
        }]
    );
    assert!(feed(&mut l, 500, 1.0).is_empty());
    assert!(l.finish().is_empty());
}

fn limited(mode: ListenMode, limit_ms: u32) -> Listener {
    let config = ListenerConfig {
        mode,
        max_hands_free_ms: limit_ms,
        max_push_to_talk_ms: limit_ms,
        ..ListenerConfig::default()
    };
    Listener::new(
        config,
        Endpointer::new(Box::new(Marker), EndpointerConfig::default()),
    )
}

fn closing(events: &[ListenEvent]) -> Vec<&'static str> {
    events
        .iter()
        .filter_map(|e| match e {
            ListenEvent::LimitReached { .. } => Some("limit"),
            ListenEvent::Utterance { .. } => Some("utterance"),
            ListenEvent::NoSpeech { .. } => Some("no speech"),
            _ => None,
        })
        .collect()
}

#[test]
fn hands_free_speech_past_the_limit_is_closed_with_what_was_said() {
    let mut l = limited(ListenMode::HandsFree, 2_000);
    feed(&mut l, 300, 0.0);
    let events = feed(&mut l, 3_000, 1.0);
    assert_eq!(closing(&events), ["limit", "utterance"], "{events:?}");
    let audio = events.iter().find_map(|e| match e {
        ListenEvent::Utterance { audio, .. } => Some(audio.len()),
        _ => None,
    });
    // About the limit's worth of audio (pre-roll included), not the whole 3 s.
    assert!(
        audio.is_some_and(|n| n >= samples(1_800) && n <= samples(2_400)),
        "{audio:?}"
    );
    // Speech going on past the cut opens the next utterance.
    assert!(
        events
            .iter()
            .skip_while(|e| !matches!(e, ListenEvent::Utterance { .. }))
            .any(|e| matches!(e, ListenEvent::UtteranceStarted { .. })),
        "{events:?}"
    );
}

#[test]
fn a_key_held_past_the_limit_closes_the_utterance_and_the_release_adds_nothing() {
    let mut l = limited(ListenMode::PushToTalk, 2_000);
    l.press();
    let events = feed(&mut l, 2_500, 1.0);
    assert_eq!(closing(&events), ["limit", "utterance"], "{events:?}");
    assert!(feed(&mut l, 500, 1.0).is_empty());
    assert!(l.release().is_empty());
    // The next press listens again.
    assert!(!l.press().is_empty());
}

#[test]
fn listening_no_key_will_end_closes_only_if_nothing_was_said() {
    let mut l = listener(ListenMode::PushToTalk);
    l.press();
    feed(&mut l, 500, 0.0);
    assert_eq!(closing(&l.release_if_silent()), ["no speech"]);
    assert!(!l.in_utterance());
    // Speech in it: left open for the key.
    l.press();
    feed(&mut l, 500, 1.0);
    assert!(l.release_if_silent().is_empty());
    assert!(l.in_utterance());
    let mut released = l.release();
    released.extend(feed(&mut l, 300, 0.0));
    assert_eq!(closing(&released), ["utterance"]);
}

#[test]
fn no_limit_when_it_is_zero() {
    let mut l = limited(ListenMode::PushToTalk, 0);
    l.press();
    assert!(closing(&feed(&mut l, 5_000, 1.0)).is_empty());
    let mut released = l.release();
    released.extend(feed(&mut l, 300, 0.0));
    assert_eq!(closing(&released), ["utterance"]);
}

#[test]
fn a_restored_source_listens_again_from_a_clean_start() {
    let mut l = listener(ListenMode::HandsFree);
    feed(&mut l, 500, 1.0);
    assert!(l.in_utterance());
    l.source_lost("unplugged".into());
    assert_eq!(
        l.on_capture(CaptureEvent::Restored {
            device: "USB mic".into()
        })
        .expect("restored"),
        vec![ListenEvent::SourceRestored {
            device: "USB mic".into()
        }]
    );
    // The speech cut off by the loss does not end as an utterance now.
    assert!(feed(&mut l, 1500, 0.0).is_empty());
    let events = feed(&mut l, 500, 1.0);
    assert!(
        matches!(
            events[..],
            [
                ListenEvent::SpeechOnset { .. },
                ListenEvent::UtteranceStarted { .. },
                ..
            ]
        ),
        "{:?}",
        kinds(&events)
    );
    let events = feed(&mut l, 1500, 0.0);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ListenEvent::Utterance { .. })),
        "{events:?}"
    );
}

#[test]
fn blocks_at_48_khz_stereo_are_heard_at_16_khz() {
    let mut l = listener(ListenMode::HandsFree);
    let mut events = Vec::new();
    for value in [0.0f32, 1.0, 0.0] {
        for _ in 0..50 {
            let block = AudioBuffer {
                samples: vec![value; 960 * 2],
                channels: 2,
                sample_rate: 48_000,
            };
            events.extend(l.push_block(&block).expect("push"));
        }
    }
    // The resampler holds back at most one chunk (about 21 ms at 48 kHz).
    assert!(
        (2_970..=3_000).contains(&l.stream_ms()),
        "{}",
        l.stream_ms()
    );
    let starts: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, ListenEvent::UtteranceStarted { .. }))
        .collect();
    assert_eq!(starts.len(), 1, "{events:?}");
    let levels = events
        .iter()
        .filter(|e| matches!(e, ListenEvent::Level(_)))
        .count();
    assert_eq!(levels, 59);
}
