//! `GET /v1/models`: what the API answers with, as OpenAI lists models.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::{ApiError, AppState};

/// The language model, the speech-to-text model and every installed voice.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engines = state.engines()?;
    let mut ids = vec![engines.llm_model.clone(), engines.stt_model.clone()];
    ids.extend(engines.voices.ids());
    ids.dedup();
    let data: Vec<Value> = ids
        .into_iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "sotto" }))
        .collect();
    Ok(Json(json!({ "object": "list", "data": data })))
}
