//! The user's settings: one TOML file, saved atomically (a crash mid-save leaves the old
//! file whole), and read forgivingly: a field that cannot be read, or is out of range, is
//! reset to its default and named in [`Loaded::reset`]; every other field is kept. A file
//! that is not TOML at all is kept beside the new one, never silently replaced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sotto_audio::ListenMode;
use sotto_models::{default_model, ModelKind};
use ts_rs::TS;

/// Everything the user can set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(default, deny_unknown_fields)]
#[ts(export)]
pub struct Settings {
    /// The microphone by name (`None`: the system default).
    pub microphone: Option<String>,
    /// The output device by name (`None`: the system default).
    pub speaker: Option<String>,
    /// Push-to-talk, toggle or hands-free.
    pub mode: ListenMode,
    /// The global hotkey, e.g. "Ctrl+Alt+Space".
    pub hotkey: String,
    /// Hands-free: how readily sound counts as speech, 0 to 1 (higher hears quieter
    /// speech, and more noise).
    pub vad_sensitivity: f32,
    /// Take the assistant's own voice out of what the microphone hears (for open
    /// speakers; costs a little CPU, nothing with headphones).
    pub echo_cancellation: bool,
    /// Hands-free, with echo cancellation on: speaking over an answer for a quarter of a
    /// second interrupts it (shorter sounds, an "mm-hm", do not). The hotkey and the
    /// button always interrupt.
    pub voice_barge_in: bool,
    /// Speech-to-text model id.
    pub stt_model: String,
    /// Local language model id.
    pub llm_model: String,
    /// Voice id: a Piper model id, or `kokoro-82m-int8/<speaker>` (see `sotto_tts::load_voice`).
    pub voice: String,
    /// Speaking rate, 0.5 to 2.
    pub speed: f32,
    /// The persona (system prompt).
    pub persona: String,
    /// Sampling temperature, 0 to 2 (0: always the likeliest word).
    pub temperature: f32,
    /// Nucleus sampling, 0 (exclusive) to 1.
    pub top_p: f32,
    /// The longest answer, in tokens (16 to 4096).
    pub max_tokens: u32,
    /// Who answers: `local`, or a cloud provider's id (`openai`, `anthropic`, ...).
    pub provider: String,
    /// The cloud provider's model (`None`: the provider's default).
    pub cloud_model: Option<String>,
    /// The cloud provider's address, for a proxy or a server of one's own (`None`: the
    /// provider's own).
    pub cloud_base_url: Option<String>,
    /// With a cloud provider: answer with the local model when it fails or is slow.
    pub fallback_to_local: bool,
    /// Never use a cloud provider.
    pub offline: bool,
    /// Show the small always-on-top overlay with the assistant's state.
    pub overlay: bool,
    /// Start Sotto (in the tray) when the user logs in.
    pub start_on_login: bool,
    /// Record each turn's audio and transcript.
    pub turn_logs: bool,
    /// How many turn logs to keep (1 to 10000).
    pub keep_turn_logs: u32,
    /// The longest hands-free question, seconds (5 to 600): listening stops there, you are
    /// told, and what you said is answered.
    pub max_speech_hands_free_s: u32,
    /// The longest push-to-talk (or toggle) question, seconds (5 to 600).
    pub max_speech_push_to_talk_s: u32,
    /// The longest typed question, characters (100 to 100000): a longer one is cut there
    /// and the user told.
    pub max_typed_chars: u32,
    /// How long the local model may take to its first word, reading the question
    /// included, seconds (5 to 600): a worker that misses it is taken for hung, stopped
    /// and started afresh for the next question.
    pub local_first_token_timeout_s: u32,
    /// How long the local model may stay silent between two words, seconds (1 to 120).
    pub local_token_timeout_s: u32,
    /// How long a cloud provider may take to answer (its response headers and first
    /// word), seconds (2 to 120).
    pub cloud_first_token_timeout_s: u32,
    /// How long a cloud provider's answer may pause between two pieces, seconds (2 to
    /// 120).
    pub cloud_token_timeout_s: u32,
    /// A turn that makes no progress this long (no transcript, no word, no sound) is
    /// stopped as failed, seconds (0: never; else 10 to 900). Whichever limit comes first
    /// ends the turn; the models' own (above) say more precisely what went wrong, so the
    /// default is longer than theirs.
    pub turn_stall_timeout_s: u32,
    /// Let other programs on this computer use Sotto: the local API (docs/API.md) on
    /// 127.0.0.1 and ::1, behind a token.
    pub api: bool,
    /// The local API's port (0: any free one, written next to the token).
    pub api_port: u16,
    /// What the local API does with text that tries to override the persona.
    pub api_screen: ScreenPolicy,
}

/// What the local API does with text from other programs that tries to override the
/// assistant's instructions ("ignore previous instructions", role tags, asking for the
/// system prompt).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ScreenPolicy {
    /// Refuse it, saying why.
    #[default]
    Refuse,
    /// Let it through with a warning (logged, and told to the client).
    Warn,
}

/// The local API's port unless the settings say otherwise.
pub const DEFAULT_API_PORT: u16 = 7377;

impl Default for Settings {
    fn default() -> Self {
        let turn = crate::TurnSettings::default();
        let listener = sotto_audio::ListenerConfig::default();
        let http = sotto_llm::http::HttpConfig::default();
        Settings {
            microphone: None,
            speaker: None,
            mode: ListenMode::PushToTalk,
            hotkey: "Ctrl+Alt+Space".into(),
            vad_sensitivity: 0.5,
            echo_cancellation: true,
            voice_barge_in: true,
            stt_model: default_model(ModelKind::Stt),
            llm_model: default_model(ModelKind::Llm),
            voice: default_model(ModelKind::Tts),
            speed: turn.speed,
            persona: turn.system_prompt,
            temperature: turn.sampling.temperature,
            top_p: turn.sampling.top_p,
            max_tokens: turn.sampling.max_tokens,
            provider: sotto_llm::providers::LOCAL.into(),
            cloud_model: None,
            cloud_base_url: None,
            fallback_to_local: true,
            offline: false,
            overlay: true,
            start_on_login: false,
            turn_logs: false,
            keep_turn_logs: sotto_store::turn_log::DEFAULT_KEEP as u32,
            max_speech_hands_free_s: listener.max_hands_free_ms / 1000,
            max_speech_push_to_talk_s: listener.max_push_to_talk_ms / 1000,
            max_typed_chars: saturating_u32(turn.max_typed_chars),
            local_first_token_timeout_s: secs(sotto_llm::local::DEFAULT_FIRST_TOKEN_TIMEOUT),
            local_token_timeout_s: secs(sotto_llm::local::DEFAULT_TOKEN_TIMEOUT),
            cloud_first_token_timeout_s: secs(http.first_token_timeout),
            cloud_token_timeout_s: secs(http.idle_timeout),
            turn_stall_timeout_s: secs(turn.stall_timeout),
            api: false,
            api_port: DEFAULT_API_PORT,
            api_screen: ScreenPolicy::Refuse,
        }
    }
}

/// Why `value` is outside `lo..=hi` (`unit` follows the bounds in the message), if it is.
fn between(value: u32, lo: u32, hi: u32, unit: &str) -> Option<String> {
    (!(lo..=hi).contains(&value)).then(|| format!("must be between {lo} and {hi}{unit}"))
}

/// The unit of the settings in seconds, as [`between`] names it.
const SECONDS: &str = " seconds";

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Settings as read from disk, and what had to be reset.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The settings to use.
    pub settings: Settings,
    /// One line per field reset to its default (or ignored), for the user.
    pub reset: Vec<String>,
}

/// Why settings could not be saved.
#[derive(Debug, thiserror::Error)]
#[error("cannot save settings to {path}: {reason}")]
pub struct SaveError {
    /// The settings file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

impl Settings {
    /// The voice detector's speech threshold for [`Settings::vad_sensitivity`]: the more
    /// sensitive, the lower the probability that counts as speech (0.5 at the default).
    pub fn vad_threshold(&self) -> f32 {
        (1.0 - self.vad_sensitivity).clamp(0.1, 0.9)
    }

    /// `<config dir>/sotto/settings.toml`.
    pub fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("sotto").join("settings.toml"))
    }

    /// Reads `path`; a missing file gives the defaults with nothing to report.
    pub fn load(path: &Path) -> Loaded {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Loaded {
                    settings: Settings::default(),
                    reset: Vec::new(),
                }
            }
            Err(e) => {
                // Not text (or unreadable): kept, so the next save does not lose it.
                let kept = if e.kind() == std::io::ErrorKind::InvalidData {
                    keep_aside(path)
                } else {
                    String::new()
                };
                return Loaded {
                    settings: Settings::default(),
                    reset: vec![format!(
                        "could not read {} ({e}): using the defaults{kept}",
                        path.display()
                    )],
                };
            }
        };
        match text.parse::<toml::Table>() {
            Ok(table) => Settings::from_table(table),
            Err(e) => {
                let kept = keep_aside(path);
                Loaded {
                    settings: Settings::default(),
                    reset: vec![format!(
                        "the settings file is not valid TOML ({}); every setting was reset{kept}",
                        e.message()
                    )],
                }
            }
        }
    }

    /// Takes every field of `table` that reads as its type and is in range.
    fn from_table(table: toml::Table) -> Loaded {
        let mut accepted = match toml::Table::try_from(Settings::default()) {
            Ok(defaults) => defaults,
            Err(_) => toml::Table::new(),
        };
        let mut reset = Vec::new();
        for (key, value) in table {
            if !accepted.contains_key(&key) && !OPTIONAL_FIELDS.contains(&key.as_str()) {
                reset.push(format!("ignored the unknown setting `{key}`"));
                continue;
            }
            let mut candidate = accepted.clone();
            candidate.insert(key.clone(), value.clone());
            match candidate.try_into::<Settings>() {
                Ok(settings) => match settings.out_of_range(&key) {
                    None => {
                        accepted.insert(key, value);
                    }
                    Some(why) => reset.push(format!("`{key}` {why}: reset to the default")),
                },
                Err(e) => reset.push(format!(
                    "`{key}` could not be read ({}): reset to the default",
                    e.message()
                )),
            }
        }
        let settings = accepted.try_into::<Settings>().unwrap_or_default();
        Loaded { settings, reset }
    }

    /// Why field `key` is out of range, if it is.
    fn out_of_range(&self, key: &str) -> Option<String> {
        let within = |v: f32, lo: f32, hi: f32| v.is_finite() && v >= lo && v <= hi;
        match key {
            "speed" if !within(self.speed, 0.5, 2.0) => Some("must be between 0.5 and 2".into()),
            "temperature" if !within(self.temperature, 0.0, 2.0) => {
                Some("must be between 0 and 2".into())
            }
            "top_p" if !within(self.top_p, 0.0, 1.0) || self.top_p == 0.0 => {
                Some("must be above 0 and at most 1".into())
            }
            "max_tokens" => between(self.max_tokens, 16, 4096, ""),
            "keep_turn_logs" => between(self.keep_turn_logs, 1, 10_000, ""),
            "hotkey" if self.hotkey.trim().is_empty() => Some("is empty".into()),
            "max_speech_hands_free_s" => between(self.max_speech_hands_free_s, 5, 600, SECONDS),
            "max_speech_push_to_talk_s" => between(self.max_speech_push_to_talk_s, 5, 600, SECONDS),
            "max_typed_chars" => between(self.max_typed_chars, 100, 100_000, " characters"),
            "local_first_token_timeout_s" => {
                between(self.local_first_token_timeout_s, 5, 600, SECONDS)
            }
            "local_token_timeout_s" => between(self.local_token_timeout_s, 1, 120, SECONDS),
            "cloud_first_token_timeout_s" => {
                between(self.cloud_first_token_timeout_s, 2, 120, SECONDS)
            }
            "cloud_token_timeout_s" => between(self.cloud_token_timeout_s, 2, 120, SECONDS),
            "turn_stall_timeout_s"
                if self.turn_stall_timeout_s != 0
                    && !(10..=900).contains(&self.turn_stall_timeout_s) =>
            {
                Some("must be 0 (never) or between 10 and 900 seconds".into())
            }
            "api_port" if (1..1024).contains(&self.api_port) => {
                Some("must be 0 (any free port) or from 1024 to 65535".into())
            }
            "vad_sensitivity" if !within(self.vad_sensitivity, 0.0, 1.0) => {
                Some("must be between 0 and 1".into())
            }
            "cloud_base_url" => self
                .cloud_base_url
                .as_deref()
                .and_then(|url| sotto_llm::providers::check_base_url(url).err()),
            "provider" if !sotto_llm::providers::ids().contains(&self.provider.as_str()) => {
                Some(format!(
                    "is not a provider Sotto knows (known: {})",
                    sotto_llm::providers::ids().join(", ")
                ))
            }
            _ => None,
        }
    }

    /// Every problem with these settings (what [`Settings::load`] would reset).
    pub fn problems(&self) -> Vec<String> {
        let Ok(table) = toml::Table::try_from(self) else {
            return vec!["the settings cannot be written as TOML".into()];
        };
        table
            .keys()
            .filter_map(|key| self.out_of_range(key).map(|why| format!("`{key}` {why}")))
            .collect()
    }

    /// Writes the settings to `path` atomically: a temporary file beside it, flushed to
    /// disk, then renamed over it.
    pub fn save(&self, path: &Path) -> Result<(), SaveError> {
        let fail = |reason: String| SaveError {
            path: path.to_path_buf(),
            reason,
        };
        let text = toml::to_string_pretty(self).map_err(|e| fail(e.to_string()))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let temporary = path.with_extension("toml.saving");
        let written = (|| {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(b"# Sotto's settings. Edit here or in the app.\n")?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        written.map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            fail(e.to_string())
        })
    }
}

impl Settings {
    /// How the voice turn runs with these settings.
    pub fn turn_settings(&self) -> crate::TurnSettings {
        let defaults = crate::TurnSettings::default();
        crate::TurnSettings {
            mode: self.mode,
            system_prompt: self.persona.clone(),
            sampling: sotto_llm::Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: self.max_tokens,
                ..defaults.sampling
            },
            speed: self.speed,
            // Without the canceller the assistant would hear itself and stop.
            barge_in_while_speaking: self.mode.is_hands_free()
                && self.echo_cancellation
                && self.voice_barge_in,
            max_typed_chars: self.max_typed_chars as usize,
            stall_timeout: std::time::Duration::from_secs(self.turn_stall_timeout_s.into()),
            ..defaults
        }
    }
}

/// Fields that may be absent from the defaults' table (TOML has no null).
const OPTIONAL_FIELDS: [&str; 4] = ["microphone", "speaker", "cloud_model", "cloud_base_url"];

/// Copies an unreadable settings file to `<name>.broken-<time>`; says where, for the user.
fn keep_aside(path: &Path) -> String {
    let name = path.file_name().map_or_else(
        || "settings.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let copy = path.with_file_name(format!("{name}.broken-{}", sotto_store::unix_ms()));
    match std::fs::copy(path, &copy) {
        Ok(_) => format!("; the old file is kept at {}", copy.display()),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("settings.toml");
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_missing_file_gives_the_defaults_and_a_saved_file_reads_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("settings.toml");
        let loaded = Settings::load(&path);
        assert_eq!(loaded.settings, Settings::default());
        assert!(loaded.reset.is_empty());

        let mine = Settings {
            microphone: Some("USB Mic".into()),
            mode: ListenMode::Toggle,
            persona: "You are terse.".into(),
            temperature: 0.0,
            turn_logs: true,
            ..Settings::default()
        };
        mine.save(&path).expect("saved");
        let again = Settings::load(&path);
        assert_eq!(again.settings, mine);
        assert!(again.reset.is_empty(), "{:?}", again.reset);
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["settings.toml"], "no temporary file left");
    }

    #[test]
    fn voice_barge_in_is_on_only_hands_free_with_the_echo_canceller() {
        let hands_free = Settings {
            mode: ListenMode::HandsFree,
            ..Settings::default()
        };
        assert!(hands_free.turn_settings().barge_in_while_speaking);
        for off in [
            Settings {
                echo_cancellation: false,
                ..hands_free.clone()
            },
            Settings {
                voice_barge_in: false,
                ..hands_free.clone()
            },
            Settings {
                mode: ListenMode::PushToTalk,
                ..hands_free.clone()
            },
        ] {
            assert!(!off.turn_settings().barge_in_while_speaking, "{off:?}");
        }
    }

    #[test]
    fn a_broken_field_is_reset_and_every_valid_one_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(
            dir.path(),
            r#"
mode = "hands_free"
temperature = "warm"
speed = 7.5
persona = "You are a pirate."
max_tokens = 300
colour = "blue"
microphone = "Headset"
provider = "skynet"
cloud_model = "gpt-4o"
vad_sensitivity = 0.8
"#,
        );
        let loaded = Settings::load(&path);
        let s = &loaded.settings;
        assert_eq!(s.mode, ListenMode::HandsFree);
        assert_eq!(s.persona, "You are a pirate.");
        assert_eq!(s.max_tokens, 300);
        assert_eq!(s.microphone.as_deref(), Some("Headset"));
        assert_eq!(s.temperature, Settings::default().temperature);
        assert_eq!(s.speed, 1.0);
        assert_eq!(s.provider, "local");
        assert_eq!(s.cloud_model.as_deref(), Some("gpt-4o"));
        assert!((s.vad_threshold() - 0.2).abs() < 1e-6);
        let all = loaded.reset.join("\n");
        assert_eq!(loaded.reset.len(), 4, "{all}");
        assert!(
            all.contains("`provider` is not a provider Sotto knows"),
            "{all}"
        );
        assert!(all.contains("`temperature` could not be read"), "{all}");
        assert!(all.contains("`speed` must be between 0.5 and 2"), "{all}");
        assert!(all.contains("unknown setting `colour`"), "{all}");
    }

    #[test]
    fn a_file_that_is_not_toml_is_kept_aside_and_the_defaults_used() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(dir.path(), "mode = [unclosed\n\u{0}garbage");
        let loaded = Settings::load(&path);
        assert_eq!(loaded.settings, Settings::default());
        assert_eq!(loaded.reset.len(), 1);
        assert!(
            loaded.reset[0].contains("not valid TOML"),
            "{:?}",
            loaded.reset
        );
        let kept = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("settings.toml.broken-")
            })
            .expect("the broken file is kept");
        assert!(loaded.reset[0].contains(&kept.path().display().to_string()));
        assert_eq!(
            std::fs::read_to_string(kept.path()).expect("read"),
            "mode = [unclosed\n\u{0}garbage"
        );
    }

    #[test]
    fn a_file_that_is_not_text_is_kept_aside_before_anything_overwrites_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, b"\xff\xfe mode = 1").expect("write");
        let loaded = Settings::load(&path);
        assert_eq!(loaded.settings, Settings::default());
        assert!(loaded.reset[0].contains("kept at"), "{:?}", loaded.reset);
        let kept = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("settings.toml.broken-")
            })
            .expect("the unreadable file is kept");
        assert_eq!(
            std::fs::read(kept.path()).expect("read"),
            b"\xff\xfe mode = 1"
        );
    }

    #[test]
    fn a_cloud_address_must_be_https_unless_it_is_this_machine() {
        let with = |url: &str| Settings {
            cloud_base_url: Some(url.into()),
            ..Settings::default()
        };
        for kept in [
            "https://api.example.com/v1",
            "http://localhost:11434/v1",
            "http://127.0.0.1:8080",
            "http://[::1]:8080/v1",
        ] {
            assert!(with(kept).problems().is_empty(), "{kept}");
        }
        for refused in [
            "http://evil.example/v1",
            "http://192.168.1.5:11434/v1",
            "https://user:secret@api.example.com",
            "ftp://api.example.com",
            "not a url",
        ] {
            let problems = with(refused).problems();
            assert_eq!(problems.len(), 1, "{refused}: {problems:?}");
            assert!(!problems[0].contains("secret"), "{problems:?}");
        }
    }

    #[test]
    fn problems_name_out_of_range_fields() {
        let bad = Settings {
            top_p: 0.0,
            max_tokens: 5,
            ..Settings::default()
        };
        let problems = bad.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(Settings::default().problems().is_empty());
    }

    #[test]
    fn the_longest_question_is_a_setting_per_mode_within_bounds() {
        let defaults = Settings::default();
        assert_eq!(
            (
                defaults.max_speech_hands_free_s,
                defaults.max_speech_push_to_talk_s
            ),
            (30, 60)
        );
        let limits = |hands_free, push_to_talk| Settings {
            max_speech_hands_free_s: hands_free,
            max_speech_push_to_talk_s: push_to_talk,
            ..Settings::default()
        };
        assert!(limits(5, 600).problems().is_empty());
        let problems = limits(4, 601).problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        // The assistant is built with them.
        let choice = crate::assemble::EngineChoice::from_settings(
            &limits(45, 120),
            None,
            sotto_llm::keys::KeyStore::default(),
        );
        assert_eq!(
            choice.max_speech_ms,
            crate::assemble::MaxSpeech {
                hands_free: 45_000,
                push_to_talk: 120_000
            }
        );
    }

    #[test]
    fn the_time_limits_and_typed_length_are_settings_that_reach_the_engines() {
        let defaults = Settings::default();
        assert_eq!(
            (
                defaults.max_typed_chars,
                defaults.local_first_token_timeout_s,
                defaults.local_token_timeout_s,
                defaults.cloud_first_token_timeout_s,
                defaults.cloud_token_timeout_s,
                defaults.turn_stall_timeout_s,
            ),
            (2000, 60, 10, 15, 20, 90),
            "the defaults documented in docs/RELIABILITY.md"
        );
        let out_of_range = Settings {
            max_typed_chars: 99,
            local_first_token_timeout_s: 4,
            local_token_timeout_s: 0,
            cloud_first_token_timeout_s: 121,
            cloud_token_timeout_s: 1,
            turn_stall_timeout_s: 9,
            ..Settings::default()
        };
        let problems = out_of_range.problems();
        assert_eq!(problems.len(), 6, "{problems:?}");
        let chosen = Settings {
            max_typed_chars: 500,
            local_first_token_timeout_s: 30,
            local_token_timeout_s: 3,
            cloud_first_token_timeout_s: 7,
            cloud_token_timeout_s: 9,
            turn_stall_timeout_s: 0,
            provider: "openai".into(),
            ..Settings::default()
        };
        assert!(chosen.problems().is_empty(), "0 turns the watchdog off");
        let turn = chosen.turn_settings();
        assert_eq!(turn.max_typed_chars, 500);
        assert_eq!(turn.stall_timeout, Duration::ZERO);
        let choice = crate::assemble::EngineChoice::from_settings(
            &chosen,
            None,
            sotto_llm::keys::KeyStore::default(),
        );
        assert_eq!(
            choice.local_timeouts,
            crate::assemble::LocalTimeouts {
                first_token: Duration::from_secs(30),
                token: Duration::from_secs(3),
            }
        );
        let http = choice.cloud.map(|cloud| cloud.http);
        assert_eq!(
            http.map(|h| (h.first_token_timeout, h.idle_timeout)),
            Some((Duration::from_secs(7), Duration::from_secs(9)))
        );
    }

    #[test]
    fn the_api_port_is_any_free_one_or_not_a_system_port() {
        let port = |api_port| Settings {
            api_port,
            ..Settings::default()
        };
        assert!(port(0).problems().is_empty());
        assert!(port(1024).problems().is_empty());
        assert!(port(65535).problems().is_empty());
        let problems = port(80).problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("api_port"), "{problems:?}");
        // Off by default, refusing screened text.
        assert!(!Settings::default().api);
        assert_eq!(Settings::default().api_screen, ScreenPolicy::Refuse);
    }
}
