// The conversation as the window shows it, rebuilt from the assistant's events alone: a
// pure reducer, so it can be tested with a fake event stream.
import type { AssistantState } from "./bindings/AssistantState";
import type { Event } from "./bindings/Event";
import type { Timings } from "./bindings/Timings";
import type { TurnOutcome } from "./bindings/TurnOutcome";
import { STATES } from "./bindings/states";

/** Whether an answer is in progress (the Interrupt button has something to stop). */
export { answering } from "./bindings/states";

/** One turn on screen. */
export interface TurnView {
  id: number;
  /** What the user said: the partial transcript until the final one arrives. */
  userText: string;
  /** Whether `userText` is still a partial transcript. */
  partial: boolean;
  /** The answer as it streams. */
  answer: string;
  /** Set when the turn is over. */
  outcome: TurnOutcome | null;
  /** What the user heard (less than `answer` when interrupted). */
  heard: string | null;
  provider: string | null;
  timings: Timings | null;
}

/** Everything the conversation view needs. */
export interface Session {
  state: AssistantState;
  turns: TurnView[];
  /** The last turn that finished with timings, for the latency chart. */
  lastTimings: Timings | null;
  /** The answer's voice is paused: someone may be talking over it (voice barge-in). */
  voicePaused: boolean;
}

export const initialSession: Session = { state: "IDLE", turns: [], lastTimings: null, voicePaused: false };

function blankTurn(id: number): TurnView {
  return {
    id,
    userText: "",
    partial: true,
    answer: "",
    outcome: null,
    heard: null,
    provider: null,
    timings: null,
  };
}

/** `session` with turn `id` changed by `change` (created if new). */
function withTurn(session: Session, id: number, change: (t: TurnView) => TurnView): Session {
  const index = session.turns.findIndex((t) => t.id === id);
  if (index === -1) {
    return { ...session, turns: [...session.turns, change(blankTurn(id))] };
  }
  const turns = session.turns.slice();
  turns[index] = change(turns[index]);
  return { ...session, turns };
}

/** The session after `event`. */
export function apply(session: Session, event: Event): Session {
  switch (event.type) {
    case "state_changed":
      return { ...session, state: event.state, voicePaused: false };
    case "voice_paused":
      return { ...session, voicePaused: event.paused };
    case "transcript_partial":
      return withTurn(session, event.turn_id, (t) =>
        t.partial ? { ...t, userText: event.text } : t,
      );
    case "transcript_final":
      return withTurn(session, event.turn_id, (t) => ({ ...t, userText: event.text, partial: false }));
    case "llm_text_chunk":
      return withTurn(session, event.turn_id, (t) => ({ ...t, answer: t.answer + event.text }));
    case "turn_finished": {
      if (event.outcome === "no_speech") {
        // Nothing was said: the turn leaves no trace.
        return { ...session, turns: session.turns.filter((t) => t.id !== event.turn_id) };
      }
      const next = withTurn(session, event.turn_id, (t) => ({
        ...t,
        userText: event.user_text || t.userText,
        partial: false,
        outcome: event.outcome,
        heard: event.heard_text,
        provider: event.provider,
        timings: event.timings,
      }));
      const timed = event.timings.speech_end_ms !== null || event.timings.first_audio_ms !== null;
      return timed ? { ...next, lastTimings: event.timings } : next;
    }
    case "error_occurred":
    case "recovered":
      return session;
  }
}

/** What to do (or what is happening) in each state, under its label: UI wording, while the
 * label, colours and `answering` come from Rust (bindings/states.ts). */
export const stateHint: Record<AssistantState, string> = {
  IDLE: "Hold the hotkey or press Talk, then speak.",
  LISTENING: "Go ahead, I'm listening.",
  ANALYZING_SPEECH: "Turning your words into text…",
  CHECKING_CACHE: "Looking for an instant answer…",
  ROUTING_TO_LLM: "Thinking…",
  GENERATING_SPEECH: "Finding the voice…",
  SPEAKING: "Press Interrupt (or talk) to cut in.",
};

/** The hint while the voice is paused for someone talking over it. */
export const pausedHint = "Paused: go on, I'm listening.";

/** The state in words, as Rust names it (the window, the overlay and the tray agree). */
export function stateLabel(state: AssistantState): string {
  return STATES[state].label;
}

/** Who answered, for a person: the provider's name, or what "local"/"instant"/"exact" mean. */
export function answererName(provider: string): string {
  if (provider === "local") return "the local model";
  if (provider === "instant") return "an instant answer";
  if (provider === "exact") return "Sotto's own calculator and clock";
  return provider;
}
