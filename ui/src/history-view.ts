// The history panel: conversations (searchable), a conversation's turns, export.
import type { Conversation } from "./bindings/Conversation";
import type { TurnRecord } from "./bindings/TurnRecord";

/** "22 Nov, 14:05" in the user's locale. */
export function when(unixMs: number): string {
  return new Date(unixMs).toLocaleString(undefined, {
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** Lists `conversations` in `root`; `onOpen` is called with the one clicked. */
export function renderHistory(
  conversations: Conversation[],
  root: HTMLElement,
  onOpen: (c: Conversation) => void,
): void {
  root.replaceChildren();
  if (conversations.length === 0) {
    const empty = document.createElement("li");
    empty.className = "summary";
    empty.textContent = "No conversations yet.";
    root.append(empty);
    return;
  }
  for (const c of conversations) {
    const item = document.createElement("li");
    item.className = "conversation";
    item.dataset.id = String(c.id);
    const open = document.createElement("button");
    open.className = "conversation-open";
    const title = document.createElement("span");
    title.className = "conversation-title";
    title.textContent = c.title || "(untitled)";
    const meta = document.createElement("span");
    meta.className = "conversation-meta";
    meta.textContent = `${when(c.started_unix_ms)} · ${c.turns} ${c.turns === 1 ? "turn" : "turns"}`;
    open.append(title, meta);
    open.addEventListener("click", () => onOpen(c));
    item.append(open);
    root.append(item);
  }
}

/** Shows the turns of a conversation in `root`. */
export function renderTurns(turns: TurnRecord[], root: HTMLElement): void {
  root.replaceChildren(
    ...turns.map((t) => {
      const item = document.createElement("li");
      item.className = "history-turn";
      const user = document.createElement("p");
      user.className = "user";
      user.textContent = t.user_text;
      const answer = document.createElement("p");
      answer.className = "answer";
      answer.textContent = t.heard_text + (t.outcome === "interrupted" ? " (interrupted)" : "");
      item.append(user, answer);
      return item;
    }),
  );
}
