//! `sotto models ...`: list, fetch, verify and convert models.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use sotto_models::fetch::model_size_text;
use sotto_models::space::human_bytes;
use sotto_models::{FetchEvent, FetchProgress, Fetcher, FileState, ModelKind, ModelStore};

/// `sotto models` subcommands.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// List every known model and whether it is installed.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Download models (the defaults when no id is given), repairing damaged files.
    Fetch {
        /// Model ids to fetch.
        ids: Vec<String>,
        /// Fetch the default models (also what no id means).
        #[arg(long)]
        defaults: bool,
        /// Fetch every model that runs on this machine.
        #[arg(long, conflicts_with = "defaults")]
        all: bool,
    },
    /// Re-hash installed models and check them against the manifest.
    Verify {
        /// Model ids to verify (default: the defaults and everything installed).
        ids: Vec<String>,
    },
    /// Print the folder models are stored in.
    Dir,
    /// Convert a faster-whisper (CTranslate2) model folder into a whisper.cpp model file.
    ConvertWhisper {
        /// Folder holding model.bin and vocabulary.txt (or vocabulary.json).
        dir: PathBuf,
        /// The whisper.cpp file to write.
        out: PathBuf,
    },
    /// Rewrite a GGUF model's Q5_0 weights as Q8_0: the same numbers, generated faster on
    /// x86-64 (what Sotto does to its default language model when it fetches it).
    WidenGguf {
        /// The GGUF model to read.
        input: PathBuf,
        /// The GGUF file to write.
        out: PathBuf,
    },
}

/// Runs a `sotto models` subcommand.
pub fn run(command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let store = ModelStore::open_default()?;
    match command {
        ModelsCommand::List { json } => list(&store, json),
        ModelsCommand::Fetch {
            ids,
            defaults: _,
            all,
        } => {
            let ids = if all {
                store
                    .manifest()
                    .models
                    .iter()
                    .filter(|m| m.runs_here())
                    .map(|m| m.id.clone())
                    .collect()
            } else if ids.is_empty() {
                store.manifest().defaults().map(|m| m.id.clone()).collect()
            } else {
                ids
            };
            fetch(store, ids)
        }
        ModelsCommand::Verify { ids } => verify(&store, ids),
        ModelsCommand::Dir => {
            println!("{}", store.root().display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::ConvertWhisper { dir, out } => {
            sotto_models::whisper::convert_dir(&dir, &out)?;
            sotto_models::format::check(&out, sotto_models::FileFormat::WhisperGgml)
                .map_err(|r| anyhow::anyhow!("the converted file is not valid: {r}"))?;
            println!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::WidenGguf { input, out } => {
            let done = sotto_models::gguf::widen_q5_0(&input, &out)?;
            println!(
                "wrote {}: {} Q5_0 tensors as Q8_0, {} as they were",
                out.display(),
                done.tensors,
                done.kept
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Serialize)]
struct ListRow {
    id: String,
    kind: ModelKind,
    title: String,
    license: String,
    default: bool,
    size: String,
    state: String,
    path: PathBuf,
}

fn state_text(states: &[(String, FileState)]) -> String {
    if states.iter().all(|(_, s)| *s == FileState::Missing) {
        return "not installed".into();
    }
    let problems = sotto_models::problems(states);
    if problems.is_empty() {
        "installed".into()
    } else {
        problems.join("; ")
    }
}

fn list(store: &ModelStore, json: bool) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    for m in store.manifest().models.iter().filter(|m| m.runs_here()) {
        rows.push(ListRow {
            id: m.id.clone(),
            kind: m.kind,
            title: m.title.clone(),
            license: m.license.clone(),
            default: m.default,
            size: model_size_text(m),
            state: state_text(&store.check(&m.id)?),
            path: store.dir(&m.id),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("models folder: {}", store.root().display());
    println!(
        "{:<30} {:<10} {:>9}  {:<8} STATE",
        "ID", "KIND", "SIZE", "DEFAULT"
    );
    for r in rows {
        let default = if r.default { "yes" } else { "" };
        println!(
            "{:<30} {:<10} {:>9}  {:<8} {}",
            r.id,
            r.kind.to_string(),
            r.size,
            default,
            r.state
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress bars, one per model, fed by fetch events.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// No terminal (a log, CI): bars are hidden, so say things in plain lines.
    plain: bool,
}

impl Bars {
    fn bar(&self, model: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(model.to_string())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(0));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:<28} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(model.to_string());
                bar
            })
            .clone()
    }
}

impl FetchProgress for Bars {
    fn on_event(&self, event: FetchEvent) {
        match event {
            FetchEvent::Downloading {
                model,
                source,
                done,
                total,
            } => {
                if self.plain && done == 0 {
                    eprintln!("{model}: downloading from {source}");
                }
                let bar = self.bar(&model);
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(done);
                bar.set_message(source);
            }
            FetchEvent::SourceFailed {
                model,
                file,
                source,
                reason,
            } => {
                let line = format!(
                    "{model}: {file} from {source} failed: {reason}; trying the next source"
                );
                if self.plain {
                    eprintln!("{line}");
                } else {
                    let _ = self.multi.println(line);
                }
            }
            FetchEvent::Converting { model, file } => {
                if self.plain {
                    eprintln!("{model}: converting to {file}");
                }
                self.bar(&model)
                    .set_message(format!("converting to {file}"));
            }
        }
    }
}

fn fetch(store: ModelStore, ids: Vec<String>) -> anyhow::Result<ExitCode> {
    for id in &ids {
        store.manifest().get(id)?;
    }
    let bars = Arc::new(Bars {
        multi: MultiProgress::new(),
        bars: Mutex::default(),
        plain: !std::io::stderr().is_terminal(),
    });
    let fetcher = Fetcher::new(store, bars.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut failed = 0;
    for id in &ids {
        match runtime.block_on(fetcher.fetch(id)) {
            Ok(outcome) => {
                if bars.plain {
                    eprintln!("{id}: {outcome}");
                }
                bars.bar(id).finish_with_message(outcome.to_string());
            }
            Err(e) => {
                failed += 1;
                bars.bar(id).abandon_with_message("failed");
                eprintln!("error: {id}: {e}");
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} models could not be installed", ids.len());
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{} models ready in {}",
        ids.len(),
        fetcher.store().root().display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(store: &ModelStore, ids: Vec<String>) -> anyhow::Result<ExitCode> {
    let explicit = !ids.is_empty();
    let ids: Vec<String> = if explicit {
        ids
    } else {
        store
            .manifest()
            .models
            .iter()
            .filter(|m| m.runs_here())
            .filter(|m| m.default || store.dir(&m.id).exists())
            .map(|m| m.id.clone())
            .collect()
    };
    let mut bad = 0;
    for id in &ids {
        let states = store.verify(id)?;
        let ok = states.iter().all(|(_, s)| *s == FileState::Ready);
        let size = human_bytes(store.disk_usage(id)?);
        if ok {
            println!("ok        {id:<30} {size:>9}  verified");
        } else {
            bad += 1;
            println!("PROBLEM   {id:<30} {size:>9}  {}", state_text(&states));
        }
    }
    if bad > 0 {
        println!("{bad} of {} models need `sotto models fetch`", ids.len());
        Ok(ExitCode::FAILURE)
    } else {
        println!("all {} models present and verified", ids.len());
        Ok(ExitCode::SUCCESS)
    }
}
