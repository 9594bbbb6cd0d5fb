// The overlay: a small always-on-top window with the orb and the state, nothing else.
// It follows the assistant's state changes.
import type { AppStatus } from "./bindings/AppStatus";
import type { Event } from "./bindings/Event";
import type { AssistantState } from "./bindings/AssistantState";
import { stateLabel } from "./session";
import type { AssistantSource } from "./source";

/** What the overlay says when the assistant is not ready. */
function statusWord(status: AppStatus): string | null {
  switch (status.type) {
    case "ready":
      return null;
    case "starting":
      return "Starting…";
    case "setup_needed":
    case "downloading":
      return "Setting up";
    case "failed":
      return "Needs attention";
  }
}

/** Connects the overlay page in `doc` to `source`. */
export function startOverlay(source: Pick<AssistantSource, "onEvent" | "onStatus" | "current">, doc: Document = document): void {
  const orb = doc.getElementById("orb");
  const label = doc.getElementById("state-label");
  if (!orb || !label) throw new Error("the overlay page has no #orb or #state-label");
  // Only the state: the overlay neither keeps the turns nor redraws for each token.
  let state: AssistantState = "IDLE";
  let notReady: string | null = "Starting…";
  const draw = () => {
    orb.dataset.state = state;
    label.dataset.state = state;
    label.textContent = notReady ?? stateLabel(state);
  };
  source.onEvent((event: Event) => {
    if (event.type !== "state_changed" || event.state === state) return;
    state = event.state;
    draw();
  });
  const onStatus = (status: AppStatus) => {
    notReady = statusWord(status);
    draw();
  };
  source.onStatus(onStatus);
  void source.current().then(({ status }) => onStatus(status));
  draw();
}
