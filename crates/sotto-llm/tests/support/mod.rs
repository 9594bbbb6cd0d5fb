//! Shared test helpers: a scripted provider server, the providers' wire formats, and
//! requests to send.

#![allow(dead_code)]

pub mod formats;
pub mod server;

use sotto_llm::{Answer, ChatRequest, Chunk, LlmError, Message, Role, Sampling};

/// A short conversation with a system prompt.
pub fn question(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message {
                role: Role::System,
                content: "You are a helpful assistant.".into(),
            },
            Message {
                role: Role::User,
                content: text.into(),
            },
        ],
        sampling: Sampling {
            temperature: 0.0,
            max_tokens: 48,
            seed: Some(7),
            ..Sampling::default()
        },
    }
}

/// Everything an answer streamed, in order, until it ended.
pub async fn drain(mut answer: Answer) -> Vec<Result<Chunk, LlmError>> {
    let mut chunks = Vec::new();
    while let Some(chunk) = answer.next().await {
        chunks.push(chunk);
    }
    chunks
}

/// The text of the streamed chunks.
pub fn text_of(chunks: &[Result<Chunk, LlmError>]) -> String {
    chunks
        .iter()
        .filter_map(|c| match c {
            Ok(Chunk::Text(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The error an answer ended with, if it did.
pub fn error_of(chunks: &[Result<Chunk, LlmError>]) -> Option<LlmError> {
    chunks.iter().find_map(|c| c.as_ref().err().cloned())
}

/// Held by every test that runs the real worker, so they run one at a time. llama.cpp's
/// threads spin while they wait for each other: two workers on a 2-core machine slow each
/// other down by orders of magnitude (a cancel measured at 3 s instead of a few ms), and
/// the timing bounds would measure that contention instead of the code.
pub async fn one_worker_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}
