import { describe, expect, it } from "vitest";
import type { Event } from "./bindings/Event";
import { timings } from "./fixtures";
import { STATES } from "./bindings/states";
import { answererName, answering, apply, initialSession, stateHint, stateLabel, type Session } from "./session";

const run = (events: Event[], from: Session = initialSession) => events.reduce(apply, from);

describe("session", () => {
  it("follows a turn from the partial transcript to the heard answer", () => {
    const s = run([
      { type: "state_changed", state: "LISTENING", turn_id: 1, at_ms: 10 },
      { type: "transcript_partial", turn_id: 1, text: "What is" },
      { type: "transcript_partial", turn_id: 1, text: "What is the capital" },
    ]);
    expect(s.state).toBe("LISTENING");
    expect(s.turns).toEqual([expect.objectContaining({ id: 1, userText: "What is the capital", partial: true })]);

    const done = run(
      [
        { type: "state_changed", state: "ANALYZING_SPEECH", turn_id: 1, at_ms: 20 },
        { type: "transcript_final", turn_id: 1, text: "What is the capital of France?" },
        // A late partial never overwrites the final transcript.
        { type: "transcript_partial", turn_id: 1, text: "What is the" },
        { type: "llm_text_chunk", turn_id: 1, text: "The capital" },
        { type: "llm_text_chunk", turn_id: 1, text: " is Paris." },
        {
          type: "turn_finished",
          turn_id: 1,
          outcome: "answered",
          user_text: "What is the capital of France?",
          heard_text: "The capital is Paris.",
          provider: "local",
          timings: timings(),
        },
        { type: "state_changed", state: "IDLE", turn_id: 1, at_ms: 30 },
      ],
      s,
    );
    expect(done.state).toBe("IDLE");
    expect(done.turns).toHaveLength(1);
    expect(done.turns[0]).toMatchObject({
      userText: "What is the capital of France?",
      partial: false,
      answer: "The capital is Paris.",
      outcome: "answered",
      provider: "local",
    });
    expect(done.lastTimings?.v2v_ms).toBe(600);
  });

  it("forgets a turn with no speech and keeps the previous chart", () => {
    const first = run([
      {
        type: "turn_finished",
        turn_id: 1,
        outcome: "answered",
        user_text: "Hi",
        heard_text: "Hello!",
        provider: "instant",
        timings: timings({ v2v_ms: 300 }),
      },
    ]);
    const s = run(
      [
        { type: "transcript_partial", turn_id: 2, text: "uh" },
        {
          type: "turn_finished",
          turn_id: 2,
          outcome: "no_speech",
          user_text: "",
          heard_text: "",
          provider: null,
          timings: timings({ speech_end_ms: null, first_audio_ms: null, v2v_ms: null }),
        },
      ],
      first,
    );
    expect(s.turns.map((t) => t.id)).toEqual([1]);
    expect(s.lastTimings?.v2v_ms).toBe(300);
  });

  it("knows when an answer can be interrupted", () => {
    // From the moment speech is being analyzed: an interrupt then cancels the turn.
    expect(answering("ANALYZING_SPEECH")).toBe(true);
    expect(answering("CHECKING_CACHE")).toBe(true);
    expect(answering("ROUTING_TO_LLM")).toBe(true);
    expect(answering("GENERATING_SPEECH")).toBe(true);
    expect(answering("SPEAKING")).toBe(true);
    expect(answering("LISTENING")).toBe(false);
    expect(answering("IDLE")).toBe(false);
  });

  it("knows while the voice is paused for someone talking over it", () => {
    const speaking = run([{ type: "state_changed", state: "SPEAKING", turn_id: 3, at_ms: 5 }]);
    const paused = apply(speaking, { type: "voice_paused", turn_id: 3, paused: true });
    expect(paused.voicePaused).toBe(true);
    expect(paused.state).toBe("SPEAKING");
    // An "mm-hm": it plays on.
    expect(apply(paused, { type: "voice_paused", turn_id: 3, paused: false }).voicePaused).toBe(false);
    // Speech that lasted: the turn moves on, and the pause with it.
    expect(apply(paused, { type: "state_changed", state: "LISTENING", turn_id: 4, at_ms: 9 }).voicePaused).toBe(false);
  });

  it("takes each state's label from Rust and adds its own hint", () => {
    expect(stateLabel("ANALYZING_SPEECH")).toBe("Analyzing speech");
    for (const state of Object.keys(STATES) as (keyof typeof STATES)[]) {
      expect(stateLabel(state)).toBe(STATES[state].label);
      expect(stateHint[state]).not.toBe("");
    }
  });

  it("names who answered for a person", () => {
    expect(answererName("local")).toBe("the local model");
    expect(answererName("instant")).toBe("an instant answer");
    expect(answererName("exact")).toBe("Sotto's own calculator and clock");
    expect(answererName("OpenAI")).toBe("OpenAI");
  });
});
