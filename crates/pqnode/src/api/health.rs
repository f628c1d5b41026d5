//! `/api/health`, `/livez`, `/readyz`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pqnode_health::Status;
use serde_json::{Map, Value, json};

use super::ApiState;

/// The spec's extended health check: 200 unless an enabled component fails.
pub(super) async fn health(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    let node = &state.node;
    let reports = node.components().reports().await;
    let worst = reports
        .iter()
        .map(|r| r.health.status)
        .filter(|s| *s != Status::Disabled)
        .max();
    let (code, status) = match worst {
        Some(Status::Fail) => (StatusCode::SERVICE_UNAVAILABLE, "error"),
        Some(Status::Warn) => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ok"),
    };
    let components: Map<String, Value> = reports
        .into_iter()
        .map(|r| (r.name.to_owned(), r.body))
        .collect();
    // The HTTP ports' connection figures: open, refused over a cap, timed out, evicted.
    let listeners: Map<String, Value> = node
        .listeners()
        .into_iter()
        .map(|(name, l)| (name.to_owned(), json!(l.stats())))
        .collect();
    let body = json!({
        "status": status,
        "timestamp": pqnode_clock::now_unix_ms(),
        "uptime": node.uptime().as_millis() as u64,
        "version": env!("CARGO_PKG_VERSION"),
        "nodeId": node.node_id,
        "ready": node.is_ready(),
        "components": components,
        "listeners": listeners,
    });
    (code, Json(body))
}

/// Liveness: the process answers.
pub(super) async fn livez() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// Readiness: start-up finished and not shutting down.
pub(super) async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Value>) {
    if state.node.ready.load(Ordering::Acquire) {
        // Ready means able to serve: not while a component it depends on fails.
        match state.node.components().failing() {
            None => (StatusCode::OK, Json(json!({ "status": "ready" }))),
            Some((component, health)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "not ready",
                    "reason": format!("{component} is failing"),
                    "component": component,
                    "detail": health.reason,
                })),
            ),
        }
    } else {
        let why = if state.node.shutting_down.load(Ordering::Acquire) {
            "shutting down"
        } else {
            "starting"
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": why })),
        )
    }
}
