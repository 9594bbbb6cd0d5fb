// The settings panel: a form over the `Settings` the app keeps, saved as a whole.
import type { Settings } from "./bindings/Settings";
import type { TalkMode } from "./bindings/TalkMode";

type Field = {
  key: keyof Settings;
  label: string;
  kind: "text" | "number" | "checkbox" | "select" | "textarea";
  options?: [string, string][];
  min?: number;
  max?: number;
  step?: number;
};

const modes: [TalkMode, string][] = [
  ["push_to_talk", "Push-to-talk (hold the hotkey)"],
  ["toggle", "Toggle (press to start, press to stop)"],
  ["hands_free", "Hands-free (just talk)"],
];

/** The fields, in the order they are shown. */
export const FIELDS: Field[] = [
  { key: "mode", label: "Mode", kind: "select", options: modes },
  { key: "hotkey", label: "Hotkey", kind: "text" },
  { key: "microphone", label: "Microphone (empty: system default)", kind: "text" },
  { key: "speaker", label: "Output (empty: system default)", kind: "text" },
  { key: "voice", label: "Voice", kind: "text" },
  { key: "speed", label: "Speaking rate", kind: "number", min: 0.5, max: 2, step: 0.05 },
  { key: "llm_model", label: "Language model", kind: "text" },
  { key: "persona", label: "Persona", kind: "textarea" },
  { key: "temperature", label: "Temperature", kind: "number", min: 0, max: 2, step: 0.05 },
  { key: "top_p", label: "Top p", kind: "number", min: 0.01, max: 1, step: 0.01 },
  { key: "max_tokens", label: "Longest answer (tokens)", kind: "number", min: 16, max: 4096, step: 1 },
  { key: "offline", label: "Offline: never use a cloud provider", kind: "checkbox" },
  { key: "turn_logs", label: "Record each turn (audio and transcript)", kind: "checkbox" },
  { key: "keep_turn_logs", label: "Turn logs to keep", kind: "number", min: 1, max: 10000, step: 1 },
];

/** Builds the form's inputs into `root`, filled from `settings`. */
export function renderSettings(settings: Settings, root: HTMLElement): void {
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
        for (const [v, text] of f.options ?? []) {
          const option = document.createElement("option");
          option.value = v;
          option.textContent = text;
          select.append(option);
        }
        select.value = String(value);
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
    else if (f.key === "microphone" || f.key === "speaker") out[f.key] = input.value.trim() || null;
    else out[f.key] = input.value;
  }
  return out as unknown as Settings;
}
