// The app's real data, through Tauri commands and events.
import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { AppStatus } from "./bindings/AppStatus";
import type { Conversation } from "./bindings/Conversation";
import type { Event } from "./bindings/Event";
import type { KeyStatus } from "./bindings/KeyStatus";
import type { LocalApiStatus } from "./bindings/LocalApiStatus";
import type { Settings } from "./bindings/Settings";
import type { SettingsChoices } from "./bindings/SettingsChoices";
import type { SetupProgress } from "./bindings/SetupProgress";
import type { TurnRecord } from "./bindings/TurnRecord";
import type { AssistantSource } from "./source";

// The event names the app emits on (src-tauri/src/protocol.rs).
const EVENT = "sotto://event";
const STATUS = "sotto://status";
const SETUP = "sotto://setup";
const API = "sotto://api";

export const tauriSource: AssistantSource = {
  onEvent(handler) {
    void listen<Event>(EVENT, (e) => handler(e.payload));
  },
  onStatus(handler) {
    void listen<AppStatus>(STATUS, (e) => handler(e.payload));
  },
  async current() {
    const [status, notices] = await Promise.all([
      invoke<AppStatus>("app_status"),
      invoke<Event[]>("startup_notices"),
    ]);
    return { status, notices };
  },
  send: (command) => invoke("command", { command }),
  searchHistory: (query) => invoke<Conversation[]>("history_search", { query }),
  historyTurns: (conversation) => invoke<TurnRecord[]>("history_turns", { conversation }),
  exportHistory: (conversation) => invoke<string>("history_export", { conversation }),
  settings: () => invoke<Settings>("settings_get"),
  saveSettings: (settings) => invoke("settings_set", { settings }),
  choices: () => invoke<SettingsChoices>("settings_choices"),
  keyStatus: (provider) => invoke<KeyStatus>("api_key_status", { provider }),
  setKey: (provider, key) => invoke("api_key_set", { provider, key }),
  deleteKey: (provider) => invoke("api_key_delete", { provider }),
  apiStatus: () => invoke<LocalApiStatus>("api_status"),
  regenerateApiToken: () => invoke<LocalApiStatus>("api_token_regenerate"),
  onApiStatus(handler) {
    void listen<LocalApiStatus>(API, (e) => handler(e.payload));
  },
  downloadModels: () => invoke("setup_download"),
  onSetupProgress(handler) {
    void listen<SetupProgress>(SETUP, (e) => handler(e.payload));
  },
};
