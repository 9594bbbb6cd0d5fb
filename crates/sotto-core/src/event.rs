//! The state protocol: what the assistant tells the UI (and the logs, and `sotto run
//! --events`). The names are part of the product (PRODUCT.md); the TypeScript bindings in
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
}
