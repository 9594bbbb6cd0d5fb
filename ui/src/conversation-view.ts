// Draws the session: the state (orb, label, hint), the turns (what the user said, the
// answer as it streams) and which buttons make sense now.
import { STATES } from "./bindings/states";
import {
  answererName,
  answering,
  pausedHint,
  stateHint,
  stateLabel,
  type Session,
  type TurnView,
} from "./session";

/** The elements the view draws into. */
export interface ConversationElements {
  orb: HTMLElement;
  label: HTMLElement;
  hint: HTMLElement;
  turns: HTMLElement;
  talk: HTMLButtonElement;
  interrupt: HTMLButtonElement;
}

/**
 * The part of `answer` after what was `heard` (the voice says the answer in pieces joined
 * by single spaces, so whitespace is not compared); "" when `heard` is not its start.
 */
export function unheardRest(answer: string, heard: string): string {
  let a = 0;
  for (const c of heard) {
    if (/\s/.test(c)) continue;
    while (a < answer.length && /\s/.test(answer[a])) a++;
    if (answer[a] !== c) return "";
    a++;
  }
  return answer.slice(a);
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
    const rest = turn.outcome && turn.heard !== null ? unheardRest(turn.answer, turn.heard) : "";
    if (rest.trim()) {
      // Show what was heard, and the rest that never was (interrupted, or stopped because
      // the model repeated itself or ran long), struck through.
      const heard = document.createElement("span");
      heard.textContent = turn.answer.slice(0, turn.answer.length - rest.length);
      const unheard = document.createElement("s");
      unheard.className = "unheard";
      unheard.title = turn.outcome === "interrupted" ? "Not heard: interrupted" : "Not said: the answer was cut short";
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

/** What is on screen for one turn: the view it was drawn from, and its element. */
interface Drawn {
  turn: TurnView;
  item: HTMLElement;
}

/** Per turns list: what each turn's element shows, so a streamed token touches one text
 * node instead of rebuilding every turn (the webview shares two cores with the engines). */
const drawnTurns = new WeakMap<HTMLElement, Map<number, Drawn>>();

/** Whether `next` differs from `prev` only by more answer text after what is drawn. */
function onlyMoreAnswer(prev: TurnView, next: TurnView): boolean {
  return (
    prev.answer !== "" &&
    next.answer.startsWith(prev.answer) &&
    prev.userText === next.userText &&
    prev.partial === next.partial &&
    prev.outcome === next.outcome &&
    next.outcome === null &&
    prev.provider === next.provider
  );
}

/** The element for `turn`, reusing what is drawn for it where that is enough. */
function drawTurn(drawn: Map<number, Drawn>, turn: TurnView): HTMLElement {
  const before = drawn.get(turn.id);
  if (before?.turn === turn) return before.item;
  if (before && onlyMoreAnswer(before.turn, turn)) {
    const answer = before.item.querySelector(".answer");
    if (answer) {
      answer.append(turn.answer.slice(before.turn.answer.length));
      drawn.set(turn.id, { turn, item: before.item });
      return before.item;
    }
  }
  const item = turnElement(turn);
  if (before) before.item.replaceWith(item);
  drawn.set(turn.id, { turn, item });
  return item;
}

/** Draws `session` into `el`. */
export function renderConversation(session: Session, el: ConversationElements): void {
  if (el.label.dataset.state !== session.state) {
    const label = stateLabel(session.state);
    el.orb.dataset.state = session.state;
    el.orb.setAttribute("aria-label", `Assistant state: ${label.toLowerCase()}`);
    el.label.textContent = label;
    el.label.dataset.state = session.state;
    el.hint.textContent = session.voicePaused ? pausedHint : stateHint[session.state];
    const listening = session.state === "LISTENING";
    el.talk.textContent = listening ? "Done" : "Talk";
    el.talk.dataset.listening = String(listening);
    el.talk.style.setProperty("--listening-colour", STATES.LISTENING.colour);
    el.interrupt.disabled = !answering(session.state);
  }
  let drawn = drawnTurns.get(el.turns);
  if (!drawn) {
    drawn = new Map();
    drawnTurns.set(el.turns, drawn);
  }
  const items = session.turns.map((turn) => drawTurn(drawn, turn));
  const shown = new Set(session.turns.map((t) => t.id));
  for (const id of [...drawn.keys()]) {
    if (!shown.has(id)) drawn.delete(id);
  }
  // Touch the list itself only when turns came, went or moved.
  const children = el.turns.children;
  const same = children.length === items.length && items.every((item, i) => children[i] === item);
  if (!same) el.turns.replaceChildren(...items);
}
