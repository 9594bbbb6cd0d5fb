// Renders the models panel from the app's typed model status.
import type { ModelStatus } from "./bindings/ModelStatus";

/** Formats a byte count the way the CLI does ("98.4 MB"). */
export function humanBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit + 1 < units.length) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** One line that says whether the assistant has what it needs. */
export function summarize(models: ModelStatus[]): { text: string; problem: boolean } {
  const needed = models.filter((m) => m.default);
  const notReady = needed.filter((m) => m.state !== "installed");
  if (notReady.length === 0) {
    return { text: `All ${needed.length} default models are installed and verified.`, problem: false };
  }
  const names = notReady.map((m) => m.id).join(", ");
  return {
    text: `${notReady.length} of ${needed.length} default models need attention (${names}). Run \`sotto models fetch\` to install or repair them.`,
    problem: true,
  };
}

/** What the right-hand column says about a model. */
export function stateText(m: ModelStatus): string {
  switch (m.state) {
    case "installed":
      return humanBytes(m.disk_bytes);
    case "missing":
      return m.default ? "missing" : "not installed";
    case "damaged":
      return "damaged";
  }
}

/** Fills `list` with one row per model and `summary` with the overall state. */
export function renderModels(models: ModelStatus[], list: HTMLElement, summary: HTMLElement): void {
  const { text, problem } = summarize(models);
  summary.textContent = text;
  summary.classList.toggle("problem", problem);
  list.replaceChildren(
    ...models.map((m) => {
      const row = document.createElement("li");
      row.className = "model";
      row.dataset.state = m.state;
      row.dataset.id = m.id;
      // An optional model that is simply not installed is no problem to flag.
      row.dataset.optional = String(!m.default);
      const dot = document.createElement("span");
      dot.className = "dot";
      const title = document.createElement("span");
      title.className = "title";
      title.textContent = m.title;
      const detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = m.detail ?? `${m.id} · ${m.kind}${m.default ? " · default" : ""}`;
      title.append(detail);
      const size = document.createElement("span");
      size.className = "size";
      size.textContent = stateText(m);
      row.append(dot, title, size);
      return row;
    }),
  );
}
