//! Asking a second provider when the first fails: local-first (the cloud only when the
//! local model fails), or cloud-first with the local model as the safety net. The switch
//! happens only before the first word, so the user never hears two half-answers.

use std::sync::Arc;
use std::time::Duration;

use crate::http::OfflineSwitch;
use crate::{Answer, AnswerSender, CancellationToken, ChatRequest, Chunk, Llm, LlmError, Message};

/// Which provider goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// The local model; the cloud provider if it fails.
    LocalFirst,
    /// The cloud provider; the local model if it fails, is slow to start, or is offline.
    CloudFirst,
}

/// Two providers, one answer.
pub struct Fallback {
    primary: Arc<dyn Llm>,
    backup: Arc<dyn Llm>,
    first_token_timeout: Duration,
    offline: OfflineSwitch,
}

impl Fallback {
    /// Orders `local` and `cloud` by `policy`. The first provider is abandoned when it has
    /// not produced a word within `first_token_timeout`.
    pub fn new(
        policy: Policy,
        local: Arc<dyn Llm>,
        cloud: Arc<dyn Llm>,
        first_token_timeout: Duration,
        offline: OfflineSwitch,
    ) -> Fallback {
        let (primary, backup) = match policy {
            Policy::LocalFirst => (local, cloud),
            Policy::CloudFirst => (cloud, local),
        };
        Fallback {
            primary,
            backup,
            first_token_timeout,
            offline,
        }
    }
}

impl Llm for Fallback {
    fn name(&self) -> &str {
        self.primary.name()
    }

    fn is_cloud(&self) -> bool {
        self.primary.is_cloud() || self.backup.is_cloud()
    }

    fn chat(&self, request: ChatRequest, cancel: CancellationToken) -> Answer {
        let (tx, answer) = Answer::channel();
        let (primary, backup) = (Arc::clone(&self.primary), Arc::clone(&self.backup));
        let (timeout, offline) = (self.first_token_timeout, self.offline.is_on());
        tokio::spawn(async move {
            run(primary, backup, timeout, offline, request, cancel, tx).await;
        });
        answer
    }

    fn warm_up(&self, prefix: Vec<Message>) {
        self.primary.warm_up(prefix.clone());
        self.backup.warm_up(prefix);
    }

    /// Only the provider that will most likely answer reads ahead: the primary, or the
    /// backup when the primary is a cloud one and the machine is offline.
    fn read_ahead(&self, messages: Vec<Message>, cancel: CancellationToken) {
        if self.offline.is_on() && self.primary.is_cloud() {
            self.backup.read_ahead(messages, cancel);
        } else {
            self.primary.read_ahead(messages, cancel);
        }
    }
}

async fn run(
    primary: Arc<dyn Llm>,
    backup: Arc<dyn Llm>,
    timeout: Duration,
    offline: bool,
    request: ChatRequest,
    cancel: CancellationToken,
    tx: AnswerSender,
) {
    if offline && primary.is_cloud() {
        // Not even tried: offline means no request leaves the machine.
        let reason = LlmError::Offline {
            provider: primary.name().to_string(),
        };
        switch(&*primary, backup, offline, reason, request, cancel, tx).await;
        return;
    }
    let attempt = cancel.child_token();
    let mut answer = primary.chat(request.clone(), attempt.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    // Until the first word, anything wrong means: ask the backup.
    loop {
        let next = tokio::time::timeout_at(deadline, answer.next()).await;
        let reason = match next {
            Ok(Some(Ok(Chunk::Text(text)))) => {
                if tx.send(Ok(Chunk::Text(text))).await.is_ok() {
                    forward(answer, &tx).await;
                }
                return;
            }
            Ok(Some(Ok(Chunk::Done(finish)))) => {
                let _ = tx.send(Ok(Chunk::Done(finish))).await;
                return;
            }
            Ok(Some(Ok(other @ Chunk::FellBack { .. }))) => {
                let _ = tx.send(Ok(other)).await;
                continue;
            }
            Ok(Some(Err(e))) => e,
            Ok(None) => LlmError::Malformed {
                provider: primary.name().to_string(),
                reason: "the answer ended without a word".into(),
            },
            Err(_) => {
                attempt.cancel();
                LlmError::Timeout {
                    provider: primary.name().to_string(),
                    stage: "first token",
                    after: timeout,
                }
            }
        };
        if cancel.is_cancelled() {
            // The user cancelled: not a failure, and nothing to fall back for.
            let _ = tx.send(Err(reason)).await;
            return;
        }
        switch(&*primary, backup, offline, reason, request, cancel, tx).await;
        return;
    }
}

async fn switch(
    primary: &dyn Llm,
    backup: Arc<dyn Llm>,
    offline: bool,
    reason: LlmError,
    request: ChatRequest,
    cancel: CancellationToken,
    tx: AnswerSender,
) {
    if offline && backup.is_cloud() {
        // The backup may not be asked either: the first provider's error is the answer.
        let _ = tx.send(Err(reason)).await;
        return;
    }
    tracing::info!(
        "{} failed, asking {}: {reason}",
        primary.name(),
        backup.name()
    );
    let notice = Chunk::FellBack {
        from: primary.name().to_string(),
        to: backup.name().to_string(),
        reason: reason.to_string(),
    };
    if tx.send(Ok(notice)).await.is_ok() {
        forward(backup.chat(request, cancel), &tx).await;
    }
}

async fn forward(mut answer: Answer, tx: &AnswerSender) {
    while let Some(chunk) = answer.next().await {
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
}
