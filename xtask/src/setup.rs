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
];

/// The built workspace: where its binaries are.
pub struct Workspace {
    target_dir: PathBuf,
}

impl Workspace {
    fn bin(&self, name: &str) -> PathBuf {
        self.target_dir.join("debug").join(name)
    }

    /// Runs the freshly built `sotto` with these arguments.
    pub fn sotto(&self, args: &[String]) -> Result<(), String> {
        let mut cmd = Command::new(self.bin("sotto"));
        cmd.args(args);
        step("sotto", cmd)
    }

    /// The models folder `sotto` uses.
    pub fn models_dir(&self) -> Result<String, String> {
        let mut cmd = Command::new(self.bin("sotto"));
        cmd.args(["models", "dir"]);
        shell::output(&mut cmd)
            .map(|s| s.trim().to_string())
            .ok_or_else(|| "`sotto models dir` failed".into())
    }

    /// `cargo test` with exactly the package selection of the build, so nothing is rebuilt.
    pub fn cargo_test(&self) -> Command {
        cargo(&["test", "--workspace", "--all-targets"])
    }
}

/// Everything: system packages, the build, the models.
pub fn all() -> Result<Workspace, String> {
    system_packages()?;
    let ws = build_workspace()?;
    models(&ws)?;
    Ok(ws)
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
        .filter(|name| {
            let mut q = Command::new("dpkg-query");
            q.args(["-W", "-f=${Status}", name]);
            !shell::output(&mut q).is_some_and(|s| s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        println!("==> system packages: all {} present", APT_PACKAGES.len());
        return Ok(());
    }
    let list = missing.join(" ");
    let is_root = shell::output(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0");
    let sudo_ok = !is_root && {
        let mut s = Command::new("sudo");
        s.args(["-n", "true"]);
        shell::output(&mut s).is_some()
    };
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

/// Builds every crate and test once, with the selection `cargo test` will use.
pub fn build_workspace() -> Result<Workspace, String> {
    step("build", cargo(&["build", "--workspace", "--all-targets"]))?;
    let mut meta = cargo(&["metadata", "--no-deps", "--format-version", "1"]);
    meta.stderr(std::process::Stdio::inherit());
    let json = shell::output(&mut meta).ok_or("`cargo metadata` failed")?;
    let value: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("cannot read `cargo metadata`: {e}"))?;
    let target_dir = value["target_directory"]
        .as_str()
        .ok_or("`cargo metadata` names no target directory")?;
    Ok(Workspace {
        target_dir: PathBuf::from(target_dir),
    })
}

/// Fetches (or verifies, when present) the default models and the test speech.
fn models(ws: &Workspace) -> Result<(), String> {
    ws.sotto(&["models".into(), "fetch".into(), "--defaults".into()])?;
    ws.sotto(&["models".into(), "fetch".into(), "sample-jfk".into()])
}
