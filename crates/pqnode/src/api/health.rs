//! `/api/health`, `/livez`, `/readyz`.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pqnode_health::Status;

use super::ApiState;
use super::dto::{Health, HealthStatus, LiveStatus, Liveness, Readiness, ReadyStatus};

/// Health of every component
///
/// The spec's extended health check: every component's status, reason and figures, and
/// the HTTP ports' connection figures. 200 unless an enabled component fails.
#[utoipa::path(
    get,
    path = "/api/health",
    responses(
        (status = 200, description = "no enabled component fails", body = Health),
        (status = 503, description = "an enabled component fails", body = Health),
    )
)]
pub(super) async fn health(State(state): State<ApiState>) -> (StatusCode, Json<Health>) {
    let node = &state.node;
    let reports = node.components().reports().await;
    let worst = reports
        .iter()
        .map(|r| r.health.status)
        .filter(|s| *s != Status::Disabled)
        .max();
    let (code, status) = match worst {
        Some(Status::Fail) => (StatusCode::SERVICE_UNAVAILABLE, HealthStatus::Error),
        Some(Status::Warn) => (StatusCode::OK, HealthStatus::Degraded),
        _ => (StatusCode::OK, HealthStatus::Ok),
    };
    let body = Health {
        status,
        timestamp: pqnode_clock::now_unix_ms(),
        uptime: u64::try_from(node.uptime().as_millis()).unwrap_or(u64::MAX),
        version: env!("CARGO_PKG_VERSION"),
        node_id: node.node_id,
        ready: node.is_ready(),
        components: reports.into_iter().map(|r| (r.name, r.into())).collect(),
        listeners: node
            .listeners()
            .into_iter()
            .map(|(name, l)| (name, l.stats()))
            .collect(),
    };
    (code, Json(body))
}

/// Liveness: the process answers
#[utoipa::path(
    get,
    path = "/livez",
    responses((status = 200, description = "alive", body = Liveness))
)]
pub(super) async fn livez() -> Json<Liveness> {
    Json(Liveness {
        status: LiveStatus::Alive,
    })
}

/// Readiness: start-up finished, not shutting down, no component failing
#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "starting, shutting down, or a component fails", body = Readiness),
    )
)]
pub(super) async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    let not_ready = |reason: String| Readiness {
        status: ReadyStatus::NotReady,
        reason: Some(reason),
        component: None,
        detail: None,
    };
    if state.node.ready.load(Ordering::Acquire) {
        // Ready means able to serve: not while a component it depends on fails.
        match state.node.components().failing() {
            None => (
                StatusCode::OK,
                Json(Readiness {
                    status: ReadyStatus::Ready,
                    reason: None,
                    component: None,
                    detail: None,
                }),
            ),
            Some((component, health)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    component: Some(component.to_owned()),
                    detail: health.reason,
                    ..not_ready(format!("{component} is failing"))
                }),
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
            Json(not_ready(why.to_owned())),
        )
    }
}
