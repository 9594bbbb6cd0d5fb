//! The models panel: what the window shows about installed models.

use serde::Serialize;
use sotto_models::{FileState, ModelStore};
use ts_rs::TS;

/// Whether a model can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum ModelState {
    /// Present and verified.
    Installed,
    /// Not (or not completely) on disk.
    Missing,
    /// Present but wrong; `detail` says how.
    Damaged,
}

/// One row of the models panel.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ModelStatus {
    /// The model id (`sotto models fetch ID`).
    pub id: String,
    /// What it is for: stt, llm, tts, vad, turn, embedding, runtime, sample.
    pub kind: String,
    /// A one-line description.
    pub title: String,
    /// Installed by default.
    pub default: bool,
    /// Whether it can be used.
    pub state: ModelState,
    /// For a damaged or partly missing model: what is wrong.
    pub detail: Option<String>,
    /// Bytes on disk.
    #[ts(type = "number")]
    pub disk_bytes: u64,
}

/// The state of every model that runs on this machine.
pub fn status(store: &ModelStore) -> Result<Vec<ModelStatus>, String> {
    let mut rows = Vec::new();
    for m in store.manifest().models.iter().filter(|m| m.runs_here()) {
        let files = store.check(&m.id).map_err(|e| e.to_string())?;
        let problems = sotto_models::problems(&files);
        let state = if problems.is_empty() {
            ModelState::Installed
        } else if files
            .iter()
            .any(|(_, s)| matches!(s, FileState::Damaged(_)))
        {
            ModelState::Damaged
        } else {
            ModelState::Missing
        };
        rows.push(ModelStatus {
            id: m.id.clone(),
            kind: m.kind.to_string(),
            title: m.title.clone(),
            default: m.default,
            state,
            detail: (state == ModelState::Damaged).then(|| problems.join("; ")),
            disk_bytes: store.disk_usage(&m.id).map_err(|e| e.to_string())?,
        });
    }
    Ok(rows)
}

/// Tauri command: the models panel's rows. Runs off the UI thread (it may hash files).
#[tauri::command]
pub async fn models_status() -> Result<Vec<ModelStatus>, String> {
    let store = ModelStore::open_default().map_err(|e| e.to_string())?;
    tauri::async_runtime::spawn_blocking(move || status(&store))
        .await
        .map_err(|e| format!("the model check stopped: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_models::Manifest;

    #[test]
    fn missing_and_damaged_models_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("sotto-app-models-{}", std::process::id()));
        let store = ModelStore::new(&dir, Manifest::builtin().unwrap());
        let vad = dir.join("silero-vad-v6");
        std::fs::create_dir_all(&vad).unwrap();
        std::fs::write(vad.join("silero_vad.onnx"), b"not a model").unwrap();
        let rows = status(&store).unwrap();
        let row = |id: &str| rows.iter().find(|r| r.id == id).unwrap();
        assert_eq!(row("whisper-tiny.en").state, ModelState::Missing);
        assert_eq!(row("silero-vad-v6").state, ModelState::Damaged);
        assert!(row("silero-vad-v6")
            .detail
            .as_deref()
            .unwrap()
            .contains("truncated"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
