//! API keys round-trip through a real Secret Service keychain (GNOME Keyring) on a
//! private D-Bus session, the way they do on a Linux desktop. One test in this binary:
//! it points the process at its own session bus (libdbus reads the address once per
//! process, so the no-keychain case lives in `no_keychain.rs`).

// An integration test's helpers panic on failure by design (clippy.toml allows it only
// inside test functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sotto_llm::http::ApiKey;
use sotto_llm::keys::KeyStore;
use sotto_llm::providers::{find_key, preset, KeySource};

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private session bus with an unlocked GNOME Keyring on it, in a scratch home.
fn private_keychain(home: &std::path::Path) -> (Killed, Killed) {
    // A bus of our own, without service activation: the system's activation file would
    // start a second, locked keyring daemon that races ours.
    let config = home.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            home.display()
        ),
    )
    .expect("bus config");
    let mut bus = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon (apt package dbus-daemon) runs");
    let mut address = String::new();
    BufReader::new(bus.stdout.take().expect("stdout"))
        .read_line(&mut address)
        .expect("the bus address");
    let bus = Killed(bus);
    let address = address.trim().to_string();
    assert!(address.starts_with("unix:"), "{address}");
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);

    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    let mut keyring = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnome-keyring-daemon (apt package gnome-keyring) runs");
    // The login keyring's password (an empty one creates no keyring), then end of input.
    let mut stdin = keyring.stdin.take().expect("stdin");
    stdin.write_all(b"login-password").expect("password");
    drop(stdin);
    (bus, Killed(keyring))
}

#[test]
fn keys_round_trip_through_the_system_keychain() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = KeyStore::with_service("sotto-test");

    let (_bus, _keyring) = private_keychain(home.path());
    // The daemon takes a moment to claim its bus name.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = store.get("openai") {
        assert!(
            Instant::now() < deadline,
            "the keychain did not come up: {e}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    assert_eq!(store.get("openai").expect("get"), None);
    let key = ApiKey::new("sk-live-abcdef0123456789");
    store.set("openai", &key).expect("set");
    assert_eq!(store.get("openai").expect("get"), Some(key.clone()));
    let openai = preset("openai").expect("openai");
    std::env::set_var("OPENAI_API_KEY", "sk-from-env");
    let (found, source) = find_key(openai, &store).expect("find").expect("a key");
    assert_eq!(found, key, "the keychain wins over the environment");
    assert_eq!(source, KeySource::Keychain);
    std::env::remove_var("OPENAI_API_KEY");

    // Replacing and deleting.
    let newer = ApiKey::new("sk-live-rotated");
    store.set("openai", &newer).expect("replace");
    assert_eq!(store.get("openai").expect("get"), Some(newer));
    store.delete("openai").expect("delete");
    assert_eq!(store.get("openai").expect("get"), None);
    store.delete("openai").expect("deleting twice is fine");

    // Nothing of the key is written in plain text under the scratch home.
    for entry in walk(home.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("sk-live"),
            "{} holds the key",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}
