// Entry point of the Sotto window.
import { invoke } from "@tauri-apps/api/core";
// The states' colours, generated from Rust. style.css is linked from the page, so this
// comes after it in the cascade.
import "./bindings/states.css";
import type { ModelStatus } from "./bindings/ModelStatus";
import { startWindow } from "./controller";
import { renderModels } from "./models-view";
import { tauriSource } from "./tauri-source";

function element(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}

async function showModels(): Promise<void> {
  const list = element("models");
  const summary = element("models-summary");
  try {
    const models = await invoke<ModelStatus[]>("models_status");
    renderModels(models, list, summary);
  } catch (e) {
    summary.textContent = `Could not read the models: ${String(e)}`;
    summary.classList.add("problem");
  }
}

startWindow(tauriSource);
void showModels();
