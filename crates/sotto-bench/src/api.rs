//! The local API's overhead (`cargo xtask bench api`): the same engines called directly
//! and through HTTP on loopback, alternating, on the same inputs.
//!
//! - Transcription: jfk.wav (11 s) with whisper (the default model), `SpeechToText::
//!   transcribe` on the decoded samples against `POST /v1/audio/transcriptions` with the
//!   WAV file (upload, WAV parsing and resampling included, as a client pays them).
//! - Chat: time to the first token of the default local model, `Llm::chat` against a
//!   streamed `POST /v1/chat/completions` (time to the first content chunk).
//! - Then a flood of requests during voice turns ([`crate::api_flood`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sotto_api::voices::StoreVoices;
use sotto_api::{ApiConfig, ApiEngines, Limits, ScreenPolicy, Server};
use sotto_core::settings::Settings;
use sotto_llm::keys::KeyStore;
use sotto_llm::{CancellationToken, ChatRequest, Chunk, Message, Role, Sampling};
use sotto_models::ModelStore;
use sotto_stt::{CancelFlag, SpeechToText, SttConfig, WhisperStt};

use crate::quantile;

/// Runs of each kind, after one warm-up each.
const RUNS: usize = 10;

const TOKEN: &str = "sotto-bench-token-0123456789abcdef0123456789";

/// Runs the API overhead benchmark.
pub fn run() -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    runtime.block_on(measure())
}

async fn measure() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = ModelStore::open_default()?;
    let settings = Settings {
        provider: sotto_llm::providers::LOCAL.into(),
        ..Settings::default()
    };
    let threads = sotto_core::budget::CpuBudget::detect().threads_from_env();
    let stt: Arc<dyn SpeechToText> = Arc::new(WhisperStt::load(
        &store,
        &settings.stt_model,
        SttConfig {
            threads: threads.stt,
            ..SttConfig::default()
        },
    )?);
    let llm =
        sotto_core::assemble::language_model(&store, &settings, KeyStore::default(), &threads)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let server = Server::start(
        ApiConfig {
            port: 0,
            token: TOKEN.into(),
            limits: Limits {
                requests_per_second: 1_000.0,
                burst: 1_000,
                ..Limits::default()
            },
            screen: ScreenPolicy::Refuse,
            persona: None,
        },
        ApiEngines {
            llm: Arc::clone(&llm),
            stt: Arc::clone(&stt),
            stt_model: settings.stt_model.clone(),
            llm_model: settings.llm_model.clone(),
            voices: Arc::new(StoreVoices::new(store.clone(), threads.voice)),
            default_voice: settings.voice.clone(),
            live: None,
        },
    )
    .await?;
    let http = reqwest::Client::new();
    let base = server.url();

    let wav_path = store.require("sample-jfk")?.main_file().to_path_buf();
    let wav = std::fs::read(&wav_path).context("jfk.wav")?;
    let samples = sotto_audio::to_mono_16k(&sotto_audio::wav::read(&wav_path)?)?;

    let mut direct_stt = Vec::new();
    let mut http_stt = Vec::new();
    for i in 0..=RUNS {
        let started = Instant::now();
        let stt2 = Arc::clone(&stt);
        let s2 = samples.clone();
        tokio::task::spawn_blocking(move || stt2.transcribe(&s2, &CancelFlag::default())).await??;
        let direct = started.elapsed();
        let started = Instant::now();
        let (content_type, body) = multipart(&wav);
        let response = http
            .post(format!("{base}/v1/audio/transcriptions"))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{}", response.text().await?);
        response.bytes().await?;
        let through = started.elapsed();
        if i > 0 {
            direct_stt.push(ms(direct));
            http_stt.push(ms(through));
        }
    }

    let question = "What is the capital of France?";
    let mut direct_llm = Vec::new();
    let mut http_llm = Vec::new();
    for i in 0..=RUNS {
        let started = Instant::now();
        let request = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                content: question.into(),
            }],
            sampling: Sampling {
                temperature: 0.0,
                max_tokens: 8,
                ..Sampling::default()
            },
        };
        let cancel = CancellationToken::new();
        let mut answer = llm.chat(request, cancel.clone());
        let mut first = None;
        while let Some(chunk) = answer.next().await {
            if let Chunk::Text(_) = chunk? {
                first.get_or_insert_with(|| started.elapsed());
            }
        }
        let direct = first.context("no token")?;
        let started = Instant::now();
        let mut response = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(TOKEN)
            .json(&json!({"stream": true, "temperature": 0, "max_tokens": 8,
                "messages": [{"role": "user", "content": question}]}))
            .send()
            .await?;
        let mut first = None;
        let mut seen = String::new();
        while let Some(bytes) = response.chunk().await? {
            seen.push_str(&String::from_utf8_lossy(&bytes));
            // The first chunk carries the role; the first with text is the first token.
            if first.is_none() && has_text(&seen) {
                first = Some(started.elapsed());
            }
        }
        let through = first.context("no content chunk")?;
        if i > 0 {
            direct_llm.push(ms(direct));
            http_llm.push(ms(through));
        }
    }
    server.shutdown(Duration::from_secs(5)).await;

    let p50 = |v: &[f64]| quantile(v, 0.5);
    println!("\n### The local API's overhead ({RUNS} runs each, alternating)\n");
    println!("| what | direct p50 | through HTTP p50 | added |");
    println!("|---|---|---|---|");
    println!(
        "| transcription, jfk.wav (11 s) | {:.1} ms | {:.1} ms | {:+.1} ms |",
        p50(&direct_stt),
        p50(&http_stt),
        p50(&http_stt) - p50(&direct_stt)
    );
    println!(
        "| chat, first token | {:.1} ms | {:.1} ms | {:+.1} ms |",
        p50(&direct_llm),
        p50(&http_llm),
        p50(&http_llm) - p50(&direct_llm)
    );
    eprintln!("bench: transcription direct {direct_stt:?}, http {http_stt:?}");
    eprintln!("bench: first token direct {direct_llm:?}, http {http_llm:?}");
    drop(llm);
    crate::api_flood::measure(&store).await
}

/// Whether the SSE text so far has a chunk whose `content` is not empty.
fn has_text(sse: &str) -> bool {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
        .any(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The multipart body an OpenAI client sends for a transcription.
fn multipart(wav: &[u8]) -> (String, Vec<u8>) {
    let boundary = "sotto-bench-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"jfk.wav\"\r\nContent-Type: audio/wav\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(wav);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
