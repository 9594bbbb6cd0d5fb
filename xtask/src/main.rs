//! `cargo xtask`: everything a developer or a new user needs, from a fresh clone.
//!
//! - `cargo xtask run [--headless [FILE.wav]]`: set up, then start Sotto.
//! - `cargo xtask test`: set up, then every check and test CI runs.
//! - `cargo xtask setup`: only the set-up (system packages, models).
//!
//! Set-up is idempotent and quick the second time: packages already present are not
//! reinstalled, models already verified are not downloaded, and cargo rebuilds nothing.

mod setup;
mod shell;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  run [--headless [FILE.wav]]  install what is missing, then start Sotto
  test                         install what is missing, then run every check and test
  bench [stt|all]              install what is missing, then measure each stage (release build)
  setup                        install what is missing (system packages, models)
  models ARGS...               run `sotto models ARGS...` (list, fetch, verify, dir)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::all().map(|_| ()),
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        Some("models") => setup::build_workspace().and_then(|ws| ws.sotto(&args[1..])),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let headless = args.first().map(String::as_str) == Some("--headless");
    let ws = setup::all()?;
    if !headless {
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return Err("there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the \
                        desktop window cannot open.\nRun one voice turn from a WAV file instead:\n  \
                        cargo xtask run --headless [FILE.wav]"
                .into());
        }
        return shell::step("sotto", std::process::Command::new(ws.app()));
    }
    let input = args.get(1).cloned();
    println!("Models are installed and verified in {}.", ws.models_dir()?);
    Err(format!(
        "the headless voice turn (speech in -> LLM -> speech out) is not built yet (issue #6 adds \
         `sotto run`), so {} cannot be answered. Nothing was pretended.",
        input.as_deref().unwrap_or("a spoken question")
    ))
}

/// Benchmarks run on a release build: the numbers are those of what ships.
fn bench(args: &[String]) -> Result<(), String> {
    setup::all()?;
    let mut cmd = shell::cargo(&["run", "--release", "--package", "sotto-bench", "--"]);
    cmd.args(args);
    shell::step("bench", cmd)
}

fn test() -> Result<(), String> {
    let ws = setup::all()?;
    // A full re-hash of every installed model against the manifest.
    ws.sotto(&["models".into(), "verify".into()])?;
    shell::step("format", shell::cargo(&["fmt", "--all", "--check"]))?;
    let clippy = [
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ];
    shell::step("clippy", shell::cargo(&clippy))?;
    shell::step("rust tests", ws.cargo_test())?;
    bindings_are_committed()?;
    shell::step("ui lint", setup::npm(&["run", "lint"]))?;
    shell::step("ui typecheck", setup::npm(&["run", "typecheck"]))?;
    shell::step("ui tests", setup::npm(&["test"]))?;
    e2e(&ws)
}

/// The Rust tests regenerate the UI's TypeScript bindings; they must match what is
/// committed, or the UI was checked against stale types.
fn bindings_are_committed() -> Result<(), String> {
    let mut diff = std::process::Command::new("git");
    diff.args(["diff", "--exit-code", "--stat", "--", "ui/src/bindings"]);
    shell::step("bindings up to date", diff).map_err(|_| {
        "the TypeScript bindings in ui/src/bindings changed when the Rust tests ran: commit them"
            .to_string()
    })
}

/// The real window under Xvfb, driven through tauri-driver and WebKitWebDriver.
fn e2e(ws: &setup::Workspace) -> Result<(), String> {
    setup::tauri_driver()?;
    let shots = ws.target_dir().join("e2e-screenshots");
    let mut cmd = setup::npm(&["run", "e2e"]);
    cmd.env("SOTTO_APP", ws.app())
        .env("SOTTO_SCREENSHOTS", &shots);
    shell::step("end-to-end", cmd)?;
    println!("==> screenshots in {}", shots.display());
    Ok(())
}
