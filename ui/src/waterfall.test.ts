import { describe, expect, it } from "vitest";
import { timings } from "./fixtures";
import { formatMs, renderWaterfall, stages } from "./waterfall";

describe("latency chart", () => {
  it("lays the stages end to end from the end of speech", () => {
    expect(stages(timings())).toEqual([
      { name: "Transcript", start: 0, end: 200 },
      { name: "Cache check", start: 200, end: 210 },
      { name: "First token", start: 210, end: 300 },
      { name: "First sentence", start: 300, end: 500 },
      { name: "First audio", start: 500, end: 600 },
      { name: "Speaking", start: 600, end: 3000 },
    ]);
  });

  it("leaves out what did not happen (an instant answer has no token)", () => {
    const names = stages(timings({ first_token_ms: null, first_sentence_ms: null })).map((s) => s.name);
    expect(names).toEqual(["Transcript", "Cache check", "First audio", "Speaking"]);
  });

  it("starts a typed question's axis at its first mark", () => {
    const typed = stages(
      timings({ speech_end_ms: null, stt_final_ms: null, cache_decision_ms: 5000, v2v_ms: null }),
    );
    expect(typed[0]).toEqual({ name: "Cache check", start: 0, end: 0 });
    expect(typed[1].start).toBe(0);
  });

  it("draws one labelled bar per stage with its duration", () => {
    const root = document.createElement("div");
    renderWaterfall(timings(), root);
    expect(root.querySelector(".v2v")?.textContent).toBe("Voice to voice: 600 ms");
    const rows = [...root.querySelectorAll<HTMLElement>(".bar-row")];
    expect(rows.map((r) => r.dataset.stage)).toContain("First token");
    expect(rows[0].querySelector(".bar-value")?.textContent).toBe("200 ms");
    expect(rows[5].querySelector(".bar-value")?.textContent).toBe("2.40 s");
    renderWaterfall(null, root);
    expect(root.textContent).toContain("after the first answer");
    expect(formatMs(1250)).toBe("1.25 s");
  });
});
