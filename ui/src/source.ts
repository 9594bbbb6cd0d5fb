// Where the window's data comes from: the app (through Tauri) or, in tests, a fake.
import type { AppStatus } from "./bindings/AppStatus";
import type { Conversation } from "./bindings/Conversation";
import type { Event } from "./bindings/Event";
import type { KeyStatus } from "./bindings/KeyStatus";
import type { LocalApiStatus } from "./bindings/LocalApiStatus";
import type { Settings } from "./bindings/Settings";
import type { SettingsChoices } from "./bindings/SettingsChoices";
import type { SetupProgress } from "./bindings/SetupProgress";
import type { TurnRecord } from "./bindings/TurnRecord";
import type { UiCommand } from "./bindings/UiCommand";

/** Everything the window asks of the app or hears from it. */
export interface AssistantSource {
  /** Calls `handler` with every assistant event from now on. */
  onEvent(handler: (event: Event) => void): void;
  /** Calls `handler` with every status change from now on. */
  onStatus(handler: (status: AppStatus) => void): void;
  /** The status now, and problems reported before the window was listening. */
  current(): Promise<{ status: AppStatus; notices: Event[] }>;
  send(command: UiCommand): Promise<void>;
  searchHistory(query: string): Promise<Conversation[]>;
  historyTurns(conversation: number): Promise<TurnRecord[]>;
  exportHistory(conversation: number): Promise<string>;
  settings(): Promise<Settings>;
  /** Saves and applies; rejects with a message when a value is refused. */
  saveSettings(settings: Settings): Promise<void>;
  /** Devices, installed models and providers to pick from. */
  choices(): Promise<SettingsChoices>;
  /** Where a provider's API key is (never the key itself). */
  keyStatus(provider: string): Promise<KeyStatus>;
  /** Stores a provider's key in the system keychain. */
  setKey(provider: string, key: string): Promise<void>;
  /** Removes a provider's key from the keychain. */
  deleteKey(provider: string): Promise<void>;
  /** The local API: where it listens and its token, or why it does not run. */
  apiStatus(): Promise<LocalApiStatus>;
  /** Replaces the local API's token (the old one stops working); the status after. */
  regenerateApiToken(): Promise<LocalApiStatus>;
  /** Calls `handler` with every change of the local API's status (it starts, stops or
   * restarts after a save). */
  onApiStatus(handler: (status: LocalApiStatus) => void): void;
  /** First run: downloads the missing models; progress comes to `onSetupProgress`. */
  downloadModels(): Promise<void>;
  /** Calls `handler` with the first-run download's progress. */
  onSetupProgress(handler: (progress: SetupProgress) => void): void;
}
