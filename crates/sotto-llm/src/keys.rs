//! API keys in the operating system's keychain (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows), never in a settings file.
//!
//! The keychain calls block (D-Bus round trips on Linux): call them from a blocking
//! thread, not an async task.

use crate::http::ApiKey;

/// The keychain "service" every Sotto key is filed under.
pub const SERVICE: &str = "sotto";

/// Why the keychain could not be used, worded for the person who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// There is no keychain, or it is locked.
    #[error("the system keychain is not available ({0}). On Linux, Sotto needs a Secret Service such as GNOME Keyring or KWallet, unlocked.")]
    Unavailable(String),
    /// The keychain holds something for this provider that is not a key.
    #[error("the keychain entry for {provider} is damaged; enter the key again in Settings")]
    Damaged {
        /// The provider.
        provider: String,
    },
    /// The keychain refused the operation.
    #[error("the system keychain failed: {0}")]
    Failed(String),
}

/// The keychain, for Sotto's API keys.
#[derive(Debug, Clone)]
pub struct KeyStore {
    service: String,
}

impl Default for KeyStore {
    fn default() -> Self {
        KeyStore {
            service: SERVICE.into(),
        }
    }
}

impl KeyStore {
    /// Keys filed under another service name (tests use their own).
    pub fn with_service(service: impl Into<String>) -> KeyStore {
        KeyStore {
            service: service.into(),
        }
    }

    fn entry(&self, provider: &str) -> Result<keyring::Entry, KeyError> {
        keyring::Entry::new(&self.service, provider).map_err(|e| classify(e, provider))
    }

    /// The key stored for `provider`, if any.
    pub fn get(&self, provider: &str) -> Result<Option<ApiKey>, KeyError> {
        match self.entry(provider)?.get_password() {
            Ok(key) => Ok(Some(ApiKey::new(key))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(e, provider)),
        }
    }

    /// Stores `key` for `provider`, replacing any earlier one.
    pub fn set(&self, provider: &str, key: &ApiKey) -> Result<(), KeyError> {
        self.entry(provider)?
            .set_password(key.expose())
            .map_err(|e| classify(e, provider))
    }

    /// Forgets the key for `provider`. Forgetting a key that is not there is fine.
    pub fn delete(&self, provider: &str) -> Result<(), KeyError> {
        match self.entry(provider)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(classify(e, provider)),
        }
    }
}

fn classify(error: keyring::Error, provider: &str) -> KeyError {
    match error {
        keyring::Error::NoStorageAccess(e) | keyring::Error::PlatformFailure(e) => {
            KeyError::Unavailable(e.to_string())
        }
        keyring::Error::BadEncoding(_) | keyring::Error::Ambiguous(_) => KeyError::Damaged {
            provider: provider.to_string(),
        },
        other => KeyError::Failed(other.to_string()),
    }
}
