//! `cargo xtask bundle [--check]`: the Linux installer (.deb) with the Tauri bundler,
//! offline; `--check` then installs it with dpkg, starts the installed app under Xvfb
//! through WebDriver until the assistant is ready, and removes it again.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup;
use crate::shell::{self, cargo, step};

/// The worker ships beside the app (Tauri's "external binary", named with the target).
const WORKER: &str = "sotto-llm-worker";

/// Builds the .deb; with `check`, installs and starts it. Returns the .deb's path.
pub fn bundle(check: bool) -> Result<PathBuf, String> {
    if !check {
        setup::packages_and_ui()?;
        let deb = build_deb()?;
        println!("==> the installer: {}", deb.display());
        return Ok(deb);
    }
    // The check drives the installed app with the test models and tauri-driver, and a
    // spoken question for one turn.
    let ws = setup::all()?;
    let deb = build_deb()?;
    println!("==> the installer: {}", deb.display());
    let dir = ws.target_dir().join("installed-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let question = crate::spoken_question(
        &ws,
        "What is the capital of France?",
        &dir.join("question.wav"),
    )?;
    check_installed(&deb, &dir, &question)?;
    Ok(deb)
}

fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let info = shell::output(Command::new(rustc).arg("-vV")).ok_or("`rustc -vV` failed")?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "`rustc -vV` names no host".to_string())
}

pub(crate) fn build_deb() -> Result<PathBuf, String> {
    let target = setup::target_dir()?;
    step(
        "build the LLM worker (release)",
        cargo(&["build", "--release", "--package", WORKER]),
    )?;
    let binaries = setup::repo_root().join("src-tauri").join("binaries");
    std::fs::create_dir_all(&binaries)
        .map_err(|e| format!("cannot create {}: {e}", binaries.display()))?;
    let staged = binaries.join(format!("{WORKER}-{}", host_triple()?));
    std::fs::copy(target.join("release").join(WORKER), &staged)
        .map_err(|e| format!("cannot stage the worker at {}: {e}", staged.display()))?;
    let bundles = target.join("release").join("bundle").join("deb");
    let _ = std::fs::remove_dir_all(&bundles);
    let mut tauri = Command::new(setup::ui_dir().join("node_modules/.bin/tauri"));
    tauri.current_dir(setup::repo_root()).args([
        "build",
        "--bundles",
        "deb",
        "--config",
        "src-tauri/tauri.bundle.json",
    ]);
    step("tauri build --bundles deb", tauri)?;
    let found = std::fs::read_dir(&bundles)
        .map_err(|e| format!("the bundler wrote no {}: {e}", bundles.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"));
    found.ok_or_else(|| format!("no .deb in {}", bundles.display()))
}

/// `dpkg-deb -f DEB FIELD`.
fn deb_field(deb: &Path, field: &str) -> Result<String, String> {
    shell::output(Command::new("dpkg-deb").arg("-f").arg(deb).arg(field))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| format!("cannot read {field} from {}", deb.display()))
}

/// A command run as root: directly, or through passwordless sudo.
fn as_root(program: &str) -> Result<Command, String> {
    let is_root = shell::output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0");
    if is_root {
        return Ok(Command::new(program));
    }
    if shell::output(Command::new("sudo").args(["-n", "true"])).is_some() {
        let mut cmd = Command::new("sudo");
        cmd.arg("-n").arg(program);
        return Ok(cmd);
    }
    Err(
        "installing the .deb needs root: run `sudo dpkg -i <deb>` yourself, or run this as root"
            .to_string(),
    )
}

fn check_installed(deb: &Path, dir: &Path, question: &str) -> Result<(), String> {
    let package = deb_field(deb, "Package")?;
    println!(
        "==> {package} {} needs: {}",
        deb_field(deb, "Version")?,
        deb_field(deb, "Depends")?
    );
    let mut install = as_root("dpkg")?;
    install.arg("-i").arg(deb);
    step("dpkg -i", install)?;
    let result = start_installed(&package, dir, question);
    let mut remove = as_root("dpkg")?;
    remove.args(["-r", &package]);
    let removed = step("dpkg -r", remove);
    result.and(removed)
}

/// Starts the installed app through WebDriver, as a user would from the menu entry, and
/// has it answer `question` (a WAV file) in a scratch `dir`.
fn start_installed(package: &str, dir: &Path, question: &str) -> Result<(), String> {
    let listing = shell::output(Command::new("dpkg").args(["-L", package]))
        .ok_or("dpkg cannot list the installed files")?;
    for needed in ["/usr/bin/sotto-app", "/usr/bin/sotto-llm-worker"] {
        if !listing.lines().any(|l| l == needed) {
            return Err(format!("the package does not install {needed}"));
        }
    }
    // The bundler names the menu entry after the product or the binary, by version.
    let entry = listing
        .lines()
        .find(|l| l.starts_with("/usr/share/applications/") && l.ends_with(".desktop"))
        .ok_or("the package installs no menu entry (/usr/share/applications/*.desktop)")?;
    println!("==> menu entry: {entry}");
    setup::tauri_driver()?;
    let target = setup::target_dir()?;
    let mut cmd = setup::npm(&["run", "e2e:installed"]);
    cmd.env("SOTTO_APP", "/usr/bin/sotto-app")
        .env("SOTTO_TEST_INPUT", question)
        .env("SOTTO_SCREENSHOTS", target.join("e2e-screenshots"))
        .env("SOTTO_DATA_DIR", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    step("start the installed app", cmd)
}
