//! `cargo xtask`: everything a developer or a new user needs, from a fresh clone.
//!
//! - `cargo xtask run [--headless [FILE.wav]]`: set up, then start Sotto.
//! - `cargo xtask test`: set up, then every check and test CI runs.
//! - `cargo xtask setup`: only the set-up (system packages, models).
//! - `cargo xtask bench [STAGE]`, `cargo xtask bench app`: measurements on release builds.
//! - `cargo xtask bundle [--check]`: the .deb installer (and, with `--check`, install it,
//!   start it, remove it).
//!
//! Set-up is idempotent and quick the second time: packages already present are not
//! reinstalled, models already verified are not downloaded, and cargo rebuilds nothing.

mod bench_app;
mod bundle;
mod setup;
mod shell;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  run [--headless [FILE.wav]]  install what is missing, then start Sotto
  test                         install what is missing, then run every check and test
  bench [STAGE]                install what is missing, then measure (release build);
                               STAGE: vad, stt, stream, llm, answers, api, tts, voice or
                               all (the default; api: the local API's overhead)
  bench voice-memory [--voice ID] [--sentences N] [--warm-up]
                               the voice's resident memory over many sentences
  bench echo [--user-speech DIR] [--json FILE] [--trials N]
                               echo cancellation in a simulated room: ERLE, the assistant's
                               own voice never taken for the user, voice barge-in
  bench app [--questions DIR] [--json FILE]
                               the release app in its window, spoken questions
                               through the global hotkey, against the same headless
  soak [--turns N]             many turns (1,000 by default) on two long-lived assistants;
                               fails when memory or descriptors grow or a turn hangs
  bundle [--check]             build the .deb installer (release); --check installs it,
                               starts it under Xvfb until it is ready, and removes it
  setup                        install what is missing (system packages, models)
  models ARGS...               run `sotto models ARGS...` (list, fetch, verify, dir)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::all().map(|_| ()),
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("bench") if args.get(1).map(String::as_str) == Some("app") => {
            bench_app::run(&args[2..])
        }
        Some("bench") => bench(&args[1..]),
        // The soak is a bench that fails when a limit is missed.
        Some("soak") => bench(&[&["soak".to_string()], &args[1..]].concat()),
        Some("bundle") => bundle::bundle(args.iter().any(|a| a == "--check")).map(|_| ()),
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
    let dir = ws.target_dir().join("headless");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let input = match args.get(1) {
        Some(file) => file.clone(),
        None => spoken_question(
            &ws,
            "What is the capital of France?",
            &dir.join("question.wav"),
        )?,
    };
    let reply = dir.join("reply.wav").display().to_string();
    let events = dir.join("events.jsonl").display().to_string();
    ws.sotto(&[
        "run".into(),
        "--input".into(),
        input,
        "--out".into(),
        reply.clone(),
        "--events".into(),
        events.clone(),
    ])?;
    println!("\nThe spoken answer is in {reply}; every event of the turn is in {events}.");
    Ok(())
}

/// Speaks `text` into `out` in a voice other than the assistant's (a question for a
/// headless turn or the end-to-end test); returns the path.
pub(crate) fn spoken_question(
    ws: &setup::Workspace,
    text: &str,
    out: &std::path::Path,
) -> Result<String, String> {
    let path = out.display().to_string();
    ws.sotto(&[
        "say".into(),
        text.into(),
        "--voice".into(),
        "kokoro-82m-int8/am_michael".into(),
        "--out".into(),
        path.clone(),
    ])?;
    Ok(path)
}

/// Benchmarks run on a release build: the numbers are those of what ships.
fn bench(args: &[String]) -> Result<(), String> {
    setup::all()?;
    // The LLM bench runs the worker process, found next to the bench binary.
    shell::step(
        "build the LLM worker",
        shell::cargo(&["build", "--release", "--package", "sotto-llm-worker"]),
    )?;
    if args.is_empty() || args.iter().any(|a| a == "tts" || a == "all") {
        piper_reference();
    }
    let mut cmd = shell::cargo(&["run", "--release", "--package", "sotto-bench", "--"]);
    cmd.args(args);
    shell::step("bench", cmd)
}

/// The TTS bench compares Sotto's Piper with the official `piper-tts` Python package: put
/// it in a virtual environment in the cache folder, once. Without Python the bench runs
/// anyway and says the reference is missing.
fn piper_reference() {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let venv = std::path::Path::new(&home).join(".cache/sotto/bench-venv");
    if venv.join("bin/python").is_file() {
        return;
    }
    let created = shell::step("python venv for the piper-tts reference", {
        let mut cmd = std::process::Command::new("python3");
        cmd.args(["-m", "venv"]).arg(&venv);
        cmd
    })
    .and_then(|()| {
        let mut cmd = std::process::Command::new(venv.join("bin/pip"));
        cmd.args(["install", "--quiet", "piper-tts==1.8.0"]);
        shell::step("pip install piper-tts==1.8.0", cmd)
    });
    if let Err(e) = created {
        eprintln!("(no piper-tts reference: {e})");
        let _ = std::fs::remove_dir_all(&venv);
    }
}

fn test() -> Result<(), String> {
    let ws = setup::all()?;
    // A full re-hash of every installed model against the manifest.
    ws.sotto(&["models".into(), "verify".into()])?;
    shell::step("format", shell::cargo(&["fmt", "--all", "--check"]))?;
    // The build above was linted (clippy-driver as the workspace's compiler wrapper).
    if !ws.linted() {
        return Err(
            "clippy is not installed: `rustup component add clippy`, then run this again".into(),
        );
    }
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
    let dir = ws.target_dir().join("e2e");
    // A fresh history each run: the test looks for the entry its own turn made.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // A question with a long answer, so there is time to interrupt it.
    let question = spoken_question(
        ws,
        "Tell me a long story about a brave little dragon.",
        &dir.join("question.wav"),
    )?;
    // The live assistant's questions over the API: a short one, then the long-answer one.
    let questions = dir.join("questions");
    std::fs::create_dir_all(&questions)
        .map_err(|e| format!("cannot create {}: {e}", questions.display()))?;
    spoken_question(
        ws,
        "What is the capital of France?",
        &questions.join("1-capital.wav"),
    )?;
    std::fs::copy(&question, questions.join("2-dragon.wav"))
        .map_err(|e| format!("cannot copy {question}: {e}"))?;
    let shots = ws.target_dir().join("e2e-screenshots");
    let mut cmd = setup::npm(&["run", "e2e"]);
    // Its own settings, history and autostart folder: the user's are never touched.
    cmd.env("SOTTO_APP", ws.app())
        .env("SOTTO_BIN", ws.sotto_bin())
        .env("SOTTO_SCREENSHOTS", &shots)
        .env("SOTTO_TEST_INPUT", &question)
        .env("SOTTO_TEST_QUESTIONS", &questions)
        .env("SOTTO_E2E_DIR", &dir)
        .env("SOTTO_MODELS_SOURCE", ws.models_dir()?)
        .env("SOTTO_DATA_DIR", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    shell::step("end-to-end", cmd)?;
    println!("==> screenshots in {}", shots.display());
    Ok(())
}
