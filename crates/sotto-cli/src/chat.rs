//! `sotto chat "TEXT"`: one question to a language model, the answer streamed to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sotto_llm::http::{HttpConfig, OfflineSwitch};
use sotto_llm::keys::KeyStore;
use sotto_llm::local::{LocalConfig, LocalLlm};
use sotto_llm::providers::{self, CloudSetup, KeySource};
use sotto_llm::{CancellationToken, ChatRequest, Chunk, Llm, Message, Role, Sampling};
use sotto_models::ModelStore;

/// `sotto chat` options.
#[derive(Args)]
pub struct ChatArgs {
    /// The question.
    text: String,
    /// Who answers: `local`, or a provider id (openai, anthropic, gemini, openrouter,
    /// groq, deepseek, ollama, lmstudio, vllm).
    #[arg(long, default_value = providers::LOCAL)]
    provider: String,
    /// The model: for `local` an installed model id or a .gguf file; for a provider, its
    /// model name.
    #[arg(long)]
    model: Option<String>,
    /// The provider's base URL, to reach a proxy or a server elsewhere.
    #[arg(long)]
    base_url: Option<String>,
    /// With a cloud provider: answer with the local model if it fails or is slow.
    #[arg(long)]
    fallback: bool,
    /// Never contact a cloud provider.
    #[arg(long)]
    offline: bool,
    /// The system prompt (persona).
    #[arg(long, default_value = "You are a helpful assistant.")]
    system: String,
    /// Randomness, 0 for the most likely answer.
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Nucleus sampling.
    #[arg(long, default_value_t = 0.9)]
    top_p: f32,
    /// The longest answer, in tokens.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// CPU threads for the local model (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs `sotto chat`.
pub fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(chat(args))
}

fn local_llm(model: Option<&str>, threads: Option<usize>) -> anyhow::Result<LocalLlm> {
    let default = sotto_models::default_model(sotto_models::ModelKind::Llm);
    let model = model.unwrap_or(&default);
    let path = if model.ends_with(".gguf") {
        PathBuf::from(model)
    } else {
        ModelStore::open_default()?
            .require(model)?
            .main_file()
            .to_path_buf()
    };
    let mut config = LocalConfig::new(path)?;
    config.threads = threads;
    Ok(LocalLlm::new(config))
}

fn provider(args: &ChatArgs, offline: &OfflineSwitch) -> anyhow::Result<Arc<dyn Llm>> {
    if args.provider == providers::LOCAL {
        return Ok(Arc::new(local_llm(args.model.as_deref(), args.threads)?));
    }
    let preset = providers::require(&args.provider)?;
    // Unlike the app, the CLI goes on without a key: the provider's own answer says why.
    let key = match providers::find_key(preset, &KeyStore::default()) {
        Ok(Some((key, source))) => {
            if source == KeySource::Environment {
                eprintln!("(using the key from ${})", preset.key_env.unwrap_or("?"));
            }
            Some(key)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    };
    let setup = CloudSetup {
        preset,
        base_url: args.base_url.as_deref(),
        model: args.model.as_deref(),
        http: HttpConfig::default(),
    };
    let backup: Option<Arc<dyn Llm>> = match args.fallback {
        true => Some(Arc::new(local_llm(None, args.threads)?)),
        false => None,
    };
    Ok(providers::connect(setup, key, offline, backup)?)
}

async fn chat(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let offline = OfflineSwitch::default();
    offline.set(args.offline);
    let llm = provider(&args, &offline)?;
    let request = ChatRequest {
        messages: vec![
            Message {
                role: Role::System,
                content: args.system.clone(),
            },
            Message {
                role: Role::User,
                content: args.text.clone(),
            },
        ],
        sampling: Sampling {
            temperature: args.temperature,
            top_p: args.top_p,
            max_tokens: args.max_tokens,
            ..Sampling::default()
        },
    };
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let started = Instant::now();
    let mut first_token: Option<Duration> = None;
    let mut answer = llm.chat(request, cancel);
    let mut stdout = std::io::stdout();
    while let Some(chunk) = answer.next().await {
        match chunk? {
            Chunk::Text(text) => {
                first_token.get_or_insert_with(|| started.elapsed());
                // A closed stdout (`| head`) ends the answer; nothing to report.
                if stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Chunk::FellBack { from, to, reason } => {
                eprintln!("({from} failed: {reason}; {to} answers instead)");
            }
            Chunk::Done(finish) => {
                let _ = writeln!(stdout);
                let total = started.elapsed();
                let tokens = finish.usage.map(|u| u.completion_tokens).unwrap_or(0);
                let generating = total.saturating_sub(first_token.unwrap_or(total));
                let rate = if generating.as_secs_f64() > 0.0 && tokens > 1 {
                    format!(
                        ", {:.0} tok/s",
                        f64::from(tokens - 1) / generating.as_secs_f64()
                    )
                } else {
                    String::new()
                };
                eprintln!(
                    "[{}: {:?}, {tokens} tokens, first token {} ms, total {} ms{rate}]",
                    finish.provider,
                    finish.reason,
                    first_token.unwrap_or(total).as_millis(),
                    total.as_millis(),
                );
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    anyhow::bail!("the answer ended without finishing")
}
