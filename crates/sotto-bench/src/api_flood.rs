//! A flood of API requests against a voice turn (`cargo xtask bench api`, second table):
//! the live assistant of `sotto serve --assistant` (default local models, push-to-talk,
//! spoken questions through a virtual microphone, answers into a real-time WAV sink)
//! asked the same questions with and without 200 requests in 2 s hitting the API (its
//! default limits: 20 at once, then 10 per second), each question once each way, which
//! goes first alternating, each in a fresh conversation. Reported: voice to voice of
//! both, the median of the paired ratios, and what the flood got back.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use sotto_api::voices::StoreVoices;
use sotto_api::{ApiConfig, ApiEngines, Limits, LiveAssistant, ScreenPolicy, Server};
use sotto_audio::{AudioBuffer, Pace, Player};
use sotto_core::assemble::{self, Launch};
use sotto_core::settings::Settings;
use sotto_core::{Command, Event, TurnOutcome};
use sotto_models::ModelStore;
use tokio::sync::broadcast;

use crate::quantile;

const QUESTIONS: [&str; 10] = [
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky?",
    "What is the largest ocean?",
    "How many legs does a spider have?",
    "What do bees make?",
    "What is two plus two?",
    "Name a planet in our solar system.",
    "What language do people speak in Spain?",
    "What is the opposite of hot?",
];

const TOKEN: &str = "sotto-bench-flood-token-0123456789abcdef012345";

/// Requests in one flood, and the time they are spread over.
const FLOOD: usize = 200;
const FLOOD_OVER: Duration = Duration::from_secs(2);

/// What one flood got back.
#[derive(Default)]
struct FloodCount {
    ok: usize,
    refused: usize,
    other: usize,
}

/// Measures and prints the flood table.
pub async fn measure(store: &ModelStore) -> anyhow::Result<()> {
    let questions = crate::voice::spoken(store, &QUESTIONS)?;
    let defaults = Settings::default();
    let settings = Settings {
        provider: sotto_llm::providers::LOCAL.into(),
        temperature: 0.0,
        max_tokens: 48,
        ..defaults
    };
    let out = std::env::temp_dir().join("sotto-bench-flood-reply.wav");
    let player = Arc::new(Player::wav(&out, 24_000, Pace::RealTime)?);
    let (mic_tx, mic_rx) = mpsc::sync_channel(256);
    let (say_tx, say_rx) = mpsc::channel();
    let _mic = sotto_audio::spawn_virtual_microphone(say_rx, mic_tx)?;
    let started = assemble::start(store, &settings, Launch::new(player, mic_rx))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let assistant = Arc::new(started.assistant);
    let commanded = Arc::downgrade(&assistant);
    let live = Arc::new(LiveAssistant::new(move |command| {
        if let Some(assistant) = commanded.upgrade() {
            assistant.send(command);
        }
    }));
    let mut turns = assistant
        .subscribe()
        .ok_or_else(|| anyhow::anyhow!("the assistant stopped"))?;
    live.follow(started.events);
    let threads = sotto_core::budget::CpuBudget::detect().threads_from_env();
    let server = Server::start(
        ApiConfig {
            port: 0,
            token: TOKEN.into(),
            limits: Limits::default(),
            screen: ScreenPolicy::Refuse,
            persona: None,
        },
        ApiEngines {
            llm: started.llm,
            stt: started.stt,
            stt_model: settings.stt_model.clone(),
            llm_model: settings.llm_model.clone(),
            voices: Arc::new(StoreVoices::new(store.clone(), threads.voice)),
            default_voice: settings.voice.clone(),
            live: Some(Arc::clone(&live)),
        },
    )
    .await?;
    let base = server.url();

    // A warm-up turn, not counted.
    ask(&live, &say_tx, &questions[0], &mut turns, None).await?;
    let mut calm = Vec::new();
    let mut flooded = Vec::new();
    let mut counts = FloodCount::default();
    for (i, question) in questions.iter().enumerate() {
        for flood_first in [i % 2 == 1, i % 2 == 0] {
            if flood_first {
                let (v2v, count) = ask(&live, &say_tx, question, &mut turns, Some(&base)).await?;
                flooded.push(v2v);
                counts.ok += count.ok;
                counts.refused += count.refused;
                counts.other += count.other;
            } else {
                calm.push(ask(&live, &say_tx, question, &mut turns, None).await?.0);
            }
        }
    }
    server.shutdown(Duration::from_secs(5)).await;
    assistant.send(Command::Shutdown);

    let ratios: Vec<f64> = calm
        .iter()
        .zip(&flooded)
        .filter_map(|(c, f)| Some((*f)? / (*c)?))
        .collect();
    let answered = |v: &[Option<f64>]| v.iter().flatten().copied().collect::<Vec<_>>();
    let (calm, flooded) = (answered(&calm), answered(&flooded));
    let floods = QUESTIONS.len();
    println!("\n### A flood of requests during a voice turn ({floods} questions, each once with and once without)\n");
    println!("| | v2v p50 | v2v p95 | answered |");
    println!("|---|---|---|---|");
    println!(
        "| undisturbed | {:.0} ms | {:.0} ms | {}/{floods} |",
        quantile(&calm, 0.5),
        quantile(&calm, 0.95),
        calm.len()
    );
    println!(
        "| {FLOOD} requests in {} s | {:.0} ms | {:.0} ms | {}/{floods} |",
        FLOOD_OVER.as_secs(),
        quantile(&flooded, 0.5),
        quantile(&flooded, 0.95),
        flooded.len()
    );
    println!(
        "\nflooded / undisturbed, median of the paired ratios: x{:.3}; the floods got {} answers, {} refused (429), {} other",
        quantile(&ratios, 0.5),
        counts.ok,
        counts.refused,
        counts.other
    );
    let each: Vec<String> = ratios.iter().map(|r| format!("x{r:.2}")).collect();
    println!("each pair: {}", each.join(" "));
    Ok(())
}

/// Asks `question` in a fresh conversation as push-to-talk does (the key down, the
/// question spoken, the key up at its end), flooding the API around the key's release when
/// `flood` says where; returns voice to voice (`None`: not answered) and the flood's count.
async fn ask(
    live: &LiveAssistant,
    microphone: &mpsc::Sender<AudioBuffer>,
    question: &AudioBuffer,
    turns: &mut broadcast::Receiver<Event>,
    flood: Option<&str>,
) -> anyhow::Result<(Option<f64>, FloodCount)> {
    // Through the same relay the WebSocket uses, busy rule included.
    send(live, Command::NewConversation).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(live, Command::StartListening).await?;
    microphone.send(question.clone())?;
    let length = Duration::from_secs_f64(
        question.samples.len() as f64 / f64::from(question.sample_rate.max(1)),
    );
    // The flood starts half a second before the key goes up: it covers the wait for the
    // answer. It comes from threads of its own, as another program's would (not from the
    // runtime the assistant's tasks run on).
    let flooding = flood.map(|base| {
        let base = base.to_string();
        let lead = length.saturating_sub(Duration::from_millis(500));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                tokio::time::sleep(lead).await;
                anyhow::Ok(flood_requests(&reqwest::Client::new(), &base).await)
            })
        })
    });
    tokio::time::sleep(length + Duration::from_millis(100)).await;
    send(live, Command::StopListening).await?;
    let v2v = loop {
        match tokio::time::timeout(Duration::from_secs(60), turns.recv()).await {
            Err(_) => anyhow::bail!("no answer in 60 s"),
            Ok(Ok(Event::TurnFinished {
                outcome, timings, ..
            })) if outcome != TurnOutcome::NoSpeech => {
                break (outcome == TurnOutcome::Answered)
                    .then_some(timings.v2v_ms)
                    .flatten();
            }
            Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => anyhow::bail!("the assistant stopped"),
        }
    };
    let count = match flooding {
        Some(thread) => tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the flood's thread panicked"))??,
        None => FloodCount::default(),
    };
    // Let the answer's tail play out before the next question.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok((v2v, count))
}

/// Sends `command` through the relay, waiting (at most 10 s) while the last turn ends.
async fn send(live: &LiveAssistant, command: Command) -> anyhow::Result<()> {
    for _ in 0..100 {
        match live.send(command.clone()) {
            Ok(()) => return Ok(()),
            Err(_busy) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    anyhow::bail!("the assistant stayed busy for 10 s")
}

/// [`FLOOD`] requests for the model list, evenly over [`FLOOD_OVER`], each on its own.
async fn flood_requests(http: &reqwest::Client, base: &str) -> FloodCount {
    let every = FLOOD_OVER / FLOOD as u32;
    let mut requests = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let request = http
            .get(format!("{base}/v1/models"))
            .bearer_auth(TOKEN)
            .send();
        requests.push(tokio::spawn(async move {
            match request.await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    status
                }
                Err(_) => 0,
            }
        }));
        tokio::time::sleep(every).await;
    }
    let mut count = FloodCount::default();
    for request in requests {
        match request.await.unwrap_or(0) {
            200 => count.ok += 1,
            429 => count.refused += 1,
            _ => count.other += 1,
        }
    }
    count
}
