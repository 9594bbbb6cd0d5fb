//! The state protocol: what the assistant tells the UI (and the logs, and `sotto run
//! --events`). The names are part of the product (docs/PRODUCT.md); the TypeScript bindings in
//! `ui/src/bindings/` are generated from these types.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The assistant's seven states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[ts(export)]
pub enum AssistantState {
    /// Waiting for the hotkey (push-to-talk) or not listening.
    Idle,
    /// Hearing the user.
    Listening,
    /// The user stopped: making the final transcript.
    AnalyzingSpeech,
    /// Looking for an instant answer.
    CheckingCache,
    /// Asking the language model.
    RoutingToLlm,
    /// Turning the first words of the answer into speech.
    GeneratingSpeech,
    /// The answer is playing.
    Speaking,
}

impl AssistantState {
    /// Every state, in the order a turn goes through them.
    pub const ALL: [AssistantState; 7] = [
        AssistantState::Idle,
        AssistantState::Listening,
        AssistantState::AnalyzingSpeech,
        AssistantState::CheckingCache,
        AssistantState::RoutingToLlm,
        AssistantState::GeneratingSpeech,
        AssistantState::Speaking,
    ];

    /// The state in words: the window's label, the overlay's, the tray's tooltip.
    pub fn label(self) -> &'static str {
        match self {
            AssistantState::Idle => "Idle",
            AssistantState::Listening => "Listening",
            AssistantState::AnalyzingSpeech => "Analyzing speech",
            AssistantState::CheckingCache => "Checking cache",
            AssistantState::RoutingToLlm => "Routing to LLM",
            AssistantState::GeneratingSpeech => "Generating speech",
            AssistantState::Speaking => "Speaking",
        }
    }

    /// The state's colour as RGB: the tray's dot and the window's state label.
    pub fn colour(self) -> [u8; 3] {
        match self {
            // The orb's main idle colour is too dark for a dot on a panel.
            AssistantState::Idle => self.palette()[0],
            _ => self.palette()[1],
        }
    }

    /// The orb's light, main and dark colours as RGB.
    pub fn palette(self) -> [[u8; 3]; 3] {
        match self {
            AssistantState::Idle => [[0x9a, 0xa6, 0xc4], [0x4d, 0x5a, 0x80], [0x1d, 0x22, 0x33]],
            AssistantState::Listening => {
                [[0xc9, 0xff, 0xe3], [0x34, 0xc7, 0x7b], [0x0f, 0x4a, 0x2c]]
            }
            AssistantState::AnalyzingSpeech => {
                [[0xff, 0xe7, 0xb0], [0xf0, 0xb4, 0x29], [0x5c, 0x3d, 0x00]]
            }
            AssistantState::CheckingCache => {
                [[0xc8, 0xfb, 0xff], [0x22, 0xc3, 0xd6], [0x05, 0x3e, 0x45]]
            }
            AssistantState::RoutingToLlm => {
                [[0xe9, 0xd4, 0xff], [0x9b, 0x5c, 0xff], [0x2d, 0x10, 0x60]]
            }
            AssistantState::GeneratingSpeech => {
                [[0xff, 0xd3, 0xec], [0xe0, 0x52, 0x9c], [0x5a, 0x0c, 0x34]]
            }
            AssistantState::Speaking => {
                [[0xff, 0xff, 0xff], [0x7a, 0xa2, 0xff], [0x23, 0x3a, 0x7a]]
            }
        }
    }

    /// Whether a turn is being answered (from the final transcript to the end of
    /// playback): an interrupt then has something to stop.
    pub fn is_answering(self) -> bool {
        !matches!(self, AssistantState::Idle | AssistantState::Listening)
    }
}

/// What kind of thing went wrong, so the UI can offer the right action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorKind {
    /// The microphone is missing, failed or was unplugged.
    Microphone,
    /// The speakers are missing or failed.
    Speaker,
    /// Speech recognition failed.
    SpeechToText,
    /// The language model (local or cloud) failed.
    Llm,
    /// The voice failed.
    Voice,
    /// A model file is missing or damaged.
    Model,
    /// History could not be saved or read.
    Storage,
    /// The settings file had values that could not be used.
    Settings,
    /// Something was longer than Sotto takes (a typed question); what fit was kept.
    Limit,
    /// The assistant itself stopped without being asked (a fault in Sotto); it is started
    /// again, unless it keeps stopping.
    Assistant,
}

/// How long each stage of a turn took. Every time is milliseconds on the assistant's
/// monotonic clock (the same clock as `at_ms` in [`Event::StateChanged`]); a stage that did
/// not happen (an interrupted turn, an instant answer with no LLM) is `null`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Timings {
    /// The user stopped speaking (hands-free: end of speech; push-to-talk: key release).
    pub speech_end_ms: Option<f64>,
    /// The final transcript was ready.
    pub stt_final_ms: Option<f64>,
    /// The instant-answer cache said hit or miss.
    pub cache_decision_ms: Option<f64>,
    /// The language model was asked for the answer: before `stt_final_ms` when it started
    /// early, on the words heard at the user's pause.
    pub llm_start_ms: Option<f64>,
    /// The first token of the answer arrived.
    pub first_token_ms: Option<f64>,
    /// The first speakable piece of the answer was ready for the voice.
    pub first_sentence_ms: Option<f64>,
    /// The first audio sample of the answer went to the speaker.
    pub first_audio_ms: Option<f64>,
    /// The last of the answer finished playing (or was cut off).
    pub playback_end_ms: Option<f64>,
    /// Voice to voice: first audio out minus end of user speech.
    pub v2v_ms: Option<f64>,
    /// The answer started early on the words heard at the user's pause: kept (`true`), or
    /// started again because the final transcript said other words (`false`); `None` when
    /// it did not start early.
    pub early_start: Option<bool>,
}

impl Timings {
    /// Fills in `v2v_ms` from the other times.
    pub fn with_v2v(mut self) -> Timings {
        self.v2v_ms = match (self.first_audio_ms, self.speech_end_ms) {
            (Some(audio), Some(end)) => Some(audio - end),
            _ => None,
        };
        self
    }
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum TurnOutcome {
    /// The whole answer was spoken.
    Answered,
    /// The user interrupted; only part of the answer was heard.
    Interrupted,
    /// Nothing was said (a key tapped in silence, a cough).
    NoSpeech,
    /// Something failed (an `error_occurred` event says what).
    Failed,
}

/// Everything the assistant reports, one JSON object per event with a `type` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
#[ts(export)]
pub enum Event {
    /// The assistant entered a state.
    StateChanged {
        /// The new state.
        state: AssistantState,
        /// The turn it belongs to (0 outside any turn).
        #[ts(type = "number")]
        turn_id: u64,
        /// When, on the assistant's clock.
        at_ms: f64,
    },
    /// The transcript so far, while the user speaks.
    TranscriptPartial {
        /// The turn.
        #[ts(type = "number")]
        turn_id: u64,
        /// The words so far.
        text: String,
    },
    /// What the user said.
    TranscriptFinal {
        /// The turn.
        #[ts(type = "number")]
        turn_id: u64,
        /// The words.
        text: String,
    },
    /// More of the answer's text, as it streams.
    LlmTextChunk {
        /// The turn.
        #[ts(type = "number")]
        turn_id: u64,
        /// The new text.
        text: String,
    },
    /// The turn is over.
    TurnFinished {
        /// The turn.
        #[ts(type = "number")]
        turn_id: u64,
        /// How it ended.
        outcome: TurnOutcome,
        /// What the user said.
        user_text: String,
        /// What the user heard of the answer (all of it unless interrupted).
        heard_text: String,
        /// Who answered ("local", "OpenAI", "instant").
        provider: Option<String>,
        /// Per-stage times.
        timings: Timings,
    },
    /// Something went wrong; `message` says what to do about it.
    ErrorOccurred {
        /// The turn, if one was running.
        #[ts(type = "number | null")]
        turn_id: Option<u64>,
        /// What kind of failure.
        kind: ErrorKind,
        /// For a person.
        message: String,
    },
    /// Voice barge-in: the answer's voice paused because someone may be talking over it
    /// (`paused`), or plays on because it was only a short sound (`!paused`). Speech that
    /// goes on interrupts the turn ([`Event::TurnFinished`], interrupted).
    VoicePaused {
        /// The turn.
        #[ts(type = "number")]
        turn_id: u64,
        /// Paused (true) or playing on (false).
        paused: bool,
    },
    /// A failure reported by [`Event::ErrorOccurred`] went away by itself (a microphone
    /// plugged back in): its messages can go.
    Recovered {
        /// What works again.
        kind: ErrorKind,
        /// For a person.
        message: String,
    },
}

/// `#rrggbb` for an RGB colour.
fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The wire name of a state (`LISTENING`), as serde writes it.
fn wire_name(state: AssistantState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `ui/src/bindings/states.ts`: every state's label, colours and whether it is answering,
/// so the window, the overlay and the tray read one definition.
pub fn states_ts() -> String {
    let mut out = String::from(
        "// Generated from sotto_core::AssistantState by the Rust tests. Do not edit this file manually.\n\
         import type { AssistantState } from \"./AssistantState\";\n\n\
         /** How a state reads and looks: the same in the window, the overlay and the tray. */\n\
         export interface StateLook {\n\
         \x20 /** The state in words. */\n\
         \x20 label: string;\n\
         \x20 /** The state's colour (the tray's dot, the state label). */\n\
         \x20 colour: string;\n\
         \x20 /** The orb's light, main and dark colours. */\n\
         \x20 palette: [string, string, string];\n\
         \x20 /** Whether an answer is in progress (an interrupt has something to stop). */\n\
         \x20 answering: boolean;\n\
         }\n\n\
         /** Every state's look. */\n\
         export const STATES: Record<AssistantState, StateLook> = {\n",
    );
    for state in AssistantState::ALL {
        let [light, main, dark] = state.palette().map(hex);
        out.push_str(&format!(
            "  {}: {{ label: \"{}\", colour: \"{}\", palette: [\"{light}\", \"{main}\", \"{dark}\"], answering: {} }},\n",
            wire_name(state),
            state.label(),
            hex(state.colour()),
            state.is_answering()
        ));
    }
    out.push_str(
        "};\n\n\
         /** Whether an answer is in progress in `state`. */\n\
         export function answering(state: AssistantState): boolean {\n\
         \x20 return STATES[state].answering;\n\
         }\n",
    );
    out
}

/// `ui/src/bindings/states.css`: each state's colours as CSS variables on any element
/// with its `data-state` (the orb, the label).
pub fn states_css() -> String {
    let mut out = String::from(
        "/* Generated from sotto_core::AssistantState by the Rust tests. Do not edit this file manually. */\n",
    );
    for state in AssistantState::ALL {
        let [light, main, dark] = state.palette().map(hex);
        out.push_str(&format!(
            ":root [data-state=\"{}\"] {{ --state-colour: {}; --c1: {light}; --c2: {main}; --c3: {dark}; }}\n",
            wire_name(state),
            hex(state.colour()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_its_own_label_and_colour() {
        for (i, a) in AssistantState::ALL.iter().enumerate() {
            for b in &AssistantState::ALL[i + 1..] {
                assert_ne!(a.label(), b.label());
                assert_ne!(a.colour(), b.colour(), "{a:?} and {b:?}");
            }
        }
        let answering: Vec<_> = AssistantState::ALL
            .into_iter()
            .filter(|s| s.is_answering())
            .collect();
        assert_eq!(answering.len(), 5);
        assert!(!answering.contains(&AssistantState::Listening));
    }

    /// Writes the state looks next to the ts-rs bindings (the xtask fails if the
    /// committed copy differs).
    #[test]
    fn export_state_looks() {
        let dir = std::env::var_os("TS_RS_EXPORT_DIR").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings"),
            std::path::PathBuf::from,
        );
        std::fs::create_dir_all(&dir).expect("bindings folder");
        std::fs::write(dir.join("states.ts"), states_ts()).expect("states.ts");
        std::fs::write(dir.join("states.css"), states_css()).expect("states.css");
        assert!(states_ts().contains(
            "  ANALYZING_SPEECH: { label: \"Analyzing speech\", colour: \"#f0b429\", palette: [\"#ffe7b0\", \"#f0b429\", \"#5c3d00\"], answering: true },"
        ));
    }
}
