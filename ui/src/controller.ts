// The window's behaviour: events from the source redraw the views; buttons send
// commands. Everything goes through an `AssistantSource`, so tests drive it with a fake.
import type { AppStatus } from "./bindings/AppStatus";
import type { Event } from "./bindings/Event";
import { renderConversation, type ConversationElements } from "./conversation-view";
import { renderHistory, renderTurns } from "./history-view";
import { apply, initialSession, type Session } from "./session";
import { readSettings, renderSettings } from "./settings-view";
import type { AssistantSource } from "./source";
import { showToast } from "./toasts";
import { renderWaterfall } from "./waterfall";

function byId<T extends HTMLElement = HTMLElement>(doc: Document, id: string): T {
  const el = doc.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

/** A sentence for the status line. */
export function statusText(status: AppStatus): string {
  switch (status.type) {
    case "starting":
      return `${status.step}…`;
    case "ready":
      return `Ready. Microphone: ${status.microphone}. Output: ${status.speaker}.`;
    case "setup_needed":
      return `Some models are missing (${status.missing.join(", ")}). Download them in Models below.`;
    case "failed":
      return status.message;
  }
}

/** Connects the page in `doc` to `source`; returns a way to read the session (tests). */
export function startWindow(source: AssistantSource, doc: Document = document): () => Session {
  let session = initialSession;
  const conversation: ConversationElements = {
    orb: byId(doc, "orb"),
    label: byId(doc, "state-label"),
    hint: byId(doc, "state-hint"),
    turns: byId(doc, "turns"),
    talk: byId<HTMLButtonElement>(doc, "talk"),
    interrupt: byId<HTMLButtonElement>(doc, "interrupt"),
  };
  const status = byId(doc, "status-line");
  const chart = byId(doc, "waterfall");
  const toasts = byId(doc, "toasts");
  const search = byId<HTMLInputElement>(doc, "history-search");
  const list = byId(doc, "history-list");
  const turns = byId(doc, "history-turns");
  const exported = byId(doc, "history-export-text");
  const ask = byId<HTMLFormElement>(doc, "ask");
  const askText = byId<HTMLInputElement>(doc, "ask-text");
  let ready = false;
  let openConversation: number | null = null;

  const redraw = () => {
    renderConversation(session, conversation);
    conversation.talk.disabled = !ready;
    askText.disabled = !ready;
  };
  const refreshHistory = async () => {
    try {
      renderHistory(await source.searchHistory(search.value), list, (c) => void openHistory(c.id));
    } catch (e) {
      list.replaceChildren();
      list.textContent = String(e);
    }
  };
  const openHistory = async (id: number) => {
    openConversation = id;
    turns.dataset.conversation = String(id);
    renderTurns(await source.historyTurns(id), turns);
    byId<HTMLButtonElement>(doc, "history-export").disabled = false;
  };
  const toast = (kind: Parameters<typeof showToast>[1], message: string) =>
    showToast(toasts, kind, message, (k) => {
      if (k === "model") byId(doc, "models-title").scrollIntoView();
      if (k === "storage") byId(doc, "history-title").scrollIntoView();
      if (k === "settings" || k === "microphone" || k === "speaker" || k === "voice")
        byId(doc, "settings-title").scrollIntoView();
    });

  const onEvent = (event: Event) => {
    session = apply(session, event);
    if (event.type === "error_occurred") toast(event.kind, event.message);
    if (event.type === "turn_finished" && event.outcome !== "no_speech") {
      renderWaterfall(session.lastTimings, chart);
      void refreshHistory();
    }
    redraw();
  };
  const onStatus = (s: AppStatus) => {
    status.textContent = statusText(s);
    status.dataset.status = s.type;
    ready = s.type === "ready";
    if (s.type === "failed") toast(s.kind, s.message);
    redraw();
  };

  source.onEvent(onEvent);
  source.onStatus(onStatus);
  conversation.talk.addEventListener("click", () => {
    const listening = session.state === "LISTENING";
    void source.send({ type: listening ? "stop_listening" : "start_listening" });
  });
  conversation.interrupt.addEventListener("click", () => void source.send({ type: "interrupt" }));
  ask.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = askText.value.trim();
    if (!text) return;
    askText.value = "";
    void source.send({ type: "send_text", text });
  });
  search.addEventListener("input", () => void refreshHistory());
  byId(doc, "history-export").addEventListener("click", () => {
    if (openConversation === null) return;
    void source.exportHistory(openConversation).then((markdown) => {
      exported.textContent = markdown;
      exported.hidden = false;
      void navigator.clipboard?.writeText(markdown).catch(() => undefined);
    });
  });

  const settingsForm = byId<HTMLFormElement>(doc, "settings");
  const settingsFields = byId(doc, "settings-fields");
  const settingsNote = byId(doc, "settings-note");
  const loadSettings = async () => {
    try {
      const current = await source.settings();
      renderSettings(current, settingsFields);
      settingsForm.onsubmit = (e) => {
        e.preventDefault();
        settingsNote.textContent = "Saving…";
        source
          .saveSettings(readSettings(settingsFields, current))
          .then(() => {
            settingsNote.textContent = "Saved. The assistant restarts with the new settings.";
            void loadSettings();
          })
          .catch((err: unknown) => {
            settingsNote.textContent = String(err);
          });
      };
    } catch (e) {
      settingsNote.textContent = `Could not read the settings: ${String(e)}`;
    }
  };
  void loadSettings();

  renderWaterfall(null, chart);
  redraw();
  void source.current().then(({ status: s, notices }) => {
    onStatus(s);
    for (const n of notices) onEvent(n);
  });
  void refreshHistory();
  return () => session;
}
