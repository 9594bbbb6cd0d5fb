//! What the assistant remembers of each turn: a [`TurnRecord`] in the history store
//! (flushed before the next turn can start), and, if the user turned them on, a turn log
//! with the audio in and out.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sotto_audio::AudioBuffer;
use sotto_store::turn_log::{TurnLog, TurnLogs};
use sotto_store::{Store, StoreError};
use ts_rs::TS;

use crate::event::{Timings, TurnOutcome};

/// One turn as history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TurnRecord {
    /// When the turn ended, in milliseconds since the Unix epoch.
    #[ts(type = "number")]
    pub at_unix_ms: u64,
    /// How it ended.
    pub outcome: TurnOutcome,
    /// What the user said.
    pub user_text: String,
    /// What the user heard of the answer: what the next turn's context holds.
    pub heard_text: String,
    /// Everything the model wrote (more than `heard_text` when interrupted).
    pub answer_text: String,
    /// Who answered ("local", "OpenAI", "instant").
    pub provider: Option<String>,
    /// Per-stage times.
    pub timings: Timings,
}

/// The audio of a turn, kept only while turn logs are on.
#[derive(Default)]
pub(crate) struct TurnAudio {
    pub(crate) input: Option<AudioBuffer>,
    pub(crate) output: Option<AudioBuffer>,
}

/// Where the assistant remembers turns. Each run of the assistant is one conversation,
/// created at its first turn and titled with what the user said first.
pub struct Memory {
    store: Arc<Store>,
    logs: Option<TurnLogs>,
    conversation: Option<u64>,
}

impl Memory {
    /// Remembers in `store`; with `logs`, also records each turn's audio there.
    pub fn new(store: Arc<Store>, logs: Option<TurnLogs>) -> Memory {
        Memory {
            store,
            logs,
            conversation: None,
        }
    }

    /// The conversation this run writes to, once it has one.
    pub fn conversation(&self) -> Option<u64> {
        self.conversation
    }

    /// Whether turn audio should be kept for a log.
    pub(crate) fn wants_audio(&self) -> bool {
        self.logs.is_some()
    }

    /// Stores `record` (on disk when this returns); the turn log, if on, is written in
    /// the background.
    pub(crate) fn remember(
        &mut self,
        record: &TurnRecord,
        audio: TurnAudio,
    ) -> Result<(), StoreError> {
        let conversation = match self.conversation {
            Some(id) => id,
            None => {
                let title: String = record.user_text.chars().take(80).collect();
                let id = self.store.new_conversation(&title)?.id;
                self.conversation = Some(id);
                id
            }
        };
        let number = self.store.append_turn(conversation, record)?;
        if let Some(logs) = self.logs.clone() {
            let record = record.clone();
            let name = format!("c{conversation}-t{number}");
            // WAV files take a while to write; the next turn does not wait for them.
            std::thread::spawn(move || {
                let log = TurnLog {
                    input: audio.input.as_ref(),
                    output: audio.output.as_ref(),
                    record: &record,
                };
                if let Err(e) = logs.write(&name, &log) {
                    tracing::warn!("{e}");
                }
            });
        }
        Ok(())
    }
}

/// The conversations (newest first) whose title or turns contain `query`, ignoring case;
/// every conversation for an empty query.
pub fn search(store: &Store, query: &str) -> Result<Vec<sotto_store::Conversation>, StoreError> {
    let needle = query.trim().to_lowercase();
    let mut found = Vec::new();
    for conversation in store.conversations()? {
        let matches = needle.is_empty()
            || conversation.title.to_lowercase().contains(&needle)
            || store.turns::<TurnRecord>(conversation.id)?.iter().any(|t| {
                t.user_text.to_lowercase().contains(&needle)
                    || t.heard_text.to_lowercase().contains(&needle)
            });
        if matches {
            found.push(conversation);
        }
    }
    Ok(found)
}

/// A conversation as Markdown: what the user said and what they heard, turn by turn.
pub fn export_markdown(conversation: &sotto_store::Conversation, turns: &[TurnRecord]) -> String {
    let mut out = format!("# {}\n\n", conversation.title);
    for turn in turns {
        out.push_str(&format!("**You:** {}\n\n", turn.user_text));
        if !turn.heard_text.is_empty() {
            let cut = if turn.outcome == TurnOutcome::Interrupted {
                " *(interrupted)*"
            } else {
                ""
            };
            out.push_str(&format!("**Sotto:** {}{cut}\n\n", turn.heard_text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, heard: &str, outcome: TurnOutcome) -> TurnRecord {
        TurnRecord {
            at_unix_ms: 1,
            outcome,
            user_text: user.into(),
            heard_text: heard.into(),
            answer_text: format!("{heard} and more"),
            provider: Some("local".into()),
            timings: Timings::default(),
        }
    }

    #[test]
    fn remembered_turns_can_be_searched_and_exported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(&dir.path().join("h")).expect("opens").store);
        let mut first = Memory::new(Arc::clone(&store), None);
        first
            .remember(
                &record(
                    "What is the capital of France?",
                    "Paris.",
                    TurnOutcome::Answered,
                ),
                TurnAudio::default(),
            )
            .expect("kept");
        first
            .remember(
                &record(
                    "Tell me about whales",
                    "Whales are",
                    TurnOutcome::Interrupted,
                ),
                TurnAudio::default(),
            )
            .expect("kept");
        let mut second = Memory::new(Arc::clone(&store), None);
        second
            .remember(
                &record("Hello", "Hi there!", TurnOutcome::Answered),
                TurnAudio::default(),
            )
            .expect("kept");
        assert_ne!(first.conversation(), second.conversation());

        assert_eq!(search(&store, "").expect("all").len(), 2);
        let whales = search(&store, "WHALES").expect("search");
        assert_eq!(whales.len(), 1);
        assert!(whales[0].title.contains("France"), "found by a later turn");
        assert_eq!(search(&store, "hi there").expect("search").len(), 1);
        assert!(search(&store, "zebra").expect("search").is_empty());

        let turns: Vec<TurnRecord> = store.turns(whales[0].id).expect("turns");
        let markdown = export_markdown(&whales[0], &turns);
        assert!(markdown.starts_with("# What is the capital of France?\n"));
        assert!(markdown.contains("**Sotto:** Paris.\n"));
        assert!(markdown.contains("**Sotto:** Whales are *(interrupted)*"));
        assert!(!markdown.contains("and more"), "only what was heard");
    }
}
