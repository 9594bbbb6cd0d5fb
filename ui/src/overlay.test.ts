// The overlay page against a fake source: it shows the state, or why it cannot yet.
/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import type { AppStatus } from "./bindings/AppStatus";
import type { Event } from "./bindings/Event";
import { startOverlay } from "./overlay";
import page from "../overlay.html?raw";

describe("the overlay", () => {
  it("says it is starting, then follows the assistant's state", async () => {
    document.body.innerHTML = page.slice(page.indexOf("<body"), page.indexOf("</body>")).replace(/^<body[^>]*>/, "");
    let onEvent: (e: Event) => void = () => undefined;
    let onStatus: (s: AppStatus) => void = () => undefined;
    startOverlay({
      onEvent: (h) => (onEvent = h),
      onStatus: (h) => (onStatus = h),
      current: () => Promise.resolve({ status: { type: "starting", step: "Loading" }, notices: [] }),
    });
    await new Promise((r) => setTimeout(r, 0));
    const label = document.getElementById("state-label");
    const orb = document.getElementById("orb");
    expect(label?.textContent).toBe("Starting…");
    onStatus({ type: "ready", answers: "a", microphone: "m", speaker: "s" });
    expect(label?.textContent).toBe("Idle");
    onEvent({ type: "state_changed", state: "SPEAKING", turn_id: 1, at_ms: 1 });
    expect(label?.textContent).toBe("Speaking");
    expect(orb?.dataset.state).toBe("SPEAKING");
    onStatus({ type: "failed", kind: "llm", message: "No key" });
    expect(label?.textContent).toBe("Needs attention");
  });
});
