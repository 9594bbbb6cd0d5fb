import { describe, expect, it } from "vitest";
import type { ModelStatus } from "./bindings/ModelStatus";
import { humanBytes, renderModels, stateText, summarize } from "./models-view";

const model = (over: Partial<ModelStatus>): ModelStatus => ({
  id: "whisper-tiny.en",
  kind: "stt",
  title: "Whisper tiny.en",
  default: true,
  state: "installed",
  detail: null,
  disk_bytes: 77_704_698,
  ...over,
});

describe("models panel", () => {
  it("formats sizes like the CLI", () => {
    expect(humanBytes(512)).toBe("512 B");
    expect(humanBytes(98_362_432)).toBe("98.4 MB");
  });

  it("says all is well only when every default model is installed", () => {
    expect(summarize([model({}), model({ id: "x", default: false, state: "missing" })])).toEqual({
      text: "All 1 default models are installed and verified.",
      problem: false,
    });
    const bad = summarize([model({}), model({ id: "qwen", state: "damaged" })]);
    expect(bad.problem).toBe(true);
    expect(bad.text).toContain("qwen");
    expect(bad.text).toContain("sotto models fetch");
  });

  it("flags a missing default model but not a missing optional one", () => {
    expect(stateText(model({ state: "missing" }))).toBe("missing");
    expect(stateText(model({ state: "missing", default: false }))).toBe("not installed");
  });

  it("renders a row per model with its state and the reason for a damaged one", () => {
    const list = document.createElement("ul");
    const summary = document.createElement("p");
    renderModels(
      [model({}), model({ id: "qwen", title: "Qwen", state: "damaged", detail: "truncated: 5 bytes" })],
      list,
      summary,
    );
    const rows = list.querySelectorAll<HTMLElement>("li.model");
    expect(rows).toHaveLength(2);
    expect(rows[0].dataset.state).toBe("installed");
    expect(rows[0].textContent).toContain("77.7 MB");
    expect(rows[1].dataset.state).toBe("damaged");
    expect(rows[1].textContent).toContain("truncated: 5 bytes");
    expect(summary.classList.contains("problem")).toBe(true);
  });
});
