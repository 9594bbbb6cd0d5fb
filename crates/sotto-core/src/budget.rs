//! One CPU budget: how many threads each engine gets, decided in one place from the
//! number of cores and from what runs at the same moment.
//!
//! A voice turn has two busy phases. While the user speaks and just after, the
//! recogniser decodes (the listener's Silero costs under half a percent of a core), so
//! whisper gets every core; between its partial decodes the language model reads the
//! question's start ahead (`Llm::read_ahead`), and that stops when the user pauses, so
//! the decode that matters, the one at the pause, has the cores to itself. While answering, the language model generates and the
//! voice synthesizes the sentences already written, at the same time. Generation is
//! steady and gains almost nothing from a second thread on two cores (llama.cpp's
//! single-token steps are bound by memory, and its threads wait for each other at every
//! step), so it gets the cores the voice leaves. The voice works in bursts, one piece at
//! a time, and its first piece is what the user waits for: on two cores it gets two
//! threads, one more than "voice + generation <= cores" would give it, because measured
//! on the whole turn that is faster (docs/BENCHMARKS.md, "CPU budget": first sentence ->
//! first audio about 128 -> 81 ms, generation's pace unchanged). Other core counts keep
//! the older rule (the voice a quarter of the cores, one or two threads, generation the
//! rest): only two cores were measured. The model reads the question (the prompt) before
//! any sentence exists, so that part gets every core.
//!
//! ONNX Runtime's pool threads spin between runs by default; the voice and the detectors
//! run in bursts, so spinning is off ([`sotto_onnx::open_session`]). The language
//! model's worker gets `OMP_WAIT_POLICY=PASSIVE` for the same reason (llama.cpp is built
//! with OpenMP, whose idle threads spin).
//!
//! The rule was chosen by measurement: docs/BENCHMARKS.md, "CPU budget". The
//! `SOTTO_THREADS` environment variable overrides it for measuring others
//! (`SOTTO_THREADS=stt=2,llm=1,llm_batch=2,voice=1`).

/// The environment variable that overrides the budget's thread counts.
pub const THREADS_VAR: &str = "SOTTO_THREADS";

/// Threads per engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineThreads {
    /// whisper's threads: it decodes while nothing else heavy runs.
    pub stt: usize,
    /// The language model's threads while generating (the voice runs beside it).
    pub llm: usize,
    /// The language model's threads while reading the prompt (nothing runs beside it).
    pub llm_batch: usize,
    /// The voice's threads (ONNX Runtime's intra-op pool).
    pub voice: usize,
}

/// The machine's cores, and how they are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuBudget {
    /// Cores this process may use (cgroup and affinity limits included).
    pub cores: usize,
}

impl CpuBudget {
    /// The budget for this machine.
    pub fn detect() -> CpuBudget {
        CpuBudget {
            cores: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    /// A budget for `cores` cores (at least one).
    pub fn for_cores(cores: usize) -> CpuBudget {
        CpuBudget {
            cores: cores.max(1),
        }
    }

    /// The rule: whisper and the prompt get every core; the voice two threads on two
    /// cores (measured), else a quarter of them, one or two (it does not gain past two);
    /// generation the cores the voice leaves, at least one.
    pub fn threads(&self) -> EngineThreads {
        let cores = self.cores.max(1);
        let voice = if cores == 2 {
            2
        } else {
            (cores / 4).clamp(1, 2)
        };
        EngineThreads {
            stt: cores,
            llm: cores.saturating_sub(voice).max(1),
            llm_batch: cores,
            voice,
        }
    }

    /// [`CpuBudget::threads`], with what `SOTTO_THREADS` sets in its place.
    pub fn threads_from_env(&self) -> EngineThreads {
        let rule = self.threads();
        match std::env::var(THREADS_VAR) {
            Ok(spec) => match parse_override(&spec, rule) {
                Ok(threads) => threads,
                Err(e) => {
                    tracing::warn!("{THREADS_VAR} ignored: {e}");
                    rule
                }
            },
            Err(_) => rule,
        }
    }
}

/// `base` with the counts `spec` names (`stt=2,llm=1`) in their place.
pub fn parse_override(spec: &str, base: EngineThreads) -> Result<EngineThreads, String> {
    let mut threads = base;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not NAME=COUNT"))?;
        let count: usize = value
            .trim()
            .parse()
            .ok()
            .filter(|&n| (1..=256).contains(&n))
            .ok_or_else(|| format!("{value:?} is not a thread count (1-256)"))?;
        match name.trim() {
            "stt" => threads.stt = count,
            "llm" => threads.llm = count,
            "llm_batch" => threads.llm_batch = count,
            "voice" => threads.voice = count,
            other => {
                return Err(format!(
                    "{other:?} is not an engine (stt, llm, llm_batch, voice)"
                ))
            }
        }
    }
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_and_the_voice_share_the_cores_the_voice_taking_two() {
        for cores in 1..=64 {
            let t = CpuBudget::for_cores(cores).threads();
            assert!(t.llm >= 1 && t.voice >= 1 && t.voice <= 2, "{cores}: {t:?}");
            // Never more threads than cores, but for the voice's second on two cores.
            if cores >= 3 {
                assert!(t.llm + t.voice <= cores, "{cores}: {t:?}");
            }
            assert_eq!((t.stt, t.llm_batch), (cores, cores));
        }
        // This machine's: measured against voice 1 (docs/BENCHMARKS.md, "CPU budget").
        assert_eq!(
            CpuBudget::for_cores(2).threads(),
            EngineThreads {
                stt: 2,
                llm: 1,
                llm_batch: 2,
                voice: 2
            }
        );
        assert_eq!(CpuBudget::for_cores(1).threads().voice, 1);
        assert_eq!(
            (
                CpuBudget::for_cores(4).threads().llm,
                CpuBudget::for_cores(4).threads().voice
            ),
            (3, 1)
        );
    }

    #[test]
    fn the_override_sets_what_it_names_and_refuses_nonsense() {
        let base = CpuBudget::for_cores(2).threads();
        assert_eq!(
            parse_override("llm=2, voice=2", base),
            Ok(EngineThreads {
                llm: 2,
                voice: 2,
                ..base
            })
        );
        assert_eq!(parse_override("", base), Ok(base));
        for bad in ["llm", "llm=0", "llm=x", "gpu=1", "stt=1000"] {
            assert!(parse_override(bad, base).is_err(), "{bad}");
        }
    }
}
