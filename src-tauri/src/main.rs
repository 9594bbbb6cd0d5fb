//! Sotto's desktop app. The shell stays thin: it exposes the assistant's engines to the
//! webview through typed commands and events, and owns nothing but windows.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod models;

fn main() {
    let result = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![models::models_status])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("Sotto could not start its window: {e}");
        std::process::exit(1);
    }
}
