//! With no Secret Service at all (a headless box, a desktop without a keyring), keys
//! give a clear error and the provider's environment variable still works. Its own test
//! binary: libdbus reads the session bus address once per process.

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sotto_llm::keys::{KeyError, KeyStore};
use sotto_llm::providers::{find_key, preset, KeySource};

#[test]
fn without_a_keychain_the_error_says_what_to_install_and_env_keys_work() {
    let store = KeyStore::with_service("sotto-test");
    // Without any Secret Service the error says what to install.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let error = store.get("openai").expect_err("no keychain");
    assert!(matches!(error, KeyError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("GNOME Keyring"), "{error}");
    // ... and a key in the provider's environment variable still works.
    std::env::set_var("GROQ_API_KEY", "gsk-from-env");
    let groq = preset("groq").expect("groq");
    let (key, source) = find_key(groq, &store).expect("env key").expect("a key");
    assert_eq!(
        (key.expose(), source),
        ("gsk-from-env", KeySource::Environment)
    );
    std::env::remove_var("GROQ_API_KEY");
    assert!(
        find_key(groq, &store).is_err(),
        "no keychain and no env key"
    );
}
