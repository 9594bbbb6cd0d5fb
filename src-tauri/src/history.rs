//! The history panel's commands: list and search conversations, read one, export one.

use sotto_core::memory::{export_markdown, search};
use sotto_core::TurnRecord;
use sotto_store::Conversation;
use tauri::State;

use crate::assistant::AssistantHandle;

fn store(handle: &AssistantHandle) -> Result<std::sync::Arc<sotto_store::Store>, String> {
    handle
        .history()
        .ok_or_else(|| "History is not available (see the message shown at start).".to_string())
}

/// Conversations whose title or turns contain `query` (all for an empty one), newest
/// first.
#[tauri::command]
pub async fn history_search(
    query: String,
    handle: State<'_, AssistantHandle>,
) -> Result<Vec<Conversation>, String> {
    let store = store(&handle)?;
    tauri::async_runtime::spawn_blocking(move || search(&store, &query))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The turns of one conversation.
#[tauri::command]
pub async fn history_turns(
    conversation: u64,
    handle: State<'_, AssistantHandle>,
) -> Result<Vec<TurnRecord>, String> {
    let store = store(&handle)?;
    store.turns(conversation).map_err(|e| e.to_string())
}

/// One conversation as Markdown, for the export button.
#[tauri::command]
pub async fn history_export(
    conversation: u64,
    handle: State<'_, AssistantHandle>,
) -> Result<String, String> {
    let store = store(&handle)?;
    let found = store
        .conversation(conversation)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("There is no conversation {conversation}."))?;
    let turns: Vec<TurnRecord> = store.turns(conversation).map_err(|e| e.to_string())?;
    Ok(export_markdown(&found, &turns))
}
