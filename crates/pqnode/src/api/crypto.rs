//! `/api/crypto/status`.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::ApiState;

/// Keys, algorithms, sizes and mode. Never secret material.
pub(super) async fn status(State(state): State<ApiState>) -> Json<Value> {
    Json(state.node.crypto.status_json())
}
