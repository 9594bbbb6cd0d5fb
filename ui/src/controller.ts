// The window's behaviour: events from the source redraw the views; buttons send
// commands. Everything goes through an `AssistantSource`, so tests drive it with a fake.
import type { AppStatus } from "./bindings/AppStatus";
import type { Event } from "./bindings/Event";
import { renderConversation, type ConversationElements } from "./conversation-view";
import { renderHistory, renderTurns } from "./history-view";
import { answererName, apply, initialSession, type Session } from "./session";
import type { SettingsChoices } from "./bindings/SettingsChoices";
import type { KeyStatus } from "./bindings/KeyStatus";
import type { LocalApiStatus } from "./bindings/LocalApiStatus";
import { readSettings, renderSettings } from "./settings-view";
import { renderSetup, renderSetupProgress, type SetupElements } from "./setup-view";
import type { AssistantSource } from "./source";
import { clearToasts, goTo, showNotice, showToast } from "./toasts";
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
      return `Ready. Answers from ${answererName(status.answers)}. Microphone: ${status.microphone}. Output: ${status.speaker}.`;
    case "setup_needed":
      return status.problem
        ? `The download stopped: ${status.problem}`
        : `Sotto needs its models before it can listen (${status.missing.length} to download).`;
    case "downloading":
      return "Downloading the models…";
    case "failed":
      return status.message;
  }
}

/** How long typing in the history search must pause before it searches. */
export const SEARCH_PAUSE_MS = 150;

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
  // Answers to searches can come back out of order: only the latest one is drawn.
  let latestSearch = 0;
  const refreshHistory = async () => {
    const mine = ++latestSearch;
    try {
      const found = await source.searchHistory(search.value);
      if (mine !== latestSearch) return;
      renderHistory(found, list, (c) => void openHistory(c.id));
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
    showToast(toasts, kind, message, (action) => goTo(doc, action));

  const onEvent = (event: Event) => {
    session = apply(session, event);
    if (event.type === "error_occurred") toast(event.kind, event.message);
    if (event.type === "recovered") {
      clearToasts(toasts, event.kind);
      showNotice(toasts, event.message);
    }
    if (event.type === "turn_finished" && event.outcome !== "no_speech") {
      renderWaterfall(session.lastTimings, chart);
      void refreshHistory();
    }
    redraw();
  };
  const setup: SetupElements = {
    section: byId(doc, "setup"),
    text: byId(doc, "setup-text"),
    models: byId(doc, "setup-models"),
    download: byId<HTMLButtonElement>(doc, "setup-download"),
    progress: byId<HTMLProgressElement>(doc, "setup-progress"),
    detail: byId(doc, "setup-detail"),
  };
  const onStatus = (s: AppStatus) => {
    status.textContent = statusText(s);
    status.dataset.status = s.type;
    const wasReady = ready;
    ready = s.type === "ready";
    if (s.type === "failed") toast(s.kind, s.message);
    renderSetup(s, setup);
    // Models just arrived (or the assistant restarted): the lists may have changed.
    if (ready && !wasReady) void loadSettings();
    redraw();
  };
  source.onSetupProgress((p) => renderSetupProgress(p, setup));
  setup.download.addEventListener("click", () => {
    setup.download.disabled = true;
    void source.downloadModels();
  });

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
  // One search when typing pauses, not one per key (each reads the stored turns).
  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void refreshHistory(), SEARCH_PAUSE_MS);
  });
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
  const keyRow = byId(doc, "api-key");
  const keyInput = byId<HTMLInputElement>(doc, "api-key-input");
  const keyNote = byId(doc, "api-key-status");
  let choices: SettingsChoices | null = null;
  const keyWords: Record<KeyStatus, string> = {
    not_needed: "This provider needs no key.",
    keychain: "A key is stored in the system keychain.",
    environment: "Using the key from the provider's environment variable; save one here to keep it in the keychain.",
    missing: "No key yet: paste one and save it. It is kept in the system keychain, never in a file.",
  };
  const selectedProvider = () => settingsFields.querySelector<HTMLSelectElement>('[name="provider"]')?.value ?? "local";
  const showKeyRow = async () => {
    const provider = selectedProvider();
    const info = choices?.providers.find((p) => p.id === provider);
    keyRow.hidden = !info?.needs_key;
    if (keyRow.hidden) return;
    byId(doc, "api-key-provider").textContent = info?.name ?? provider;
    try {
      keyNote.textContent = keyWords[await source.keyStatus(provider)];
    } catch (e) {
      keyNote.textContent = String(e);
    }
  };
  const keyAction = (action: () => Promise<void>) => {
    action()
      .then(() => {
        keyInput.value = "";
        return showKeyRow();
      })
      .catch((e: unknown) => {
        keyNote.textContent = String(e);
      });
  };
  byId(doc, "api-key-save").addEventListener("click", () =>
    keyAction(() => source.setKey(selectedProvider(), keyInput.value)),
  );
  byId(doc, "api-key-delete").addEventListener("click", () => keyAction(() => source.deleteKey(selectedProvider())));
  settingsFields.addEventListener("change", (e) => {
    if ((e.target as HTMLElement | null)?.getAttribute("name") === "provider") void showKeyRow();
  });
  const apiToken = byId<HTMLInputElement>(doc, "local-api-token");
  const apiNote = byId(doc, "local-api-status");
  const apiRegenerate = byId<HTMLButtonElement>(doc, "local-api-regenerate");
  const apiShow = byId<HTMLButtonElement>(doc, "local-api-show");
  // The token last shown (a different one means it was replaced), and the replacement.
  let shownToken: string | null = null;
  let newToken: string | null = null;
  const showApi = (api: LocalApiStatus) => {
    if (shownToken !== null && api.token !== null && api.token !== shownToken) newToken = api.token;
    if (api.token !== null) shownToken = api.token;
    const replaced = api.token !== null && api.token === newToken;
    apiToken.value = api.token ?? "";
    apiRegenerate.disabled = api.token === null;
    apiShow.disabled = api.token === null;
    if (api.url) {
      const old = replaced ? " A new token: the old token no longer works." : "";
      apiNote.textContent = `Listening at ${api.url} (docs/API.md says how to use it).${old}`;
    } else if (api.problem) {
      apiNote.textContent = `Not running: ${api.problem}.`;
    } else {
      apiNote.textContent = "Off: other programs cannot use Sotto. Tick the box above and save to let them.";
    }
  };
  const refreshApi = () =>
    source
      .apiStatus()
      .then((api) => showApi(api))
      .catch((e: unknown) => {
        apiNote.textContent = String(e);
      });
  source.onApiStatus((api) => showApi(api));
  apiShow.addEventListener("click", () => {
    const hidden = apiToken.type === "password";
    apiToken.type = hidden ? "text" : "password";
    apiShow.textContent = hidden ? "Hide" : "Show";
  });
  apiRegenerate.addEventListener("click", () => {
    source
      .regenerateApiToken()
      .then((api) => showApi(api))
      .catch((e: unknown) => {
        apiNote.textContent = String(e);
      });
  });
  /** Fills the form from the settings as saved; false if they could not be read. */
  const loadSettings = async (): Promise<boolean> => {
    try {
      const current = await source.settings();
      // The question box stops where the assistant would cut the question.
      askText.maxLength = current.max_typed_chars;
      choices = await source.choices().catch(() => null);
      renderSettings(current, settingsFields, choices);
      void showKeyRow();
      void refreshApi();
      settingsForm.onsubmit = (e) => {
        e.preventDefault();
        settingsNote.textContent = "Saving…";
        source
          .saveSettings(readSettings(settingsFields, current))
          // "Saved." once the form shows what was saved.
          .then(() => loadSettings())
          .then((shown) => {
            if (shown) settingsNote.textContent = "Saved.";
          })
          .catch((err: unknown) => {
            settingsNote.textContent = String(err);
          });
      };
      return true;
    } catch (e) {
      settingsNote.textContent = `Could not read the settings: ${String(e)}`;
      return false;
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
