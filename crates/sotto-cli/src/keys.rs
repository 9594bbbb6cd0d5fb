//! `sotto keys`: API keys in the system keychain.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use sotto_llm::http::ApiKey;
use sotto_llm::keys::KeyStore;
use sotto_llm::providers::{self, PRESETS};

/// `sotto keys` subcommands.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Which providers have a key, and where it comes from.
    List,
    /// Store a provider's key, read from standard input (it is never an argument, so it
    /// stays out of the shell history): `printf %s "$KEY" | sotto keys set openai`.
    Set {
        /// The provider id.
        provider: String,
    },
    /// Remove a provider's key from the keychain.
    Delete {
        /// The provider id.
        provider: String,
    },
}

/// Runs `sotto keys`.
pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    let store = KeyStore::default();
    match command {
        KeysCommand::List => {
            let mut unavailable = None;
            for preset in PRESETS.iter().filter(|p| p.needs_key) {
                let in_keychain = match &unavailable {
                    Some(_) => None,
                    None => match store.get(preset.id) {
                        Ok(key) => Some(key.is_some()),
                        Err(e) => {
                            unavailable = Some(e);
                            None
                        }
                    },
                };
                let in_env = preset
                    .key_env
                    .filter(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
                let state = match (in_keychain, in_env) {
                    (Some(true), _) => "in the keychain".to_string(),
                    (_, Some(name)) => format!("from ${name}"),
                    (Some(false), None) => "no key".to_string(),
                    (None, None) => "no key (keychain unavailable)".to_string(),
                };
                println!("{:<11} {state}", preset.id);
            }
            if let Some(e) = unavailable {
                eprintln!("note: {e}");
            }
        }
        KeysCommand::Set { provider } => {
            let preset = known(&provider)?;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the key from standard input")?;
            let key = line.trim();
            anyhow::ensure!(!key.is_empty(), "no key on standard input");
            store.set(preset.id, &ApiKey::new(key))?;
            println!("stored the {} key in the system keychain", preset.name);
        }
        KeysCommand::Delete { provider } => {
            let preset = known(&provider)?;
            store.delete(preset.id)?;
            println!("removed the {} key from the system keychain", preset.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn known(id: &str) -> anyhow::Result<&'static providers::Preset> {
    Ok(providers::require(id)?)
}
