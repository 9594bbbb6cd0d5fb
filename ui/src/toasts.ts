// Error toasts: the message the app gave, and one action that takes the user to the fix.
import type { ErrorKind } from "./bindings/ErrorKind";

/** What a toast offers for one kind of failure: a label, and the id of the element it
 * brings into view (and focuses, when it is a control). */
export type ToastAction = { label: string; target: string };

/** The action offered for each kind of failure. */
export const actionFor: Record<ErrorKind, ToastAction> = {
  microphone: { label: "Choose another microphone", target: "setting-microphone" },
  speaker: { label: "Choose another output", target: "setting-speaker" },
  speech_to_text: { label: "Choose another speech model", target: "setting-stt_model" },
  llm: { label: "Check who answers", target: "setting-provider" },
  voice: { label: "Choose another voice", target: "setting-voice" },
  model: { label: "Open models", target: "models-title" },
  storage: { label: "Show history", target: "history-title" },
  settings: { label: "Open settings", target: "settings-title" },
  limit: { label: "Edit the question", target: "ask-text" },
  assistant: { label: "Open settings", target: "settings-title" },
};

/** Brings the action's target into view in `doc`, and focuses it when it takes input. */
export function goTo(doc: Document, action: ToastAction): void {
  const target = doc.getElementById(action.target);
  if (!target) return;
  target.scrollIntoView?.({ block: "center" });
  if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement) target.focus();
}

/** Takes away the toasts about `kind`: the failure went away by itself. */
export function clearToasts(root: HTMLElement, kind: ErrorKind): void {
  for (const toast of root.querySelectorAll<HTMLElement>(".toast")) {
    if (toast.dataset.kind === kind) toast.remove();
  }
}

/** Shows good news in `root` (a microphone back): no action, gone after `lifetimeMs`. */
export function showNotice(root: HTMLElement, message: string, lifetimeMs = 6000): HTMLElement {
  const notice = document.createElement("div");
  notice.className = "toast toast-ok";
  notice.setAttribute("role", "status");
  const text = document.createElement("p");
  text.textContent = message;
  const close = document.createElement("button");
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => notice.remove());
  notice.append(text, close);
  root.append(notice);
  setTimeout(() => notice.remove(), lifetimeMs);
  return notice;
}

/** Shows a toast in `root`; it goes when dismissed, acted on, or after `lifetimeMs`. */
export function showToast(
  root: HTMLElement,
  kind: ErrorKind,
  message: string,
  onAction: (action: ToastAction) => void,
  lifetimeMs = 15000,
): HTMLElement {
  const toast = document.createElement("div");
  toast.className = "toast";
  toast.setAttribute("role", "alert");
  toast.dataset.kind = kind;
  const text = document.createElement("p");
  // Some messages come from libraries in mid-sentence case ("cannot reach …").
  text.textContent = message.charAt(0).toUpperCase() + message.slice(1);
  const action = document.createElement("button");
  action.className = "toast-action";
  action.textContent = actionFor[kind].label;
  action.addEventListener("click", () => {
    onAction(actionFor[kind]);
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
