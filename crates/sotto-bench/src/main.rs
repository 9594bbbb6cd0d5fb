//! `sotto-bench`: measures Sotto's stages on this machine with the real engines and the
//! default models, and prints a Markdown table plus JSON. Run it with `cargo xtask bench`.
//!
//! These are benchmarks, not tests: they report numbers and never fail on a slow machine.

mod answers;
mod api;
mod api_flood;
mod echo;
mod grade;
mod llm;
mod soak;
mod stream;
mod stt;
mod tts;
mod vad;
mod voice;
mod voice_memory;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().cloned().unwrap_or_else(|| "all".into());
    let rest = args.get(1..).unwrap_or_default();
    let result = match which.as_str() {
        "answers" => answers::run(rest),
        "api" => api::run(),
        "echo" => echo::run(rest),
        "stt" => stt::run(),
        "stream" => stream::run(),
        "vad" => vad::run(),
        "llm" => llm::run(),
        "tts" => tts::run(),
        "voice" => voice::run(),
        "voice-memory" => voice_memory::run(rest),
        "soak" => soak_turns(rest).and_then(soak::run),
        "all" => vad::run()
            .and_then(|()| stt::run())
            .and_then(|()| llm::run())
            .and_then(|()| tts::run())
            .and_then(|()| voice::run()),
        other => Err(anyhow::anyhow!(
            "unknown benchmark `{other}` (known: vad, stt, stream, llm, answers, api, echo, tts, voice, voice-memory, soak, all)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--turns N` (default 1,000).
fn soak_turns(args: &[String]) -> anyhow::Result<usize> {
    match args {
        [] => Ok(1_000),
        [flag, n] if flag == "--turns" => n
            .parse()
            .map_err(|_| anyhow::anyhow!("--turns takes a number, not {n}")),
        other => anyhow::bail!("soak takes --turns N, not {other:?}"),
    }
}

/// The runtime the async benchmarks run on: two workers, as on this project's 2-core
/// reference machine.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// A `/proc/<pid>/status` field given in KiB (`VmRSS`, `VmHWM`), for `pid` or `self`.
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The value at quantile `q` (0..=1) of `values`, nearest-rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
