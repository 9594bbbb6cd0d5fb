//! `sotto serve`: the local API (docs/API.md) on loopback, answering with the models the
//! user's settings choose, until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sotto_api::voices::StoreVoices;
use sotto_api::{ApiConfig, ApiEngines, Limits, ScreenPolicy, Server};
use sotto_core::budget::CpuBudget;
use sotto_core::settings::Settings;
use sotto_llm::keys::KeyStore;
use sotto_models::ModelStore;
use sotto_stt::{SttConfig, WhisperStt};

/// `sotto serve` options.
#[derive(Args)]
pub struct ServeArgs {
    /// The port on 127.0.0.1 and ::1 (0: any free one; the one taken is printed and
    /// written to `api-port` next to the token).
    #[arg(long, default_value_t = sotto_api::DEFAULT_PORT)]
    port: u16,
    /// Text that tries to override the assistant's instructions: `refuse` it, or `warn`
    /// (let it through with a warning).
    #[arg(long, default_value = "refuse")]
    screen: String,
    /// Print the API token (for scripts) and exit.
    #[arg(long)]
    print_token: bool,
    /// Replace the API token with a new one (clients with the old one are refused), print
    /// it and exit.
    #[arg(long)]
    regenerate_token: bool,
}

/// Runs `sotto serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let token_path = sotto_api::token::default_path()?;
    if args.regenerate_token {
        println!("{}", sotto_api::token::regenerate(&token_path)?);
        return Ok(ExitCode::SUCCESS);
    }
    let token = sotto_api::token::load_or_create(&token_path)?;
    if args.print_token {
        println!("{token}");
        return Ok(ExitCode::SUCCESS);
    }
    let screen = match args.screen.as_str() {
        "refuse" => ScreenPolicy::Refuse,
        "warn" => ScreenPolicy::Warn,
        other => anyhow::bail!("--screen takes refuse or warn, not {other:?}"),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args.port, screen, token, &token_path))
}

async fn serve(
    port: u16,
    screen: ScreenPolicy,
    token: String,
    token_path: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let settings = match Settings::default_path() {
        Some(path) => {
            let loaded = Settings::load(&path);
            for problem in &loaded.reset {
                eprintln!("warning: {problem}");
            }
            loaded.settings
        }
        None => Settings::default(),
    };
    let store = ModelStore::open_default()?;
    let threads = CpuBudget::detect().threads_from_env();
    let stt = WhisperStt::load(
        &store,
        &settings.stt_model,
        SttConfig {
            threads: threads.stt,
            ..SttConfig::default()
        },
    )?;
    let llm =
        sotto_core::assemble::language_model(&store, &settings, KeyStore::default(), &threads)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let engines = ApiEngines {
        llm,
        stt: Arc::new(stt),
        stt_model: settings.stt_model.clone(),
        llm_model: settings.llm_model.clone(),
        voices: Arc::new(StoreVoices::new(store, threads.voice)),
        default_voice: settings.voice.clone(),
    };
    let server = Server::start(
        ApiConfig {
            port,
            token,
            limits: Limits::default(),
            screen,
            persona: Some(settings.persona.clone()).filter(|p| !p.trim().is_empty()),
        },
        engines,
    )
    .await?;
    // The address first, alone on its line: scripts read it.
    println!("{}", server.url());
    std::io::stdout().flush()?;
    let port_file = sotto_api::token::write_port(token_path, server.port())?;
    eprintln!(
        "token in {} (send it as `Authorization: Bearer <token>`); port in {}. Ctrl-C stops.",
        token_path.display(),
        port_file.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    server.shutdown(Duration::from_secs(5)).await;
    Ok(ExitCode::SUCCESS)
}
