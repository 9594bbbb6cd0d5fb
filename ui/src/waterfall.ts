// The per-turn latency chart: each stage of a turn as a bar on one time axis that starts
// when the user stopped speaking, read from the same `Timings` the logs and the
// benchmarks use.
import type { Timings } from "./bindings/Timings";

/** One bar. Times are milliseconds after the end of the user's speech. */
export interface Stage {
  name: string;
  start: number;
  end: number;
}

type Key = keyof Timings;

/** The stages in order: each runs from the previous mark that happened to its own. */
const MARKS: { key: Key; name: string }[] = [
  { key: "stt_final_ms", name: "Transcript" },
  { key: "cache_decision_ms", name: "Cache check" },
  { key: "first_token_ms", name: "First token" },
  { key: "first_sentence_ms", name: "First sentence" },
  { key: "first_audio_ms", name: "First audio" },
  { key: "playback_end_ms", name: "Speaking" },
];

/** The bars of a turn; stages that did not happen (an instant answer has no token) are
 *  left out. A typed question has no end of speech: its axis starts at the first mark. */
export function stages(t: Timings): Stage[] {
  const present = MARKS.filter((m) => t[m.key] !== null);
  const origin = t.speech_end_ms ?? (present.length ? (t[present[0].key] as number) : 0);
  const out: Stage[] = [];
  let previous = origin;
  for (const m of present) {
    const at = t[m.key] as number;
    out.push({ name: m.name, start: previous - origin, end: Math.max(at, previous) - origin });
    previous = Math.max(at, previous);
  }
  return out;
}

/** "412 ms" or "1.25 s". */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** Draws the chart into `root` (a list of rows, each a labelled bar). */
export function renderWaterfall(t: Timings | null, root: HTMLElement): void {
  root.replaceChildren();
  if (!t) {
    const empty = document.createElement("p");
    empty.className = "summary";
    empty.textContent = "Timings appear here after the first answer.";
    root.append(empty);
    return;
  }
  const bars = stages(t);
  const total = Math.max(1, ...bars.map((b) => b.end));
  if (t.v2v_ms !== null) {
    const head = document.createElement("p");
    head.className = "v2v";
    head.textContent = `Voice to voice: ${formatMs(t.v2v_ms)}`;
    root.append(head);
  }
  for (const bar of bars) {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.dataset.stage = bar.name;
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = bar.name;
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar";
    fill.style.left = `${(bar.start / total) * 100}%`;
    fill.style.width = `${Math.max(0.5, ((bar.end - bar.start) / total) * 100)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = formatMs(bar.end - bar.start);
    row.append(label, track, value);
    root.append(row);
  }
}
