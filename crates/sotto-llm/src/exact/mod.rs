//! Exact answers: arithmetic and unit conversions worked out, the time and the date read
//! from the clock, not guessed.
//!
//! A small language model says "There are 7 hours in a week." with confidence. [`Exact`]
//! wraps any [`Llm`]: when the question is a sum ("What is 20 percent of 150?"), a
//! conversion ("How many ounces are in a pound?", "What is zero degrees Celsius in
//! Fahrenheit?") or a follow-up on the previous one ("Now divide it by 5.", "And in a
//! day?"), or asks the time or the date ("What time is it?", "What's today's date?"), it
//! answers at once with the exact figure in one spoken sentence; anything else,
//! or any question with a word it does not understand, goes to the model unchanged.
//! Follow-ups are worked out from the conversation's earlier questions, so the wrapper
//! keeps no state of its own.

mod clock;
mod parse;
mod units;
mod words;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use crate::{Answer, CancellationToken, ChatRequest, Chunk, Finish, Llm, Message, Role};
use sotto_llm_protocol::FinishReason;

/// [`Finish::provider`] of an answer worked out here.
pub const PROVIDER: &str = "exact";

/// The exact answer to the conversation's last question, when it is arithmetic, a unit
/// conversion, or the time or date on this computer's clock; `None` when it is for the
/// language model.
pub fn answer(messages: &[Message]) -> Option<String> {
    answer_at(messages, &chrono::Local::now().fixed_offset())
}

/// [`answer`] with the clock reading `now`.
pub fn answer_at(messages: &[Message], now: &DateTime<FixedOffset>) -> Option<String> {
    let questions: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .collect();
    let (last, earlier) = questions.split_last()?;
    if messages.last().is_some_and(|m| m.role != Role::User) {
        return None;
    }
    // What each earlier question leaves for the next: a question the model answered
    // leaves nothing ("that" after it is the model's to understand).
    let context = earlier.iter().fold(parse::Context::default(), |before, q| {
        parse::reply(q, before, now)
            .map(|r| r.context)
            .unwrap_or_default()
    });
    parse::reply(last, context, now).map(|r| r.text)
}

/// A language model with exact arithmetic and conversions in front of it.
pub struct Exact {
    model: Arc<dyn Llm>,
}

impl Exact {
    /// Answers sums and conversions itself; everything else goes to `model`.
    pub fn new(model: Arc<dyn Llm>) -> Exact {
        Exact { model }
    }
}

impl Llm for Exact {
    fn name(&self) -> &str {
        self.model.name()
    }

    fn is_cloud(&self) -> bool {
        self.model.is_cloud()
    }

    fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Answer {
        let Some(text) = answer(&request.messages) else {
            return self.model.chat(request, cancel);
        };
        tracing::debug!("answered exactly: {text}");
        let (tx, answer) = Answer::channel();
        let done = Finish {
            reason: FinishReason::Stop,
            usage: None,
            provider: PROVIDER.to_string(),
        };
        // A fresh channel holds 256 items: both fit without waiting.
        let _ = tx.try_send(Ok(Chunk::Text(text)));
        let _ = tx.try_send(Ok(Chunk::Done(done)));
        answer
    }

    fn warm_up(&self, prefix: Vec<Message>) {
        self.model.warm_up(prefix);
    }

    fn read_ahead(&self, messages: Vec<Message>, cancel: CancellationToken) {
        self.model.read_ahead(messages, cancel);
    }
}
