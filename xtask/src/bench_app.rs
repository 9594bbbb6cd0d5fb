//! `cargo xtask bench app [--questions DIR] [--json FILE]`: the release app (the binary
//! `cargo xtask bundle` packs) in its real window under Xvfb, asked spoken questions with
//! the real global hotkey, against `sotto converse` (the same engines headless) on the
//! same questions, in one run (`ui/e2e/bench-app.mjs` drives both).

use std::path::{Path, PathBuf};

use crate::setup;
use crate::shell::{cargo, step};

/// Twelve everyday questions, none of them an instant answer (those are measured apart).
const QUESTIONS: [&str; 12] = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Who wrote Romeo and Juliet?",
    "What is the boiling point of water?",
    "Why is the sky blue?",
    "How far away is the moon?",
    "What is the largest planet in our solar system?",
    "Give me a tip for sleeping better.",
    "What is photosynthesis?",
    "How do I make a cup of tea?",
    "What language do people speak in Brazil?",
    "Tell me a fun fact about octopuses.",
];

/// Runs the bench with `args` (`--questions DIR`, `--json FILE`).
pub fn run(args: &[String]) -> Result<(), String> {
    let mut questions = None;
    let mut json = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .map(|v| absolute(Path::new(v)))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--questions" => questions = Some(value("--questions")?),
            "--json" => json = Some(value("--json")?),
            other => return Err(format!("bench app: unknown argument {other}")),
        }
    }
    let ws = setup::all()?;
    crate::bundle::build_deb()?;
    step(
        "build the command line (release)",
        cargo(&["build", "--release", "--package", "sotto-cli"]),
    )?;
    setup::tauri_driver()?;
    let target = ws.target_dir();
    let dir = target.join("bench-app");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let questions = match questions {
        Some(dir) => dir,
        None => {
            let spoken = dir.join("spoken");
            std::fs::create_dir_all(&spoken)
                .map_err(|e| format!("cannot create {}: {e}", spoken.display()))?;
            for (i, text) in QUESTIONS.iter().enumerate() {
                crate::spoken_question(&ws, text, &spoken.join(format!("q{i:02}.wav")))?;
            }
            spoken
        }
    };
    let release = target.join("release");
    let mut cmd = setup::npm(&["run", "bench:app"]);
    // Its own settings and history: the user's are never touched.
    cmd.env("SOTTO_APP", release.join("sotto-app"))
        .env("SOTTO_CLI", release.join("sotto"))
        .env("BENCH_DIR", &dir)
        .env("BENCH_QUESTIONS", &questions)
        .env("SOTTO_DATA_DIR", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    if let Some(json) = json {
        cmd.env("BENCH_JSON", json);
    }
    step("bench app", cmd)
}

/// `path` from the folder the command was run in (npm runs in `ui/`).
fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
}
