// Entry point of the overlay window.
import { startOverlay } from "./overlay";
import { tauriSource } from "./tauri-source";

startOverlay(tauriSource);
