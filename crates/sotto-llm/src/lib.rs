//! Sotto's language models behind one streaming trait, [`Llm`].
//!
//! - [`local::LocalLlm`]: llama.cpp in the `sotto-llm-worker` process (restarted after a
//!   crash, killed on drop).
//! - [`openai::OpenAiCompatible`], [`anthropic::Anthropic`], [`gemini::Gemini`]: cloud
//!   providers over HTTP with SSE streaming, behind [`http::HttpClient`]'s timeouts,
//!   retries and offline switch.
//! - [`fallback::Fallback`]: one provider first, another when it fails or is slow.
//! - [`exact::Exact`]: arithmetic and unit conversions worked out exactly, in front of a model.
//! - [`providers`]: the providers known by id; [`keys`]: their API keys in the keychain.
//!
//! Every provider streams [`Chunk`]s through an [`Answer`] and stops when its
//! [`CancellationToken`] is cancelled.

pub mod anthropic;
pub mod context;
pub mod error;
pub mod exact;
pub mod fallback;
pub mod gemini;
pub mod http;
pub mod keys;
pub mod local;
pub mod openai;
pub mod providers;
pub mod sse;

pub use error::LlmError;
pub use sotto_llm_protocol::{FinishReason, Message, Role, Sampling, Usage};
pub use tokio_util::sync::CancellationToken;

use tokio::sync::mpsc;

/// A conversation to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// System prompt first (if any), then the turns, ending with the user's.
    pub messages: Vec<Message>,
    /// Sampling settings.
    pub sampling: Sampling,
}

impl ChatRequest {
    /// The system prompt, if the conversation has one.
    pub fn system(&self) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
    }

    /// The turns without the system prompt.
    pub fn turns(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.role != Role::System)
    }
}

/// How an answer ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// Why it ended.
    pub reason: FinishReason,
    /// Token counts, when the provider reports them.
    pub usage: Option<Usage>,
    /// Which provider answered.
    pub provider: String,
}

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// More text of the answer.
    Text(String),
    /// The first choice failed before saying anything; `to` answers instead.
    FellBack {
        /// The provider that failed.
        from: String,
        /// The one answering now.
        to: String,
        /// What went wrong, for a person.
        reason: String,
    },
    /// The answer is complete. Nothing follows.
    Done(Finish),
}

/// The receiving end of a streamed answer: text chunks, then `Done` or an error.
pub struct Answer {
    rx: mpsc::Receiver<Result<Chunk, LlmError>>,
}

/// The sending end, held by the task that produces an answer.
pub type AnswerSender = mpsc::Sender<Result<Chunk, LlmError>>;

impl Answer {
    /// A connected sender and answer.
    pub fn channel() -> (AnswerSender, Answer) {
        let (tx, rx) = mpsc::channel(256);
        (tx, Answer { rx })
    }

    /// An answer that is only an error.
    pub fn failed(error: LlmError) -> Answer {
        let (tx, answer) = Answer::channel();
        // A fresh channel has room for one item.
        let _ = tx.try_send(Err(error));
        answer
    }

    /// The next chunk; `None` once the answer is over.
    pub async fn next(&mut self) -> Option<Result<Chunk, LlmError>> {
        self.rx.recv().await
    }

    /// Reads the whole answer: its text and how it ended.
    pub async fn collect(mut self) -> Result<(String, Finish), LlmError> {
        let mut text = String::new();
        while let Some(chunk) = self.next().await {
            match chunk? {
                Chunk::Text(t) => text.push_str(&t),
                Chunk::FellBack { .. } => {}
                Chunk::Done(finish) => return Ok((text, finish)),
            }
        }
        Err(LlmError::Worker(
            "the answer stream ended without finishing".into(),
        ))
    }
}

/// A language model that streams answers.
pub trait Llm: Send + Sync {
    /// The provider's name, as the user sees it ("local", "OpenAI", ...).
    fn name(&self) -> &str;

    /// True if answering sends the conversation off this machine.
    fn is_cloud(&self) -> bool;

    /// Starts answering `request`. Returns at once; the answer streams in. Cancelling
    /// `cancel` ends it promptly with [`FinishReason::Cancelled`]. Must be called inside
    /// a Tokio runtime.
    fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Answer;

    /// Gets ready for conversations that start with `prefix` (the persona), so the first
    /// question does not pay for the model's first run or for reading the prefix.
    /// Returns at once; nothing is said and no request leaves the machine. Must be called
    /// inside a Tokio runtime. Default: nothing to prepare.
    fn warm_up(&self, prefix: Vec<Message>) {
        let _ = prefix;
    }

    /// Reads ahead of a question still being spoken: `messages` are the conversation
    /// with the words heard so far as its last user message. The question, once asked,
    /// most likely begins with them, so what is read now is not read again then.
    /// Returns at once; nothing is said and no request leaves the machine; skipped while
    /// an earlier read-ahead is still being read. Cancelling `cancel` stops the reading
    /// soon (what was read stays read): the recogniser wants the cores when the user
    /// pauses. Must be called inside a Tokio runtime. Default: nothing (a cloud model
    /// reads the question on its own servers).
    fn read_ahead(&self, messages: Vec<Message>, cancel: CancellationToken) {
        let _ = (messages, cancel);
    }
}
