// Error toasts: the message the app gave, and one action that helps.
import type { ErrorKind } from "./bindings/ErrorKind";

/** The action offered for each kind of failure. */
export const actionFor: Record<ErrorKind, string> = {
  microphone: "Choose another microphone",
  speaker: "Choose another output",
  speech_to_text: "Check the speech model",
  llm: "Check the language model",
  voice: "Choose another voice",
  model: "Open models",
  storage: "Show history folder",
  settings: "Open settings",
};

/** Shows a toast in `root`; it goes when dismissed or after `lifetimeMs`. */
export function showToast(
  root: HTMLElement,
  kind: ErrorKind,
  message: string,
  onAction: (kind: ErrorKind) => void,
  lifetimeMs = 15000,
): HTMLElement {
  const toast = document.createElement("div");
  toast.className = "toast";
  toast.setAttribute("role", "alert");
  toast.dataset.kind = kind;
  const text = document.createElement("p");
  text.textContent = message;
  const action = document.createElement("button");
  action.className = "toast-action";
  action.textContent = actionFor[kind];
  action.addEventListener("click", () => {
    onAction(kind);
    toast.remove();
  });
  const close = document.createElement("button");
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => toast.remove());
  toast.append(text, action, close);
  root.append(toast);
  setTimeout(() => toast.remove(), lifetimeMs);
  return toast;
}
