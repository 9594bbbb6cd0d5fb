//! Installs what Sotto needs: Debian/Ubuntu packages, then builds the workspace, then
//! fetches and verifies the models with Sotto's own `sotto models fetch`.

use std::path::PathBuf;
use std::process::Command;

use crate::shell::{self, cargo, step};

/// Debian/Ubuntu packages the build needs, with why.
const APT_PACKAGES: &[(&str, &str)] = &[
    (
        "build-essential",
        "C/C++ compiler for whisper.cpp and llama.cpp",
    ),
    ("pkg-config", "finds system libraries"),
    ("cmake", "builds whisper.cpp and llama.cpp"),
    ("libclang-dev", "bindgen for the whisper.cpp bindings"),
    ("libasound2-dev", "microphone and speaker access (ALSA)"),
    (
        "alsa-utils",
        "real speech for the tests (/usr/share/sounds/alsa)",
    ),
    (
        "libespeak-ng-dev",
        "espeak-ng: text to phonemes for the voices",
    ),
    ("espeak-ng-data", "espeak-ng's pronunciation data"),
    (
        "espeak-ng",
        "spoken questions for the recognition benchmark (`cargo xtask bench stt`)",
    ),
    (
        "libwebkit2gtk-4.1-dev",
        "the desktop window's web view (Tauri)",
    ),
    ("libgtk-3-dev", "the desktop window (Tauri)"),
    (
        "libayatana-appindicator3-dev",
        "the tray icon (loaded at run time; the .deb depends on it)",
    ),
    (
        "libdbus-1-dev",
        "API keys in the system keychain (Secret Service)",
    ),
    (
        "dbus-daemon",
        "a private D-Bus session for the keychain tests",
    ),
    (
        "gnome-keyring",
        "a real keychain for the tests (run on a private D-Bus session)",
    ),
    ("nodejs", "builds the window's user interface"),
    ("npm", "the user interface's packages"),
    ("xvfb", "a virtual display for the end-to-end tests"),
    ("xauth", "used by xvfb-run"),
    (
        "xdotool",
        "presses the global hotkey in the end-to-end test",
    ),
    (
        "webkit2gtk-driver",
        "WebKitWebDriver, which drives the window in end-to-end tests",
    ),
];

/// The oldest Node.js the UI's tools run on (eslint 9 needs 18.18).
const MIN_NODE: (u32, u32) = (18, 18);

/// The built workspace: where its binaries are.
pub struct Workspace {
    target_dir: PathBuf,
    /// How the build was linted (`None`: clippy is not installed).
    lint: Option<Lint>,
}

/// Clippy as the workspace's compiler wrapper: the one debug build both compiles and
/// lints our crates (warnings are errors), so no second `cargo clippy` pass compiles every
/// dependency again in check mode. Dependencies are compiled by plain rustc either way.
/// Release builds (benchmarks, installers) never use it: clippy-driver turns MIR
/// optimisations off.
#[derive(Clone)]
pub struct Lint {
    driver: PathBuf,
}

impl Lint {
    /// The toolchain's clippy-driver, if clippy is installed.
    pub fn find() -> Option<Lint> {
        let sysroot = shell::output(Command::new("rustc").args(["--print", "sysroot"]))?;
        let driver = PathBuf::from(sysroot.trim())
            .join("bin")
            .join("clippy-driver");
        driver.is_file().then_some(Lint { driver })
    }

    /// Makes `cmd` (a cargo command) lint the workspace's crates as it compiles them.
    /// The same values every time: cargo keys our crates' artifacts on them.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("RUSTC_WORKSPACE_WRAPPER", &self.driver)
            // clippy's own way of passing its arguments (what `cargo clippy -- -D warnings`
            // sets): each followed by this separator.
            .env("CLIPPY_ARGS", "-Dwarnings__CLIPPY_HACKERY__");
    }
}

impl Workspace {
    /// Whether the build was linted.
    pub fn linted(&self) -> bool {
        self.lint.is_some()
    }

    /// Cargo's target folder.
    pub fn target_dir(&self) -> &std::path::Path {
        &self.target_dir
    }

    fn bin(&self, name: &str) -> PathBuf {
        self.target_dir.join("debug").join(name)
    }

    /// Runs the freshly built `sotto` with these arguments.
    pub fn sotto(&self, args: &[String]) -> Result<(), String> {
        let mut cmd = Command::new(self.bin("sotto"));
        cmd.args(args);
        step("sotto", cmd)
    }

    /// The folder the models are installed in (`sotto models dir`).
    pub fn models_dir(&self) -> Result<PathBuf, String> {
        shell::output(Command::new(self.bin("sotto")).args(["models", "dir"]))
            .map(|s| PathBuf::from(s.trim()))
            .ok_or_else(|| "`sotto models dir` failed".to_string())
    }

    /// The freshly built `sotto` command.
    pub fn sotto_bin(&self) -> PathBuf {
        self.bin("sotto")
    }

    /// The desktop app binary.
    pub fn app(&self) -> PathBuf {
        self.bin("sotto-app")
    }

    /// `cargo test` with exactly the package selection and lint wrapper of the build, so
    /// nothing is rebuilt.
    pub fn cargo_test(&self) -> Command {
        let mut cmd = cargo(&["test", "--workspace", "--all-targets"]);
        if let Some(lint) = &self.lint {
            lint.apply(&mut cmd);
        }
        cmd
    }
}

/// Everything: system packages, the user interface, the build, the models.
pub fn all() -> Result<Workspace, String> {
    packages_and_ui()?;
    let ws = build_workspace()?;
    models(&ws)?;
    Ok(ws)
}

/// The system packages and the built user interface (what bundling needs first).
pub fn packages_and_ui() -> Result<(), String> {
    system_packages()?;
    ui()
}

/// The checkout this xtask was started from.
///
/// Read at run time (`cargo run` sets `CARGO_MANIFEST_DIR`), not baked in with `env!`:
/// cargo reuses a built xtask from a target folder shared between clones, and the
/// baked-in path would then be the other clone's (or a deleted one's).
pub fn repo_root() -> PathBuf {
    let xtask = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    match xtask.parent() {
        Some(root) => root.to_path_buf(),
        None => xtask.join(".."),
    }
}

/// The `ui/` folder.
pub fn ui_dir() -> PathBuf {
    repo_root().join("ui")
}

/// An npm command run in `ui/`.
pub fn npm(args: &[&str]) -> Command {
    let mut cmd = Command::new("npm");
    cmd.current_dir(ui_dir()).args(args);
    cmd
}

/// Installs the UI's npm packages (only when the lockfile changed) and builds it: the
/// desktop app embeds `ui/dist` when it is compiled.
fn ui() -> Result<(), String> {
    let version = shell::output(Command::new("node").arg("--version"))
        .ok_or("Node.js is not installed: install it (Debian: `apt-get install nodejs npm`) and run this again")?;
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < MIN_NODE {
        return Err(format!(
            "Node.js {} is too old for the UI's tools; {}.{} or newer is needed",
            version.trim(),
            MIN_NODE.0,
            MIN_NODE.1
        ));
    }
    let ui = ui_dir();
    let stamp = ui.join("node_modules").join(".package-lock.json");
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (modified(&stamp), modified(&ui.join("package-lock.json"))) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if fresh {
        println!("==> ui packages: up to date");
    } else {
        // Not `npm ci`: npm 11 writes lockfiles holding only this platform's optional
        // binaries (esbuild, rollup, the Tauri CLI) and then refuses them in `npm ci`.
        // `npm install` keeps every version the lockfile pins.
        step("ui packages", npm(&["install", "--no-audit", "--no-fund"]))?;
    }
    step("ui build", npm(&["run", "build"]))
}

/// Installs missing Debian packages (as root, or through passwordless sudo); otherwise
/// prints the exact command and stops.
fn system_packages() -> Result<(), String> {
    if !cfg!(target_os = "linux")
        || shell::output(Command::new("dpkg-query").arg("--version")).is_none()
    {
        println!("==> system packages: not a Debian/Ubuntu system; make sure a C/C++ compiler, cmake and libclang are installed");
        return Ok(());
    }
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !is_installed(name))
        .collect();
    if missing.is_empty() {
        println!("==> system packages: all {} present", APT_PACKAGES.len());
        return Ok(());
    }
    let list = missing.join(" ");
    let is_root = shell::output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0");
    let sudo_ok = !is_root && shell::output(Command::new("sudo").args(["-n", "true"])).is_some();
    if !is_root && !sudo_ok {
        return Err(format!(
            "these system packages are missing: {list}\nInstall them, then run this again:\n  \
             sudo apt-get update && sudo apt-get install -y --no-install-recommends {list}"
        ));
    }
    let apt = |args: &[&str]| {
        let mut cmd = if is_root {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !is_root {
            cmd.arg("apt-get");
        }
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    step("apt-get update", apt(&["update"]))?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(&missing);
    step("install system packages", apt(&install))
}

/// True when the Debian package is installed. Node.js installed another way (nodesource,
/// nvm) counts for `nodejs` and `npm`: installing Debian's over it would fight it.
fn is_installed(package: &str) -> bool {
    let binary = match package {
        "nodejs" => Some("node"),
        "npm" => Some("npm"),
        _ => None,
    };
    if binary.is_some_and(|b| shell::output(Command::new(b).arg("--version")).is_some()) {
        return true;
    }
    shell::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.contains("install ok installed"))
}

/// Builds (and lints) every crate and test once, with the selection `cargo test` will use.
pub fn build_workspace() -> Result<Workspace, String> {
    let lint = Lint::find();
    let mut build = cargo(&["build", "--workspace", "--all-targets"]);
    match &lint {
        Some(lint) => lint.apply(&mut build),
        None => println!(
            "==> clippy is not installed, so the build is not linted \
             (`rustup component add clippy` adds it; `cargo xtask test` needs it)"
        ),
    }
    step("build and lint", build)?;
    Ok(Workspace {
        target_dir: target_dir()?,
        lint,
    })
}

/// Cargo's target folder (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> Result<PathBuf, String> {
    let mut meta = cargo(&["metadata", "--no-deps", "--format-version", "1"]);
    meta.stderr(std::process::Stdio::inherit());
    let json = shell::output(&mut meta).ok_or("`cargo metadata` failed")?;
    let value: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("cannot read `cargo metadata`: {e}"))?;
    let target_dir = value["target_directory"]
        .as_str()
        .ok_or("`cargo metadata` names no target directory")?;
    Ok(PathBuf::from(target_dir))
}

/// Fetches (or verifies, when present) the default models and the test speech.
fn models(ws: &Workspace) -> Result<(), String> {
    ws.sotto(&["models".into(), "fetch".into(), "--defaults".into()])?;
    ws.sotto(&[
        "models".into(),
        "fetch".into(),
        "sample-jfk".into(),
        "kokoro-82m-int8".into(),
    ])
}

/// Installs tauri-driver (the WebDriver bridge for Tauri apps) unless it is on PATH.
pub fn tauri_driver() -> Result<(), String> {
    if shell::output(Command::new("tauri-driver").arg("--help")).is_some() {
        return Ok(());
    }
    step(
        "install tauri-driver",
        cargo(&["install", "tauri-driver", "--locked", "--version", "2.0.6"]),
    )
}
