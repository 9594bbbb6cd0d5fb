//! Why an answer failed, worded for the person who has to fix it.

use std::time::Duration;

/// Why a language model could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// The provider rejected the API key.
    #[error("{provider} rejected the API key ({status}). Check the key in Settings.")]
    Unauthorized {
        /// The provider.
        provider: String,
        /// 401 or 403.
        status: u16,
    },
    /// No API key is stored for a provider that needs one.
    #[error("{provider} needs an API key. Add it in Settings.")]
    MissingKey {
        /// The provider.
        provider: String,
    },
    /// Too many requests, still after retrying.
    #[error("{provider} is rate-limiting requests (429){}. Try again shortly.", retry_after.map(|d| format!("; it asked to wait {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The provider.
        provider: String,
        /// How long the provider asked to wait.
        retry_after: Option<Duration>,
    },
    /// The provider failed on its side (5xx), still after retrying.
    #[error("{provider} had a server error ({status}): {message}")]
    Server {
        /// The provider.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The provider's message, if it gave one.
        message: String,
    },
    /// The provider refused the request (4xx other than auth and rate limits).
    #[error("{provider} refused the request ({status}): {message}")]
    Refused {
        /// The provider.
        provider: String,
        /// HTTP status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The provider could not be reached.
    #[error("cannot reach {provider}: {reason}. Check the network or the provider's address.")]
    Connect {
        /// The provider.
        provider: String,
        /// Why.
        reason: String,
    },
    /// The provider went quiet.
    #[error("{provider} did not answer in time (no {stage} within {} ms)", after.as_millis())]
    Timeout {
        /// The provider.
        provider: String,
        /// What did not arrive: "first token" or "next token".
        stage: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The provider's stream broke its own protocol.
    #[error("{provider} sent a stream Sotto cannot read: {reason}")]
    Malformed {
        /// The provider.
        provider: String,
        /// What was wrong.
        reason: String,
    },
    /// Offline mode is on and the provider is in the cloud.
    #[error("offline mode is on, so {provider} (a cloud provider) was not contacted")]
    Offline {
        /// The provider.
        provider: String,
    },
    /// The local model's worker process failed.
    #[error("the local model failed: {0}")]
    Worker(String),
}

impl LlmError {
    /// True when trying again later (or elsewhere) may work: rate limits, server errors,
    /// timeouts, network trouble and a crashed worker. A bad key or a refused request
    /// will fail the same way again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited { .. }
                | LlmError::Server { .. }
                | LlmError::Connect { .. }
                | LlmError::Timeout { .. }
                | LlmError::Malformed { .. }
                | LlmError::Worker(_)
        )
    }
}
