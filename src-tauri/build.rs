//! The desktop app's build script: checks that the window's user interface has been built
//! (the app embeds `ui/dist`), then runs Tauri's own build step.

use std::path::Path;

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist");
    println!("cargo::rerun-if-changed=../ui/dist");
    if !dist.join("index.html").is_file() {
        // Without this, `tauri::generate_context!` fails with a message about
        // `frontendDist` that does not say what to do.
        println!(
            "cargo::error=The window's user interface is not built yet (ui/dist is missing). \
             Run `cargo xtask setup` once (or `cargo xtask run`): it installs the UI's npm \
             packages and builds the UI, then `cargo build` works."
        );
        return;
    }
    tauri_build::build();
}
