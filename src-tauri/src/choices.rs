//! What the settings screen offers to pick from (devices, models, providers), and the
//! API keys, which live only in the system keychain: the window can store, replace or
//! remove a key and learn whether one is there, never read it back.

use serde::Serialize;
use sotto_llm::http::ApiKey;
use sotto_llm::keys::KeyStore;
use sotto_llm::providers::{self, KeySource, PRESETS};
use sotto_models::{ModelKind, ModelStore};
use ts_rs::TS;

use crate::assistant::sentence;

/// A provider the user can choose.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ProviderChoice {
    /// The id kept in settings.
    pub id: String,
    /// The name shown.
    pub name: String,
    /// Whether it needs an API key.
    pub needs_key: bool,
    /// The model used when none is set.
    pub default_model: String,
}

/// Everything the settings screen lists.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SettingsChoices {
    /// Input devices by name, the system default first.
    pub microphones: Vec<String>,
    /// Output devices by name, the system default first.
    pub speakers: Vec<String>,
    /// Installed speech-to-text models.
    pub stt_models: Vec<String>,
    /// Installed local language models.
    pub llm_models: Vec<String>,
    /// Who can answer: the local model, then the cloud providers.
    pub providers: Vec<ProviderChoice>,
}

/// Where a provider's key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum KeyStatus {
    /// The provider needs no key.
    NotNeeded,
    /// In the system keychain.
    Keychain,
    /// In the provider's environment variable (the keychain has none).
    Environment,
    /// Nowhere yet.
    Missing,
}

fn installed(store: &ModelStore, kind: ModelKind) -> Vec<String> {
    store
        .manifest()
        .models
        .iter()
        .filter(|m| m.kind == kind && m.runs_here() && store.is_installed(&m.id))
        .map(|m| m.id.clone())
        .collect()
}

fn providers_offered() -> Vec<ProviderChoice> {
    let local = ProviderChoice {
        id: providers::LOCAL.into(),
        name: "This computer (local model)".into(),
        needs_key: false,
        default_model: String::new(),
    };
    std::iter::once(local)
        .chain(PRESETS.iter().map(|p| ProviderChoice {
            id: p.id.into(),
            name: p.name.into(),
            needs_key: p.needs_key,
            default_model: p.model.into(),
        }))
        .collect()
}

/// Tauri command: the lists for the settings screen (devices are probed, models checked:
/// off the UI thread).
#[tauri::command]
pub async fn settings_choices() -> Result<SettingsChoices, String> {
    tauri::async_runtime::spawn_blocking(|| {
        let microphones = sotto_audio::capture::input_devices()
            .into_iter()
            .map(|d| d.name)
            .collect();
        let (stt_models, llm_models) = match ModelStore::open_default() {
            Ok(store) => (
                installed(&store, ModelKind::Stt),
                installed(&store, ModelKind::Llm),
            ),
            Err(_) => (Vec::new(), Vec::new()),
        };
        SettingsChoices {
            microphones,
            speakers: sotto_audio::playback::output_devices(),
            stt_models,
            llm_models,
            providers: providers_offered(),
        }
    })
    .await
    .map_err(|e| format!("listing the choices stopped: {e}"))
}

fn preset(provider: &str) -> Result<&'static providers::Preset, String> {
    providers::require(provider).map_err(|e| e.to_string())
}

/// Runs a keychain call on a blocking thread (D-Bus round trips).
async fn keychain<T: Send + 'static>(
    call: impl FnOnce(KeyStore) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tauri::async_runtime::spawn_blocking(move || call(KeyStore::default()))
        .await
        .map_err(|e| format!("the keychain call stopped: {e}"))?
}

/// Tauri command: where `provider`'s key is.
#[tauri::command]
pub async fn api_key_status(provider: String) -> Result<KeyStatus, String> {
    let preset = preset(&provider)?;
    keychain(move |keys| {
        if !preset.needs_key {
            return Ok(KeyStatus::NotNeeded);
        }
        Ok(match providers::find_key(preset, &keys) {
            Ok(Some((_, KeySource::Keychain))) => KeyStatus::Keychain,
            Ok(Some((_, KeySource::Environment))) => KeyStatus::Environment,
            Ok(None) => KeyStatus::Missing,
            Err(e) => return Err(sentence(&e.to_string())),
        })
    })
    .await
}

/// Tauri command: stores `key` for `provider` in the keychain (replacing any).
#[tauri::command]
pub async fn api_key_set(provider: String, key: String) -> Result<(), String> {
    let preset = preset(&provider)?;
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err("The key is empty".into());
    }
    keychain(move |keys| {
        keys.set(preset.id, &ApiKey::new(key))
            .map_err(|e| sentence(&e.to_string()))
    })
    .await
}

/// Tauri command: removes `provider`'s key from the keychain.
#[tauri::command]
pub async fn api_key_delete(provider: String) -> Result<(), String> {
    let preset = preset(&provider)?;
    keychain(move |keys| keys.delete(preset.id).map_err(|e| sentence(&e.to_string()))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_model_is_offered_first_then_every_known_provider() {
        let offered = providers_offered();
        assert_eq!(offered[0].id, providers::LOCAL);
        let ids: Vec<&str> = offered.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, providers::ids());
        assert!(offered.iter().any(|p| p.id == "openai" && p.needs_key));
    }
}
