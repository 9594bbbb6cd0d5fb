//! The local language models: worker start, time to first token, generation speed, and
//! what reusing the conversation's KV cache saves over a five-turn conversation.
//!
//! Times are taken where the voice turn sees them: from `Llm::chat` to the first text
//! chunk, through the worker process and its pipes.

use std::time::{Duration, Instant};

use serde::Serialize;
use sotto_llm::local::{LocalConfig, LocalLlm};
use sotto_llm::{CancellationToken, ChatRequest, Chunk, Llm, Message, Role, Sampling};
use sotto_models::ModelStore;

use crate::quantile;

/// Short questions of the kind a voice assistant gets.
const QUESTIONS: [&str; 6] = [
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky on a clear day?",
    "Give me a tip for sleeping better.",
    "What is two plus two?",
    "Name a planet in our solar system.",
];

/// A conversation whose turns build on each other.
const CONVERSATION: [&str; 5] = [
    "What is the capital of France?",
    "What language do people speak there?",
    "Name a famous museum in that city.",
    "What is a famous painting in it?",
    "Thank you, that is all.",
];

const SYSTEM: &str = "You are a helpful assistant.";

#[derive(Serialize)]
struct ModelRow {
    model: String,
    start_ms_p50: f64,
    first_token_ms_p50: f64,
    first_token_ms_p95: f64,
    tokens_per_s_p50: f64,
}

#[derive(Serialize)]
struct TurnRow {
    model: String,
    turn: usize,
    prompt_tokens: u32,
    cached_tokens_reuse: u32,
    first_token_ms_reuse: f64,
    first_token_ms_no_reuse: f64,
}

/// One answer, timed.
struct Timed {
    text: String,
    first_token: Duration,
    total: Duration,
    prompt_tokens: u32,
    cached_tokens: u32,
    completion_tokens: u32,
}

async fn timed(llm: &LocalLlm, messages: Vec<Message>, max_tokens: u32) -> anyhow::Result<Timed> {
    let request = ChatRequest {
        messages,
        sampling: Sampling {
            temperature: 0.0,
            max_tokens,
            seed: Some(1),
            ..Sampling::default()
        },
    };
    let started = Instant::now();
    let mut first_token = None;
    let mut text = String::new();
    let mut answer = llm.chat(request, CancellationToken::new());
    while let Some(chunk) = answer.next().await {
        match chunk? {
            Chunk::Text(t) => {
                first_token.get_or_insert_with(|| started.elapsed());
                text.push_str(&t);
            }
            Chunk::FellBack { .. } => {}
            Chunk::Done(finish) => {
                let usage = finish.usage.unwrap_or_default();
                let total = started.elapsed();
                return Ok(Timed {
                    text,
                    first_token: first_token.unwrap_or(total),
                    total,
                    prompt_tokens: usage.prompt_tokens,
                    cached_tokens: usage.cached_tokens,
                    completion_tokens: usage.completion_tokens,
                });
            }
        }
    }
    anyhow::bail!("the answer ended without finishing")
}

fn message(role: Role, content: &str) -> Message {
    Message {
        role,
        content: content.to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn config(store: &ModelStore, id: &str, reuse_prefix: bool) -> anyhow::Result<LocalConfig> {
    let mut config = LocalConfig::new(store.require(id)?.main_file())?;
    config.n_ctx = 4096;
    config.reuse_prefix = reuse_prefix;
    Ok(config)
}

/// Runs the LLM benchmark and prints its tables.
pub fn run() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(measure())
}

async fn measure() -> anyhow::Result<()> {
    let store = ModelStore::open_default()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut models = Vec::new();
    let mut turns = Vec::new();
    // Every language model installed by default, the one used first.
    let ids: Vec<String> = store
        .manifest()
        .defaults()
        .filter(|m| m.kind == sotto_models::ModelKind::Llm)
        .map(|m| m.id.clone())
        .collect();
    for id in &ids {
        let id = id.as_str();
        // Worker start: spawn to `ready` (model load included; the file is in the page
        // cache after the first run, as it is on a user's second start).
        let mut starts = Vec::new();
        for _ in 0..4 {
            let llm = LocalLlm::new(config(&store, id, true)?);
            let started = Instant::now();
            llm.start().await?;
            starts.push(ms(started.elapsed()));
        }
        starts.remove(0);

        let llm = LocalLlm::new(config(&store, id, true)?);
        llm.start().await?;
        timed(&llm, vec![message(Role::User, "Hello")], 8).await?;
        let (mut first, mut rates) = (Vec::new(), Vec::new());
        for q in QUESTIONS {
            let t = timed(
                &llm,
                vec![message(Role::System, SYSTEM), message(Role::User, q)],
                64,
            )
            .await?;
            first.push(ms(t.first_token));
            let generating = t.total.saturating_sub(t.first_token).as_secs_f64();
            if t.completion_tokens > 1 && generating > 0.0 {
                rates.push(f64::from(t.completion_tokens - 1) / generating);
            }
        }
        models.push(ModelRow {
            model: id.to_string(),
            start_ms_p50: quantile(&starts, 0.5),
            first_token_ms_p50: quantile(&first, 0.5),
            first_token_ms_p95: quantile(&first, 0.95),
            tokens_per_s_p50: quantile(&rates, 0.5),
        });
        drop(llm);

        // The same five-turn conversation with the prefix cache on, then off. The
        // answers of the first run are the history of both, so the prompts match.
        let reuse = LocalLlm::new(config(&store, id, true)?);
        let fresh = LocalLlm::new(config(&store, id, false)?);
        reuse.start().await?;
        fresh.start().await?;
        let mut history = vec![message(Role::System, SYSTEM)];
        for (i, q) in CONVERSATION.iter().enumerate() {
            history.push(message(Role::User, q));
            let on = timed(&reuse, history.clone(), 48).await?;
            let off = timed(&fresh, history.clone(), 48).await?;
            turns.push(TurnRow {
                model: id.to_string(),
                turn: i + 1,
                prompt_tokens: on.prompt_tokens,
                cached_tokens_reuse: on.cached_tokens,
                first_token_ms_reuse: ms(on.first_token),
                first_token_ms_no_reuse: ms(off.first_token),
            });
            history.push(message(Role::Assistant, &on.text));
        }
    }

    println!("\n### Local LLM: llama.cpp worker, {threads} threads, greedy\n");
    println!("| model | worker start (p50) | first token p50 | first token p95 | tokens/s (p50) |");
    println!("|---|---|---|---|---|");
    for m in &models {
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} |",
            m.model, m.start_ms_p50, m.first_token_ms_p50, m.first_token_ms_p95, m.tokens_per_s_p50
        );
    }
    println!("\n#### Five-turn conversation: KV prefix reuse on and off\n");
    println!("| model | turn | prompt tokens | reused from cache | first token, reuse on | first token, reuse off |");
    println!("|---|---|---|---|---|---|");
    for t in &turns {
        println!(
            "| {} | {} | {} | {} | {:.0} ms | {:.0} ms |",
            t.model,
            t.turn,
            t.prompt_tokens,
            t.cached_tokens_reuse,
            t.first_token_ms_reuse,
            t.first_token_ms_no_reuse
        );
    }
    println!(
        "\n```json\n{}\n```",
        serde_json::to_string_pretty(&serde_json::json!({"models": models, "turns": turns}))?
    );
    Ok(())
}
