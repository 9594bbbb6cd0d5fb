// The whole window against a fake event source: the real page (index.html), the real
// controller, events pushed by hand.
/// <reference types="vite/client" />
import { beforeEach, describe, expect, it } from "vitest";
import type { AppStatus } from "./bindings/AppStatus";
import type { Conversation } from "./bindings/Conversation";
import type { Event } from "./bindings/Event";
import type { KeyStatus } from "./bindings/KeyStatus";
import type { LocalApiStatus } from "./bindings/LocalApiStatus";
import type { Settings } from "./bindings/Settings";
import type { SettingsChoices } from "./bindings/SettingsChoices";
import type { SetupProgress } from "./bindings/SetupProgress";
import { STATES } from "./bindings/states";
import type { TurnRecord } from "./bindings/TurnRecord";
import type { UiCommand } from "./bindings/UiCommand";
import { SEARCH_PAUSE_MS, startWindow } from "./controller";
import { timings } from "./fixtures";
import type { AssistantSource } from "./source";
import page from "../index.html?raw";

const body = page.slice(page.indexOf("<body>") + 6, page.indexOf("</body>"));

class FakeSource implements AssistantSource {
  sent: UiCommand[] = [];
  conversations: Conversation[] = [];
  records: TurnRecord[] = [];
  private eventHandler: (e: Event) => void = () => undefined;
  private statusHandler: (s: AppStatus) => void = () => undefined;
  private setupHandler: (p: SetupProgress) => void = () => undefined;
  downloads = 0;
  keys = new Map<string, string>();
  constructor(
    private status: AppStatus,
    private notices: Event[] = [],
  ) {}
  onEvent(handler: (e: Event) => void) {
    this.eventHandler = handler;
  }
  onStatus(handler: (s: AppStatus) => void) {
    this.statusHandler = handler;
  }
  current() {
    return Promise.resolve({ status: this.status, notices: this.notices });
  }
  send(command: UiCommand) {
    this.sent.push(command);
    return Promise.resolve();
  }
  searches: string[] = [];
  searchHistory(query: string) {
    this.searches.push(query);
    return Promise.resolve(this.conversations.filter((c) => c.title.includes(query)));
  }
  historyTurns() {
    return Promise.resolve(this.records);
  }
  exportHistory(conversation: number) {
    return Promise.resolve(`# conversation ${conversation}`);
  }
  saved: Settings[] = [];
  stored: Settings = {
    microphone: null,
    speaker: null,
    mode: "push_to_talk",
    hotkey: "Ctrl+Alt+Space",
    stt_model: "whisper-tiny.en",
    llm_model: "smollm2-135m-instruct",
    voice: "piper-en_US-joe-medium",
    speed: 1,
    vad_sensitivity: 0.5,
    echo_cancellation: true,
    voice_barge_in: true,
    persona: "You are a helpful assistant.",
    temperature: 0.2,
    top_p: 0.95,
    max_tokens: 160,
    provider: "local",
    cloud_model: null,
    cloud_base_url: null,
    fallback_to_local: true,
    offline: false,
    overlay: true,
    start_on_login: false,
    turn_logs: false,
    keep_turn_logs: 50,
    max_speech_hands_free_s: 30,
    max_speech_push_to_talk_s: 60,
    max_typed_chars: 2000,
    local_first_token_timeout_s: 60,
    local_token_timeout_s: 10,
    cloud_first_token_timeout_s: 15,
    cloud_token_timeout_s: 20,
    turn_stall_timeout_s: 90,
    api: false,
    api_port: 7377,
    api_screen: "refuse",
  };
  api: LocalApiStatus = { url: null, token: null, problem: null };
  regenerations = 0;
  apiStatus() {
    return Promise.resolve(this.api);
  }
  apiHandler: (s: LocalApiStatus) => void = () => undefined;
  onApiStatus(handler: (s: LocalApiStatus) => void) {
    this.apiHandler = handler;
  }
  regenerateApiToken() {
    this.regenerations += 1;
    this.api = { ...this.api, token: `sotto-new-${this.regenerations}` };
    return Promise.resolve(this.api);
  }
  lists: SettingsChoices = {
    microphones: ["USB Mic", "Built-in"],
    speakers: ["Speakers"],
    stt_models: ["whisper-tiny.en"],
    llm_models: ["smollm2-135m-instruct", "qwen2.5-0.5b-instruct"],
    providers: [
      { id: "local", name: "This computer (local model)", needs_key: false, default_model: "" },
      { id: "openai", name: "OpenAI", needs_key: true, default_model: "gpt-4o-mini" },
    ],
  };
  choices() {
    return Promise.resolve(this.lists);
  }
  keyStatus(provider: string): Promise<KeyStatus> {
    return Promise.resolve(this.keys.has(provider) ? "keychain" : "missing");
  }
  setKey(provider: string, key: string) {
    this.keys.set(provider, key);
    return Promise.resolve();
  }
  deleteKey(provider: string) {
    this.keys.delete(provider);
    return Promise.resolve();
  }
  downloadModels() {
    this.downloads += 1;
    return Promise.resolve();
  }
  onSetupProgress(handler: (p: SetupProgress) => void) {
    this.setupHandler = handler;
  }
  progress(p: SetupProgress) {
    this.setupHandler(p);
  }
  settings() {
    return Promise.resolve(this.stored);
  }
  saveSettings(settings: Settings) {
    if (settings.max_tokens > 4096) return Promise.reject(new Error("`max_tokens` must be between 16 and 4096"));
    this.saved.push(settings);
    this.stored = settings;
    return Promise.resolve();
  }
  emit(...events: Event[]) {
    for (const e of events) this.eventHandler(e);
  }
  setStatus(s: AppStatus) {
    this.statusHandler(s);
  }
}

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => {
  const el = document.querySelector<T>(sel);
  if (!el) throw new Error(`no ${sel}`);
  return el;
};
const settle = () => new Promise((r) => setTimeout(r, 0));
const ready: AppStatus = { type: "ready", answers: "qwen", microphone: "test mic", speaker: "test out" };

describe("the window", () => {
  beforeEach(() => {
    document.body.innerHTML = body;
  });

  it("streams an answer into the drawn turn instead of rebuilding the turns", async () => {
    const source = new FakeSource(ready);
    startWindow(source);
    await settle();
    source.emit(
      { type: "transcript_final", turn_id: 1, text: "Hi." },
      { type: "turn_finished", turn_id: 1, outcome: "answered", user_text: "Hi.", heard_text: "Hello!", provider: "local", timings: timings() },
      { type: "transcript_final", turn_id: 2, text: "Tell me about whales." },
      { type: "llm_text_chunk", turn_id: 2, text: "Whales" },
    );
    const [earlier, current] = document.querySelectorAll<HTMLElement>(".turn");
    const answer = current.querySelector(".answer");
    source.emit(
      { type: "llm_text_chunk", turn_id: 2, text: " are" },
      { type: "llm_text_chunk", turn_id: 2, text: " large mammals." },
    );
    const after = document.querySelectorAll<HTMLElement>(".turn");
    // The same elements, the text grown in place.
    expect(after[0]).toBe(earlier);
    expect(after[1]).toBe(current);
    expect(current.querySelector(".answer")).toBe(answer);
    expect(current.querySelector(".answer")?.textContent).toBe("Whales are large mammals.");
    // The end of the turn redraws it (its source line), and only it.
    source.emit({ type: "turn_finished", turn_id: 2, outcome: "answered", user_text: "Tell me about whales.", heard_text: "Whales are large mammals.", provider: "local", timings: timings() });
    const finished = document.querySelectorAll<HTMLElement>(".turn");
    expect(finished[0]).toBe(earlier);
    expect(finished[1].querySelector(".turn-source")?.textContent).toBe("Answered by the local model");
    // A turn with nothing said leaves, the others stay.
    source.emit(
      { type: "transcript_partial", turn_id: 3, text: "um" },
      { type: "turn_finished", turn_id: 3, outcome: "no_speech", user_text: "", heard_text: "", provider: null, timings: timings() },
    );
    expect(document.querySelectorAll(".turn")).toHaveLength(2);
    expect(document.querySelectorAll(".turn")[0]).toBe(earlier);
  });

  it("waits for the assistant, then talks, streams, charts and interrupts", async () => {
    const source = new FakeSource({ type: "starting", step: "Loading the models" });
    startWindow(source);
    await settle();
    expect($("#status-line").textContent).toBe("Loading the models…");
    expect($<HTMLButtonElement>("#talk").disabled).toBe(true);

    source.setStatus(ready);
    expect($("#status-line").textContent).toBe(
      "Ready. Answers from qwen. Microphone: test mic. Output: test out.",
    );
    expect($<HTMLButtonElement>("#talk").disabled).toBe(false);
    $<HTMLButtonElement>("#talk").click();
    expect(source.sent).toEqual([{ type: "start_listening" }]);

    source.emit(
      { type: "state_changed", state: "LISTENING", turn_id: 1, at_ms: 1 },
      { type: "transcript_partial", turn_id: 1, text: "Tell me about" },
    );
    expect($("#state-label").textContent).toBe("Listening");
    expect($("#orb").dataset.state).toBe("LISTENING");
    expect($(".turn .user.partial").textContent).toBe("Tell me about");
    expect($("#talk").textContent).toBe("Done");
    expect($("#talk").style.getPropertyValue("--listening-colour")).toBe(STATES.LISTENING.colour);
    // Nothing to interrupt while listening.
    expect($<HTMLButtonElement>("#interrupt").disabled).toBe(true);
    $<HTMLButtonElement>("#talk").click();
    expect(source.sent.at(-1)).toEqual({ type: "stop_listening" });

    source.emit({ type: "state_changed", state: "ANALYZING_SPEECH", turn_id: 1, at_ms: 2 });
    expect($("#state-label").textContent).toBe("Analyzing speech");
    // The turn is under way once speech is analyzed: an interrupt cancels it.
    expect($<HTMLButtonElement>("#interrupt").disabled).toBe(false);
    source.emit(
      { type: "transcript_final", turn_id: 1, text: "Tell me about whales." },
      { type: "state_changed", state: "ROUTING_TO_LLM", turn_id: 1, at_ms: 3 },
      { type: "llm_text_chunk", turn_id: 1, text: "Whales are" },
      { type: "llm_text_chunk", turn_id: 1, text: " large mammals." },
      { type: "state_changed", state: "SPEAKING", turn_id: 1, at_ms: 4 },
    );
    expect($(".turn .user").textContent).toBe("Tell me about whales.");
    expect($(".turn .answer").textContent).toBe("Whales are large mammals.");
    expect($<HTMLButtonElement>("#interrupt").disabled).toBe(false);
    $<HTMLButtonElement>("#interrupt").click();
    expect(source.sent.at(-1)).toEqual({ type: "interrupt" });

    source.conversations = [{ id: 7, started_unix_ms: Date.now(), title: "Tell me about whales.", turns: 1 }];
    source.emit(
      {
        type: "turn_finished",
        turn_id: 1,
        outcome: "interrupted",
        user_text: "Tell me about whales.",
        heard_text: "Whales are",
        provider: "local",
        timings: timings(),
      },
      { type: "state_changed", state: "LISTENING", turn_id: 2, at_ms: 5 },
    );
    expect($(".turn").dataset.outcome).toBe("interrupted");
    expect($(".turn .unheard").textContent).toBe(" large mammals.");
    expect($(".turn .turn-source").textContent).toBe("Answered by the local model");
    expect($("#waterfall .v2v").textContent).toBe("Voice to voice: 600 ms");
    expect(document.querySelectorAll("#waterfall .bar-row")).toHaveLength(6);
    await settle();
    expect($("#history-list .conversation-title").textContent).toBe("Tell me about whales.");
  });

  it("strikes through what the voice did not say of an answer cut short", async () => {
    const source = new FakeSource(ready);
    startWindow(source);
    await settle();
    source.emit(
      { type: "state_changed", state: "LISTENING", turn_id: 1, at_ms: 1 },
      { type: "transcript_final", turn_id: 1, text: "Tell me about octopuses." },
      { type: "state_changed", state: "ROUTING_TO_LLM", turn_id: 1, at_ms: 2 },
      { type: "llm_text_chunk", turn_id: 1, text: "Octopuses are clever.\nThey can open jars." },
      { type: "llm_text_chunk", turn_id: 1, text: " They can open jars." },
      {
        type: "turn_finished",
        turn_id: 1,
        outcome: "answered",
        user_text: "Tell me about octopuses.",
        heard_text: "Octopuses are clever. They can open jars.",
        provider: "local",
        timings: timings(),
      },
    );
    expect($(".turn").dataset.outcome).toBe("answered");
    expect($(".turn .answer").textContent).toBe("Octopuses are clever.\nThey can open jars. They can open jars.");
    expect($(".turn .unheard").textContent).toBe(" They can open jars.");
    expect($(".turn .unheard").title).toBe("Not said: the answer was cut short");
  });

  it("strikes through nothing when the whole answer was said", async () => {
    const source = new FakeSource(ready);
    startWindow(source);
    await settle();
    source.emit(
      { type: "transcript_final", turn_id: 1, text: "Hi." },
      { type: "llm_text_chunk", turn_id: 1, text: "Hello!  How can I help?" },
      {
        type: "turn_finished",
        turn_id: 1,
        outcome: "answered",
        user_text: "Hi.",
        heard_text: "Hello! How can I help?",
        provider: "local",
        timings: timings(),
      },
    );
    expect($(".turn .answer").textContent).toBe("Hello!  How can I help?");
    expect(document.querySelector(".turn .unheard")).toBeNull();
  });

  it("shows startup problems as toasts with an action", async () => {
    const source = new FakeSource(ready, [
      { type: "error_occurred", turn_id: null, kind: "microphone", message: "No microphone found." },
    ]);
    startWindow(source);
    await settle();
    const toast = $(".toast");
    expect(toast.dataset.kind).toBe("microphone");
    expect(toast.textContent).toContain("No microphone found.");
    expect($(".toast-action").textContent).toBe("Choose another microphone");
    $<HTMLButtonElement>(".toast-close").click();
    expect(document.querySelector(".toast")).toBeNull();
  });

  it("takes a microphone's toasts away when it works again", async () => {
    const source = new FakeSource(ready, [
      { type: "error_occurred", turn_id: null, kind: "microphone", message: "The microphone stopped working." },
      { type: "error_occurred", turn_id: 3, kind: "llm", message: "OpenAI rejected the API key (401)." },
    ]);
    startWindow(source);
    await settle();
    source.emit({ type: "recovered", kind: "microphone", message: 'The microphone "USB mic" works again.' });
    const left = [...document.querySelectorAll<HTMLElement>(".toast")];
    expect(left.map((t) => t.dataset.kind ?? "notice")).toEqual(["llm", "notice"]);
    expect(left[1].getAttribute("role")).toBe("status");
    expect(left[1].textContent).toContain('The microphone "USB mic" works again.');
  });

  it("takes the user from a toast's action to the control that fixes it", async () => {
    const source = new FakeSource(ready, [
      { type: "error_occurred", turn_id: null, kind: "microphone", message: "No microphone found." },
      { type: "error_occurred", turn_id: 3, kind: "llm", message: "OpenAI rejected the API key (401)." },
    ]);
    startWindow(source);
    await settle();
    const [microphone, llm] = [...document.querySelectorAll<HTMLElement>(".toast")];
    expect(llm.querySelector(".toast-action")?.textContent).toBe("Check who answers");
    microphone.querySelector<HTMLButtonElement>(".toast-action")?.click();
    expect(document.activeElement?.id).toBe("setting-microphone");
    llm.querySelector<HTMLButtonElement>(".toast-action")?.click();
    expect(document.activeElement?.id).toBe("setting-provider");
    expect(document.querySelector(".toast")).toBeNull();
  });

  it("searches history, opens a conversation and exports it", async () => {
    const source = new FakeSource(ready);
    source.conversations = [
      { id: 1, started_unix_ms: 0, title: "whales", turns: 2 },
      { id: 2, started_unix_ms: 0, title: "weather", turns: 1 },
    ];
    source.records = [
      {
        at_unix_ms: 0,
        outcome: "answered",
        user_text: "What is a whale?",
        heard_text: "A sea mammal.",
        answer_text: "A sea mammal.",
        provider: "local",
        timings: timings(),
      },
    ];
    startWindow(source);
    await settle();
    expect(document.querySelectorAll("#history-list .conversation")).toHaveLength(2);
    const search = $<HTMLInputElement>("#history-search");
    for (const typed of ["w", "wh", "wha"]) {
      search.value = typed;
      search.dispatchEvent(new Event("input"));
    }
    await new Promise((r) => setTimeout(r, SEARCH_PAUSE_MS + 50));
    await settle();
    expect(source.searches).toEqual(["", "wha"]);
    expect(document.querySelectorAll("#history-list .conversation")).toHaveLength(1);
    $<HTMLButtonElement>(".conversation-open").click();
    await settle();
    expect($("#history-turns .answer").textContent).toBe("A sea mammal.");
    $<HTMLButtonElement>("#history-export").click();
    await settle();
    expect($("#history-export-text").textContent).toBe("# conversation 1");
  });

  it("sends a typed question", async () => {
    const source = new FakeSource(ready);
    startWindow(source);
    await settle();
    const input = $<HTMLInputElement>("#ask-text");
    input.value = "  What time is it?  ";
    $<HTMLFormElement>("#ask").dispatchEvent(new Event("submit", { cancelable: true }));
    expect(source.sent).toEqual([{ type: "send_text", text: "What time is it?" }]);
    expect(input.value).toBe("");
  });

  it("edits and saves the settings, and shows a refusal", async () => {
    const source = new FakeSource(ready);
    startWindow(source);
    await settle();
    const mode = $<HTMLSelectElement>("#setting-mode");
    expect(mode.value).toBe("push_to_talk");
    mode.value = "hands_free";
    $<HTMLTextAreaElement>("#setting-persona").value = "You are terse.";
    $<HTMLInputElement>("#setting-turn_logs").checked = true;
    const microphones = [...$<HTMLSelectElement>("#setting-microphone").options].map((o) => o.textContent);
    expect(microphones).toEqual(["System default", "USB Mic", "Built-in"]);
    $<HTMLSelectElement>("#setting-microphone").value = "";
    expect($<HTMLInputElement>("#ask-text").maxLength).toBe(2000);
    $<HTMLInputElement>("#setting-max_typed_chars").value = "500";
    $<HTMLInputElement>("#setting-turn_stall_timeout_s").value = "0";
    $<HTMLFormElement>("#settings").dispatchEvent(new Event("submit", { cancelable: true }));
    await settle();
    expect(source.saved).toHaveLength(1);
    expect(source.saved[0]).toMatchObject({
      mode: "hands_free",
      persona: "You are terse.",
      turn_logs: true,
      microphone: null,
      max_tokens: 160,
      max_typed_chars: 500,
      turn_stall_timeout_s: 0,
      local_first_token_timeout_s: 60,
    });
    await settle();
    expect($("#settings-note").textContent).toContain("Saved");
    // The question box stops where the assistant would cut.
    expect($<HTMLInputElement>("#ask-text").maxLength).toBe(500);

    $<HTMLInputElement>("#setting-max_tokens").value = "99999";
    $<HTMLFormElement>("#settings").dispatchEvent(new Event("submit", { cancelable: true }));
    await settle();
    expect(source.saved).toHaveLength(1);
    expect($("#settings-note").textContent).toContain("max_tokens");
  });

  it("offers the API key field for a cloud provider and never shows the key", async () => {
    const source = new FakeSource(ready);
    startWindow(source);
    await settle();
    expect($("#api-key").hidden).toBe(true);
    const provider = $<HTMLSelectElement>("#setting-provider");
    provider.value = "openai";
    provider.dispatchEvent(new Event("change", { bubbles: true }));
    await settle();
    expect($("#api-key").hidden).toBe(false);
    expect($("#api-key-provider").textContent).toBe("OpenAI");
    expect($("#api-key-status").textContent).toContain("No key yet");
    $<HTMLInputElement>("#api-key-input").value = "sk-test-123";
    $<HTMLButtonElement>("#api-key-save").click();
    await settle();
    await settle();
    expect(source.keys.get("openai")).toBe("sk-test-123");
    expect($<HTMLInputElement>("#api-key-input").value).toBe("");
    expect($("#api-key-status").textContent).toContain("stored in the system keychain");
    expect(document.body.innerHTML).not.toContain("sk-test-123");
  });

  it("shows the local API's address and token, and makes a new token on request", async () => {
    const source = new FakeSource(ready);
    startWindow(source);
    await settle();
    expect($("#local-api-status").textContent).toContain("Off");
    expect($<HTMLInputElement>("#local-api-token").value).toBe("");
    expect($<HTMLButtonElement>("#local-api-regenerate").disabled).toBe(true);
    // Switched on and saved: the app serves it and says where.
    source.api = { url: "http://127.0.0.1:7377", token: "sotto-first", problem: null };
    $<HTMLInputElement>("#setting-api").checked = true;
    $<HTMLFormElement>("#settings").dispatchEvent(new Event("submit", { cancelable: true }));
    await settle();
    await settle();
    expect(source.saved.at(-1)).toMatchObject({ api: true, api_port: 7377, api_screen: "refuse" });
    expect($("#local-api-status").textContent).toContain("http://127.0.0.1:7377");
    expect($<HTMLInputElement>("#local-api-token").value).toBe("sotto-first");
    // Hidden until asked for.
    expect($<HTMLInputElement>("#local-api-token").type).toBe("password");
    $<HTMLButtonElement>("#local-api-show").click();
    expect($<HTMLInputElement>("#local-api-token").type).toBe("text");
    $<HTMLButtonElement>("#local-api-regenerate").click();
    await settle();
    expect(source.regenerations).toBe(1);
    expect($<HTMLInputElement>("#local-api-token").value).toBe("sotto-new-1");
    expect($("#local-api-status").textContent).toContain("old token no longer works");
    // A restart the app reports later (a problem: the port taken) is shown as it comes.
    source.apiHandler({ url: null, token: null, problem: "Cannot listen on 127.0.0.1:7377" });
    expect($("#local-api-status").textContent).toContain("Cannot listen");
    expect($<HTMLInputElement>("#local-api-token").value).toBe("");
  });

  it("shows the first-run screen, downloads with progress, then gets out of the way", async () => {
    const source = new FakeSource({
      type: "setup_needed",
      missing: ["whisper-tiny.en", "silero-vad-v6"],
      bytes: 78_000_000,
      problem: null,
    });
    startWindow(source);
    await settle();
    expect($("#setup").hidden).toBe(false);
    expect($("#setup-text").textContent).toContain("2 models, 78 MB");
    expect(document.querySelectorAll("#setup-models li")).toHaveLength(2);
    $<HTMLButtonElement>("#setup-download").click();
    expect(source.downloads).toBe(1);
    source.setStatus({ type: "downloading" });
    expect($<HTMLButtonElement>("#setup-download").disabled).toBe(true);
    source.progress({ model: "whisper-tiny.en", models_done: 0, models_total: 2, bytes_done: 39_000_000, bytes_total: 78_000_000 });
    expect($<HTMLProgressElement>("#setup-progress").value).toBe(39_000_000);
    expect($("#setup-detail").textContent).toBe("Downloading whisper-tiny.en (1 of 2): 39 MB of 78 MB");
    source.setStatus({ type: "setup_needed", missing: ["silero-vad-v6"], bytes: 2_300_000, problem: "Could not download silero-vad-v6: disk full" });
    expect($("#setup-download").textContent).toBe("Try again");
    expect($("#setup-detail").textContent).toContain("disk full");
    source.setStatus(ready);
    expect($("#setup").hidden).toBe(true);
  });
});
