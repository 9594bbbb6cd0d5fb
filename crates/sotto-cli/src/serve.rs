//! `sotto serve`: the local API (docs/API.md) on loopback, answering with the models the
//! user's settings choose, until Ctrl-C. With `--assistant` it also runs the live
//! assistant (microphone to speakers, or `--input` clips to an `--out` file) that
//! `GET /v1/assistant` watches and drives.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sotto_api::voices::StoreVoices;
use sotto_api::{ApiConfig, ApiEngines, Limits, LiveAssistant, ScreenPolicy, Server};
use sotto_audio::capture::Microphone;
use sotto_audio::{ListenMode, Pace, Player, SpokenClips};
use sotto_core::assemble::{self, Launch};
use sotto_core::budget::CpuBudget;
use sotto_core::settings::Settings;
use sotto_core::{Assistant, Command};
use sotto_llm::keys::KeyStore;
use sotto_models::ModelStore;
use sotto_stt::{SpeechToText, SttConfig, WhisperStt};

/// `sotto serve` options.
#[derive(Args)]
pub struct ServeArgs {
    /// The port on 127.0.0.1 and ::1 (0: any free one; the one taken is printed and
    /// written to `api-port` next to the token). Default: the settings' (7377).
    #[arg(long)]
    port: Option<u16>,
    /// Text that tries to override the assistant's instructions: `refuse` it, or `warn`
    /// (let it through with a warning). Default: the settings' (refuse).
    #[arg(long)]
    screen: Option<String>,
    /// Print the API token (for scripts) and exit.
    #[arg(long)]
    print_token: bool,
    /// Replace the API token with a new one (clients with the old one are refused), print
    /// it and exit.
    #[arg(long)]
    regenerate_token: bool,
    /// Also run the live assistant, for `GET /v1/assistant`: it listens to the microphone
    /// and answers on the speakers of the settings (or `--input` and `--out`).
    #[arg(long)]
    assistant: bool,
    /// With `--assistant`: instead of the microphone, a WAV file (or a folder of them,
    /// in name order) spoken into a virtual microphone each time listening starts.
    #[arg(long, requires = "assistant")]
    input: Option<PathBuf>,
    /// With `--assistant`: write the spoken answers to this WAV file (at real-time pace)
    /// instead of playing them.
    #[arg(long, requires = "assistant")]
    out: Option<PathBuf>,
    /// With `--assistant`: how questions are opened and closed: `ptt` (a client's
    /// start_listening and stop_listening) or `handsfree` (the voice finds them). Default:
    /// the settings' mode.
    #[arg(long, requires = "assistant")]
    mode: Option<ListenMode>,
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
    let screen = match args.screen.as_deref() {
        None => None,
        Some("refuse") => Some(ScreenPolicy::Refuse),
        Some("warn") => Some(ScreenPolicy::Warn),
        Some(other) => anyhow::bail!("--screen takes refuse or warn, not {other:?}"),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args, screen, token, &token_path))
}

/// The running live assistant and what keeps its input open.
struct Live {
    assistant: Arc<Assistant>,
    /// Held while the assistant runs: dropping it closes the microphone.
    _input: Input,
}

/// Where the live assistant's voice comes from.
enum Input {
    /// The microphone of the settings, reopened whenever it is lost.
    Microphone {
        /// Held: dropping it closes the device.
        _device: Microphone,
    },
    /// `--input`: the next clip at each start of listening.
    Clips(Arc<SpokenClips>),
}

async fn serve(
    args: ServeArgs,
    screen: Option<ScreenPolicy>,
    token: String,
    token_path: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let mut settings = match Settings::default_path() {
        Some(path) => {
            let loaded = Settings::load(&path);
            for problem in &loaded.reset {
                eprintln!("warning: {problem}");
            }
            loaded.settings
        }
        None => Settings::default(),
    };
    if let Some(mode) = args.mode {
        settings.mode = mode;
    }
    let store = ModelStore::open_default()?;
    let threads = CpuBudget::detect().threads_from_env();
    let (stt, llm, live) = if args.assistant {
        let (live, relay, stt, llm) = start_assistant(&store, &settings, &args).await?;
        (stt, llm, Some((live, relay)))
    } else {
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
        (Arc::new(stt) as Arc<dyn SpeechToText>, llm, None)
    };
    let engines = ApiEngines {
        llm,
        stt,
        live: live.as_ref().map(|(_, relay)| Arc::clone(relay)),
        stt_model: settings.stt_model.clone(),
        llm_model: settings.llm_model.clone(),
        voices: Arc::new(StoreVoices::new(store, threads.voice)),
        default_voice: settings.voice.clone(),
    };
    let server = Server::start(
        ApiConfig {
            port: args.port.unwrap_or(settings.api_port),
            token,
            limits: Limits::default(),
            screen: screen.unwrap_or(settings.api_screen),
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
    if let Some((live, _relay)) = live {
        live.assistant.send(Command::Shutdown);
        if let Ok(assistant) = Arc::try_unwrap(live.assistant) {
            assistant.finished().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the live assistant of `settings` and the relay the API drives it through;
/// returns them with its speech to text and language model, which the API shares.
async fn start_assistant(
    store: &ModelStore,
    settings: &Settings,
    args: &ServeArgs,
) -> anyhow::Result<(
    Live,
    Arc<LiveAssistant>,
    Arc<dyn SpeechToText>,
    Arc<dyn sotto_llm::Llm>,
)> {
    let player = Arc::new(match &args.out {
        Some(path) => Player::wav(path, 24_000, Pace::RealTime)?,
        None => Player::speaker(settings.speaker.as_deref()).map_err(|e| {
            anyhow::anyhow!(
                "{e}. Connect one, or pass --out REPLY.wav to write the answers to a file"
            )
        })?,
    });
    let (input, events) = match &args.input {
        Some(path) => {
            let (tx, events) = std::sync::mpsc::sync_channel(256);
            (Input::Clips(Arc::new(SpokenClips::open(path, tx)?)), events)
        }
        None => {
            let (microphone, opened, events) =
                Microphone::start(settings.microphone.clone()).context("cannot start listening")?;
            if let Err(e) = opened {
                // Kept open: one plugged in later is picked up.
                eprintln!("warning: {e}; listening starts when a microphone is connected");
            }
            (
                Input::Microphone {
                    _device: microphone,
                },
                events,
            )
        }
    };
    let launch = Launch {
        intents: assemble::default_intents_path(),
        ..Launch::new(player, events)
    };
    let started = assemble::start(store, settings, launch)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let assistant = Arc::new(started.assistant);
    let clips = match &input {
        Input::Clips(clips) => Some(Arc::clone(clips)),
        Input::Microphone { .. } => None,
    };
    let commanded = Arc::downgrade(&assistant);
    let relay = Arc::new(LiveAssistant::new(move |command| {
        if let (Command::StartListening, Some(clips)) = (&command, &clips) {
            clips.speak_next();
        }
        if let Some(assistant) = commanded.upgrade() {
            assistant.send(command);
        }
    }));
    relay.reset(settings.mode.is_hands_free());
    relay.follow(started.events);
    eprintln!(
        "the live assistant ({}) is at GET /v1/assistant",
        started.answers
    );
    Ok((
        Live {
            assistant,
            _input: input,
        },
        relay,
        started.stt,
        started.llm,
    ))
}
