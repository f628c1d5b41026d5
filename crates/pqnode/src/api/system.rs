//! `/metrics` (Prometheus text) and `/api/system` (the system monitor).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiState;
use crate::monitor::SystemSnapshot;

/// Prometheus text: counters and gauges
#[utoipa::path(
    get,
    path = "/metrics",
    responses((
        status = 200,
        description = "Prometheus text exposition format 0.0.4",
        body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"
    ))
)]
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

/// The system monitor: memory, CPU, descriptors, host load, the data folder's disk
#[utoipa::path(
    get,
    path = "/api/system",
    security((), ("bearer" = [])),
    responses((status = 200, description = "the latest sample", body = SystemSnapshot))
)]
pub(super) async fn system(State(state): State<ApiState>) -> Json<SystemSnapshot> {
    Json(state.node.monitor.snapshot())
}
