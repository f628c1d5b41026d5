//! The HTTP API: `/api/*`, `/livez`, `/readyz`, `/metrics`.

mod crypto;
mod error;
pub use error::not_found;
mod health;
mod openapi;
mod system;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_http::timeout::TimeoutLayer;

use crate::node::NodeShared;

#[derive(Clone)]
pub struct ApiState {
    pub node: Arc<NodeShared>,
}

/// Largest request body the API accepts.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(node: Arc<NodeShared>) -> Router {
    let state = ApiState { node };
    Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(system::metrics))
        .route("/api/health", get(health::health))
        .route("/api/crypto/status", get(crypto::status))
        .route("/api/system", get(system::system))
        .route("/api/openapi.json", get(openapi::document))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}
