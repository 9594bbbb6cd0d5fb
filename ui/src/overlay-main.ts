// Entry point of the overlay window.
// The states' colours, generated from Rust. style.css is linked from the page, so this
// comes after it in the cascade.
import "./bindings/states.css";
import { startOverlay } from "./overlay";
import { tauriSource } from "./tauri-source";

startOverlay(tauriSource);
