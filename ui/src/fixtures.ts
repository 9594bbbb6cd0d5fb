// Test data shared by the UI tests.
import type { Timings } from "./bindings/Timings";

/** A full turn's timings: speech ends at 1 s, first audio 600 ms later. */
export const timings = (over: Partial<Timings> = {}): Timings => ({
  speech_end_ms: 1000,
  stt_final_ms: 1200,
  cache_decision_ms: 1210,
  llm_start_ms: 1210,
  first_token_ms: 1300,
  first_sentence_ms: 1500,
  first_audio_ms: 1600,
  playback_end_ms: 4000,
  v2v_ms: 600,
  early_start: null,
  ...over,
});

