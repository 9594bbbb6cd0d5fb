// The settings panel: a form over the `Settings` the app keeps, saved as a whole.
import type { Settings } from "./bindings/Settings";
import type { SettingsChoices } from "./bindings/SettingsChoices";
import type { ListenMode } from "./bindings/ListenMode";

type Field = {
  key: keyof Settings;
  label: string;
  kind: "text" | "number" | "checkbox" | "select" | "textarea";
  options?: [string, string][];
  /** For a select: its options come from the app's lists. */
  choices?: (c: SettingsChoices) => [string, string][];
  min?: number;
  max?: number;
  step?: number;
};

const modes: [ListenMode, string][] = [
  ["push_to_talk", "Push-to-talk (hold the hotkey)"],
  ["toggle", "Toggle (press to start, press to stop)"],
  ["hands_free", "Hands-free (just talk)"],
];

const SYSTEM_DEFAULT = "";
const devices = (names: string[]): [string, string][] => [
  [SYSTEM_DEFAULT, "System default"],
  ...names.map((n): [string, string] => [n, n]),
];
const same = (ids: string[]): [string, string][] => ids.map((id) => [id, id]);

/** Settings that may be unset (`null`); an empty input means unset. */
const OPTIONAL: (keyof Settings)[] = ["microphone", "speaker", "cloud_model", "cloud_base_url"];

/** The fields, in the order they are shown. */
export const FIELDS: Field[] = [
  { key: "mode", label: "Mode", kind: "select", options: modes },
  { key: "hotkey", label: "Hotkey", kind: "text" },
  { key: "microphone", label: "Microphone", kind: "select", choices: (c) => devices(c.microphones) },
  { key: "speaker", label: "Output", kind: "select", choices: (c) => devices(c.speakers) },
  { key: "vad_sensitivity", label: "Hands-free sensitivity (0 to 1)", kind: "number", min: 0, max: 1, step: 0.05 },
  { key: "echo_cancellation", label: "Echo cancellation (for speakers: Sotto does not hear itself)", kind: "checkbox" },
  { key: "voice_barge_in", label: "Hands-free: talking over an answer interrupts it", kind: "checkbox" },
  { key: "voice", label: "Voice", kind: "text" },
  { key: "speed", label: "Speaking rate", kind: "number", min: 0.5, max: 2, step: 0.05 },
  { key: "stt_model", label: "Speech model", kind: "select", choices: (c) => same(c.stt_models) },
  { key: "llm_model", label: "Local language model", kind: "select", choices: (c) => same(c.llm_models) },
  {
    key: "provider",
    label: "Who answers",
    kind: "select",
    choices: (c) => c.providers.map((p): [string, string] => [p.id, p.name]),
  },
  { key: "cloud_model", label: "Cloud model (empty: the provider's default)", kind: "text" },
  { key: "cloud_base_url", label: "Cloud address (empty: the provider's own)", kind: "text" },
  { key: "fallback_to_local", label: "Answer locally when the cloud fails or is slow", kind: "checkbox" },
  { key: "offline", label: "Offline: never use a cloud provider", kind: "checkbox" },
  { key: "persona", label: "Persona", kind: "textarea" },
  { key: "temperature", label: "Temperature", kind: "number", min: 0, max: 2, step: 0.05 },
  { key: "top_p", label: "Top p", kind: "number", min: 0.01, max: 1, step: 0.01 },
  { key: "max_tokens", label: "Longest answer (tokens)", kind: "number", min: 16, max: 4096, step: 1 },
  { key: "overlay", label: "Show the overlay (always on top)", kind: "checkbox" },
  { key: "start_on_login", label: "Start Sotto when I log in", kind: "checkbox" },
  { key: "turn_logs", label: "Record each turn (audio and transcript)", kind: "checkbox" },
  { key: "keep_turn_logs", label: "Turn logs to keep", kind: "number", min: 1, max: 10000, step: 1 },
  {
    key: "max_speech_push_to_talk_s",
    label: "Longest push-to-talk question (seconds)",
    kind: "number",
    min: 5,
    max: 600,
    step: 1,
  },
  { key: "max_speech_hands_free_s", label: "Longest hands-free question (seconds)", kind: "number", min: 5, max: 600, step: 1 },
  { key: "max_typed_chars", label: "Longest typed question (characters)", kind: "number", min: 100, max: 100000, step: 1 },
  {
    key: "local_first_token_timeout_s",
    label: "Local model: longest wait for the first word (seconds)",
    kind: "number",
    min: 5,
    max: 600,
    step: 1,
  },
  {
    key: "local_token_timeout_s",
    label: "Local model: longest pause between words (seconds)",
    kind: "number",
    min: 1,
    max: 120,
    step: 1,
  },
  {
    key: "cloud_first_token_timeout_s",
    label: "Cloud: longest wait for the answer to start (seconds)",
    kind: "number",
    min: 2,
    max: 120,
    step: 1,
  },
  {
    key: "cloud_token_timeout_s",
    label: "Cloud: longest pause in an answer (seconds)",
    kind: "number",
    min: 2,
    max: 120,
    step: 1,
  },
  {
    key: "turn_stall_timeout_s",
    label: "Stop a turn stuck this long (seconds, 0: never)",
    kind: "number",
    min: 0,
    max: 900,
    step: 1,
  },
  { key: "api", label: "Let other programs on this computer use Sotto (the local API)", kind: "checkbox" },
  { key: "api_port", label: "Local API port (0: any free one)", kind: "number", min: 0, max: 65535, step: 1 },
  {
    key: "api_screen",
    label: "Text from other programs that tries to override the persona",
    kind: "select",
    options: [
      ["refuse", "Refuse it"],
      ["warn", "Let it through with a warning"],
    ],
  },
];

/** A select's options: the app's list, plus the current value if the list lacks it. */
function optionsFor(f: Field, value: string, choices: SettingsChoices | null): [string, string][] {
  const listed = f.options ?? (choices && f.choices ? f.choices(choices) : []);
  if (listed.some(([v]) => v === value)) return listed;
  const missing: [string, string] = [value, value === SYSTEM_DEFAULT ? "System default" : `${value} (not found)`];
  return [missing, ...listed];
}

/** Builds the form's inputs into `root`, filled from `settings`; selects list `choices`. */
export function renderSettings(settings: Settings, root: HTMLElement, choices: SettingsChoices | null = null): void {
  root.replaceChildren(
    ...FIELDS.map((f) => {
      const row = document.createElement("label");
      row.className = `setting setting-${f.kind}`;
      const name = document.createElement("span");
      name.textContent = f.label;
      let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
      const value = settings[f.key];
      if (f.kind === "select") {
        const select = document.createElement("select");
        for (const [v, text] of optionsFor(f, String(value ?? ""), choices)) {
          const option = document.createElement("option");
          option.value = v;
          option.textContent = text;
          select.append(option);
        }
        select.value = String(value ?? "");
        input = select;
      } else if (f.kind === "textarea") {
        const area = document.createElement("textarea");
        area.rows = 2;
        area.value = String(value ?? "");
        input = area;
      } else {
        const box = document.createElement("input");
        box.type = f.kind;
        if (f.kind === "checkbox") box.checked = Boolean(value);
        else box.value = value === null ? "" : String(value);
        if (f.min !== undefined) box.min = String(f.min);
        if (f.max !== undefined) box.max = String(f.max);
        if (f.step !== undefined) box.step = String(f.step);
        input = box;
      }
      input.name = f.key;
      input.id = `setting-${f.key}`;
      row.append(name, input);
      return row;
    }),
  );
}

/** Reads the form back into settings (starting from `base` for anything not shown). */
export function readSettings(root: HTMLElement, base: Settings): Settings {
  const out: Record<string, unknown> = { ...base };
  for (const f of FIELDS) {
    const input = root.querySelector<HTMLInputElement>(`[name="${f.key}"]`);
    if (!input) continue;
    if (f.kind === "checkbox") out[f.key] = input.checked;
    else if (f.kind === "number") out[f.key] = Number(input.value);
    else if (OPTIONAL.includes(f.key)) out[f.key] = input.value.trim() || null;
    else out[f.key] = input.value;
  }
  return out as unknown as Settings;
}
