// The first-run screen: which models are missing, a download button, and the download's
// progress. Shown while the app's status is `setup_needed` or `downloading`.
import type { AppStatus } from "./bindings/AppStatus";
import type { SetupProgress } from "./bindings/SetupProgress";

export type SetupElements = {
  section: HTMLElement;
  text: HTMLElement;
  models: HTMLElement;
  download: HTMLButtonElement;
  progress: HTMLProgressElement;
  detail: HTMLElement;
};

/** Bytes as a person reads them ("82 MB"). */
export function megabytes(bytes: number): string {
  const mb = bytes / 1_000_000;
  return mb >= 10 ? `${Math.round(mb)} MB` : `${mb.toFixed(1)} MB`;
}

/** Shows or hides the screen for `status`. */
export function renderSetup(status: AppStatus, els: SetupElements): void {
  const needed = status.type === "setup_needed";
  const downloading = status.type === "downloading";
  els.section.hidden = !needed && !downloading;
  if (needed) {
    const n = status.missing.length;
    els.text.textContent =
      `Sotto listens, thinks and speaks on this computer, so it needs its models first: ` +
      `${n} ${n === 1 ? "model" : "models"}, ${megabytes(status.bytes)}. ` +
      `They are downloaded once and checked before use.`;
    els.models.replaceChildren(
      ...status.missing.map((id) => {
        const li = document.createElement("li");
        li.textContent = id;
        return li;
      }),
    );
    els.download.disabled = false;
    els.download.textContent = status.problem ? "Try again" : "Download the models";
    els.progress.hidden = true;
    els.detail.textContent = status.problem ?? "";
    els.detail.classList.toggle("problem", status.problem !== null);
  }
  if (downloading) {
    els.download.disabled = true;
    els.progress.hidden = false;
    els.detail.classList.remove("problem");
  }
}

/** Moves the progress bar and says what is being fetched. */
export function renderSetupProgress(p: SetupProgress, els: SetupElements): void {
  els.progress.hidden = false;
  els.progress.max = Math.max(p.bytes_total, 1);
  els.progress.value = Math.min(p.bytes_done, p.bytes_total);
  const current = Math.min(p.models_done + 1, p.models_total);
  els.detail.textContent =
    p.models_done === p.models_total
      ? "The models are installed. Starting…"
      : `Downloading ${p.model} (${current} of ${p.models_total}): ` +
        `${megabytes(p.bytes_done)} of ${megabytes(p.bytes_total)}`;
}
