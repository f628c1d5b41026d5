//! The HTTP API: `/api/*`, `/livez`, `/readyz`, `/metrics`.

mod auth;
mod crypto;
mod dht;
mod error;
pub use error::{ApiError, ApiJson, not_found};
mod health;
mod openapi;
mod p2p;
mod system;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post, put};
use axum::{Router, middleware};
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
    // Methods that change state need the API token; reads are open on the
    // (loopback by default) API address.
    let auth = middleware::from_fn_with_state(state.clone(), auth::require_token);
    Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(system::metrics))
        .route("/api/health", get(health::health))
        .route("/api/crypto/status", get(crypto::status))
        .route("/api/system", get(system::system))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/peers", get(p2p::peers))
        .route("/api/dht/nodes", get(dht::nodes))
        .route("/api/dht/buckets", get(dht::buckets))
        .route("/api/dht/lookup/{id}", get(dht::lookup))
        .route(
            "/api/dht/records/{key}",
            get(dht::get_record).merge(put(dht::put_record).route_layer(auth.clone())),
        )
        .route(
            "/api/messages",
            get(p2p::list_messages).merge(post(p2p::send_message).route_layer(auth.clone())),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        // Outermost, so rejections and the timeout above become JSON errors too.
        .layer(middleware::map_response(error::json_errors))
        .with_state(state)
}
