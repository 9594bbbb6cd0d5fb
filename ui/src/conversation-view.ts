// Draws the session: the state (orb, label, hint), the turns (what the user said, the
// answer as it streams) and which buttons make sense now.
import { STATES } from "./bindings/states";
import { answererName, answering, stateHint, stateLabel, type Session, type TurnView } from "./session";

/** The elements the view draws into. */
export interface ConversationElements {
  orb: HTMLElement;
  label: HTMLElement;
  hint: HTMLElement;
  turns: HTMLElement;
  talk: HTMLButtonElement;
  interrupt: HTMLButtonElement;
}

function turnElement(turn: TurnView): HTMLElement {
  const item = document.createElement("li");
  item.className = "turn";
  item.dataset.turn = String(turn.id);
  if (turn.outcome) item.dataset.outcome = turn.outcome;
  const user = document.createElement("p");
  user.className = turn.partial ? "user partial" : "user";
  user.textContent = turn.userText || "…";
  item.append(user);
  if (turn.answer || turn.outcome) {
    const answer = document.createElement("p");
    answer.className = "answer";
    if (turn.outcome === "interrupted" && turn.heard !== null) {
      // Show what was heard, and the rest that never was, struck through.
      const heard = document.createElement("span");
      heard.textContent = turn.heard;
      const rest = turn.answer.startsWith(turn.heard) ? turn.answer.slice(turn.heard.length) : "";
      const unheard = document.createElement("s");
      unheard.className = "unheard";
      unheard.textContent = rest;
      answer.append(heard, unheard);
    } else {
      answer.textContent = turn.answer;
    }
    item.append(answer);
  }
  if (turn.outcome && turn.provider) {
    const source = document.createElement("p");
    source.className = "turn-source";
    source.textContent = `Answered by ${answererName(turn.provider)}`;
    item.append(source);
  }
  if (turn.outcome === "failed") {
    const failed = document.createElement("p");
    failed.className = "turn-note";
    failed.textContent = "This turn failed (see the message above).";
    item.append(failed);
  }
  return item;
}

/** Draws `session` into `el`. */
export function renderConversation(session: Session, el: ConversationElements): void {
  const label = stateLabel(session.state);
  el.orb.dataset.state = session.state;
  el.orb.setAttribute("aria-label", `Assistant state: ${label.toLowerCase()}`);
  el.label.textContent = label;
  el.label.dataset.state = session.state;
  el.hint.textContent = stateHint[session.state];
  el.turns.replaceChildren(...session.turns.map(turnElement));
  const listening = session.state === "LISTENING";
  el.talk.textContent = listening ? "Done" : "Talk";
  el.talk.dataset.listening = String(listening);
  el.talk.style.setProperty("--listening-colour", STATES.LISTENING.colour);
  el.interrupt.disabled = !answering(session.state);
}
