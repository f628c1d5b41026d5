//! `/metrics` (Prometheus text) and `/api/system` (the system monitor).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;

use super::ApiState;

pub(super) async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    state.node.record_metrics().await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.node.metrics.render(),
    )
}

pub(super) async fn system(State(state): State<ApiState>) -> Json<Value> {
    Json(serde_json::to_value(state.node.monitor.snapshot()).unwrap_or_default())
}
