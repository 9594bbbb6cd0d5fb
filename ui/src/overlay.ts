// The overlay: a small always-on-top window with the orb and the state, nothing else.
// It follows the same events as the main window.
import type { AppStatus } from "./bindings/AppStatus";
import type { Event } from "./bindings/Event";
import { apply, initialSession, stateLabel } from "./session";
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
  let session = initialSession;
  let notReady: string | null = "Starting…";
  const draw = () => {
    orb.dataset.state = session.state;
    label.dataset.state = session.state;
    label.textContent = notReady ?? stateLabel(session.state);
  };
  source.onEvent((event: Event) => {
    session = apply(session, event);
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
