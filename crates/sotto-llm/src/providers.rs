//! The providers Sotto knows by name: where each lives, which wire format it speaks, its
//! default model, and where its key comes from.

use std::sync::Arc;
use std::time::Duration;

use crate::anthropic::Anthropic;
use crate::fallback::{Fallback, Policy};
use crate::gemini::Gemini;
use crate::http::{ApiKey, CloudConfig, HttpClient, HttpConfig, OfflineSwitch};
use crate::keys::{KeyError, KeyStore};
use crate::openai::OpenAiCompatible;
use crate::{Llm, LlmError};

/// The id of the local model provider.
pub const LOCAL: &str = "local";

/// The streaming protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini.
    Gemini,
}

/// A provider Sotto can be pointed at by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The id used in settings and on the command line (`openai`, `groq`, ...).
    pub id: &'static str,
    /// The name the user sees.
    pub name: &'static str,
    /// The protocol.
    pub wire: Wire,
    /// The API's base URL.
    pub base_url: &'static str,
    /// The model asked for unless the user picks another.
    pub model: &'static str,
    /// True if the provider needs an API key.
    pub needs_key: bool,
    /// The environment variable its own tools read the key from, accepted as an
    /// alternative to the keychain.
    pub key_env: Option<&'static str>,
}

/// Every cloud (or local-server) provider Sotto knows.
pub const PRESETS: &[Preset] = &[
    Preset {
        id: "openai",
        name: "OpenAI",
        wire: Wire::OpenAi,
        base_url: "https://api.openai.com/v1",
        model: "gpt-4o-mini",
        needs_key: true,
        key_env: Some("OPENAI_API_KEY"),
    },
    Preset {
        id: "anthropic",
        name: "Anthropic",
        wire: Wire::Anthropic,
        base_url: "https://api.anthropic.com",
        model: "claude-3-5-haiku-latest",
        needs_key: true,
        key_env: Some("ANTHROPIC_API_KEY"),
    },
    Preset {
        id: "gemini",
        name: "Google Gemini",
        wire: Wire::Gemini,
        base_url: "https://generativelanguage.googleapis.com",
        model: "gemini-2.0-flash",
        needs_key: true,
        key_env: Some("GEMINI_API_KEY"),
    },
    Preset {
        id: "openrouter",
        name: "OpenRouter",
        wire: Wire::OpenAi,
        base_url: "https://openrouter.ai/api/v1",
        model: "openai/gpt-4o-mini",
        needs_key: true,
        key_env: Some("OPENROUTER_API_KEY"),
    },
    Preset {
        id: "groq",
        name: "Groq",
        wire: Wire::OpenAi,
        base_url: "https://api.groq.com/openai/v1",
        model: "llama-3.1-8b-instant",
        needs_key: true,
        key_env: Some("GROQ_API_KEY"),
    },
    Preset {
        id: "deepseek",
        name: "DeepSeek",
        wire: Wire::OpenAi,
        base_url: "https://api.deepseek.com/v1",
        model: "deepseek-chat",
        needs_key: true,
        key_env: Some("DEEPSEEK_API_KEY"),
    },
    Preset {
        id: "ollama",
        name: "Ollama",
        wire: Wire::OpenAi,
        base_url: "http://localhost:11434/v1",
        model: "llama3.2",
        needs_key: false,
        key_env: None,
    },
    Preset {
        id: "lmstudio",
        name: "LM Studio",
        wire: Wire::OpenAi,
        base_url: "http://localhost:1234/v1",
        model: "default",
        needs_key: false,
        key_env: None,
    },
    Preset {
        id: "vllm",
        name: "vLLM",
        wire: Wire::OpenAi,
        base_url: "http://localhost:8000/v1",
        model: "default",
        needs_key: false,
        key_env: None,
    },
];

/// The preset with this id.
pub fn preset(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

/// The preset with this id, or a message naming the ones Sotto knows.
pub fn require(id: &str) -> Result<&'static Preset, UnknownProvider> {
    preset(id).ok_or_else(|| UnknownProvider(id.to_string()))
}

/// A provider id that no preset has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Sotto does not know the provider `{0}` (known: {known})", known = ids().join(", "))]
pub struct UnknownProvider(pub String);

/// Every provider id, the local one first, for help texts and pickers.
pub fn ids() -> Vec<&'static str> {
    std::iter::once(LOCAL)
        .chain(PRESETS.iter().map(|p| p.id))
        .collect()
}

/// Where a provider's key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The system keychain.
    Keychain,
    /// The provider's usual environment variable.
    Environment,
}

/// The key for `preset`: the keychain's, else the provider's environment variable.
/// A keychain that cannot be reached is an error only when no environment key exists.
pub fn find_key(preset: &Preset, keys: &KeyStore) -> Result<Option<(ApiKey, KeySource)>, KeyError> {
    if !preset.needs_key {
        return Ok(None);
    }
    let from_env = preset
        .key_env
        .and_then(|name| std::env::var(name).ok())
        .filter(|k| !k.trim().is_empty())
        .map(|k| (ApiKey::new(k.trim()), KeySource::Environment));
    match keys.get(preset.id) {
        Ok(Some(key)) => Ok(Some((key, KeySource::Keychain))),
        Ok(None) => Ok(from_env),
        Err(e) => from_env.map(Some).ok_or(e),
    }
}

/// Whether `url` is an address an API key may be sent to: https, or plain http to this
/// machine (a local server such as Ollama), without a user name or password in it. The
/// reason it is not, for a person (the address itself is not quoted: it may hold a secret).
pub fn check_base_url(url: &str) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| format!("is not a web address ({e})"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "must not contain a user name or password: keys are stored in the keychain".into(),
        );
    }
    let host = parsed.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("must use https: plain http to another machine would send your key and questions unencrypted".into()),
        other => Err(format!("must be an https address, not {other}:")),
    }
}

/// The provider for `preset`, with the user's base URL and model when given.
pub fn cloud_provider(
    preset: &Preset,
    base_url: Option<&str>,
    model: Option<&str>,
    key: Option<ApiKey>,
    http: HttpClient,
) -> Arc<dyn Llm> {
    let config = CloudConfig {
        name: preset.name.to_string(),
        base_url: base_url.unwrap_or(preset.base_url).to_string(),
        model: model.unwrap_or(preset.model).to_string(),
        api_key: key,
    };
    match preset.wire {
        Wire::OpenAi => Arc::new(OpenAiCompatible::new(config, http)),
        Wire::Anthropic => Arc::new(Anthropic::new(config, http)),
        Wire::Gemini => Arc::new(Gemini::new(config, http)),
    }
}

/// How long a cloud provider may take to its first word before the backup answers.
pub const CLOUD_FIRST_TOKEN_LIMIT: Duration = Duration::from_secs(4);

/// A cloud provider as the user chose it.
#[derive(Debug, Clone, Copy)]
pub struct CloudSetup<'a> {
    /// Which provider.
    pub preset: &'static Preset,
    /// Its address, when not the preset's own.
    pub base_url: Option<&'a str>,
    /// Its model, when not the preset's default.
    pub model: Option<&'a str>,
    /// Its timeouts and retries.
    pub http: HttpConfig,
}

/// The cloud provider in `setup` with `key`, obeying `offline`; with a `backup`, the
/// backup answers when the cloud fails or has said nothing after
/// [`CLOUD_FIRST_TOKEN_LIMIT`]. The one way the app and the CLI put a cloud provider together.
pub fn connect(
    setup: CloudSetup<'_>,
    key: Option<ApiKey>,
    offline: &OfflineSwitch,
    backup: Option<Arc<dyn Llm>>,
) -> Result<Arc<dyn Llm>, LlmError> {
    if let Some(url) = setup.base_url {
        check_base_url(url).map_err(|why| LlmError::Connect {
            provider: setup.preset.name.to_string(),
            reason: format!("its address {why}"),
        })?;
    }
    let http = HttpClient::new(setup.http, offline.clone())?;
    let remote = cloud_provider(setup.preset, setup.base_url, setup.model, key, http);
    Ok(match backup {
        None => remote,
        Some(local) => Arc::new(Fallback::new(
            Policy::CloudFirst,
            local,
            remote,
            CLOUD_FIRST_TOKEN_LIMIT,
            offline.clone(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_lowercase() {
        let ids = ids();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert!(ids
            .iter()
            .all(|id| id.chars().all(|c| c.is_ascii_lowercase())));
    }

    #[test]
    fn an_unknown_provider_names_the_known_ones() {
        assert_eq!(require("openai").map(|p| p.name), Ok("OpenAI"));
        let message = require("opneai")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.starts_with("Sotto does not know the provider `opneai` (known: local, openai,"),
            "{message}"
        );
    }

    #[test]
    fn servers_on_this_machine_need_no_key_and_clouds_do() {
        for p in PRESETS {
            let local = crate::openai::is_loopback(p.base_url);
            assert_eq!(p.needs_key, !local, "{}", p.id);
            assert_eq!(p.needs_key, p.key_env.is_some(), "{}", p.id);
        }
    }
}
