//! Running commands, and saying what is being run.

use std::process::Command;

/// A `cargo` command with the same toolchain that runs this xtask, in this checkout.
pub fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(crate::setup::repo_root()).args(args);
    cmd
}

/// Prints a heading, runs `cmd` with inherited output, and fails if it fails.
pub fn step(title: &str, mut cmd: Command) -> Result<(), String> {
    println!("\n==> {title}: {}", describe(&cmd));
    let started = std::time::Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{title}: cannot start {}: {e}", describe(&cmd)))?;
    println!("==> {title}: {:.1} s", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{title} failed ({status})"))
    }
}

/// Runs `cmd` quietly and returns its stdout, or None when it fails or is not installed.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The command line, for messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
