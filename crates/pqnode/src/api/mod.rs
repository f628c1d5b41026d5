//! The HTTP API: `/api/*`, `/livez`, `/readyz`, `/metrics`.
//!
//! Who may call what (also in the README's API table and in
//! `docs/architecture.md`):
//!
//! - **Public** — the dashboard page `/` (it holds no data; its requests follow these
//!   rules), `/livez`, `/readyz`, `/api/health`, `/api/crypto/status`,
//!   `/api/openapi.json`, `/metrics`: what orchestrators, load balancers and
//!   scrapers need without a secret. They carry statuses, counters, public
//!   key sizes and the node id (which every peer learns anyway), never who
//!   this node talks to or what it received.
//! - **Private reads** — `/api/peers`, `/api/messages` (GET), `/api/system`
//!   and the `/api/dht/*` reads: the token in production. They show peers'
//!   addresses, received messages and host details, and a lookup or record
//!   fetch makes the node do network work. In development they stay open on
//!   the (loopback by default) API address.
//!   `GET /api/docs/*` (documents' content) and `GET /api/ai/search` are private reads
//!   too.
//! - **Changes** — `POST /api/messages`, `POST /api/dht/records`, and every
//!   change to documents, their access and capability tokens: the token, in every mode.
//!
//! Every request, whatever its route, first passes the `Host` check
//! (`host.rs`), which keeps web pages out through DNS rebinding.

mod ai;
mod auth;
mod crypto;
mod dashboard;
mod dht;
mod docs;
use crate::http_error as error;
pub(crate) use crate::http_error::{ApiError, ApiJson};
mod health;
pub(crate) mod host;
mod openapi;
mod p2p;
mod system;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post, put};
use axum::{Router, middleware};
use tower_http::timeout::TimeoutLayer;

use crate::state::NodeShared;

#[derive(Clone)]
pub(crate) struct ApiState {
    pub node: Arc<NodeShared>,
    pub hosts: Arc<host::HostPolicy>,
}

/// Largest request body the API accepts.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body `POST /api/ai/index` accepts: the index's text cap and the JSON around it.
const MAX_INDEX_BODY_BYTES: usize = pqnode_search::MAX_TEXT_BYTES + 64 * 1024;
/// Largest Yjs update `POST /api/docs/{doc}/updates` accepts (the engine's own cap).
const MAX_UPDATE_BODY_BYTES: usize = 4 * 1024 * 1024;

pub(crate) fn router(node: Arc<NodeShared>) -> Router {
    let hosts = Arc::new(host::HostPolicy::new(&node.config.api));
    let state = ApiState { node, hosts };
    // See the module documentation for which routes are public and why.
    let auth = middleware::from_fn_with_state(state.clone(), auth::require_token);
    let private = middleware::from_fn_with_state(state.clone(), auth::require_token_in_production);
    Router::new()
        .route("/", get(dashboard::page))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(system::metrics))
        .route("/api/health", get(health::health))
        .route("/api/crypto/status", get(crypto::status))
        .route("/api/openapi.json", get(openapi::document))
        .route(
            "/api/system",
            get(system::system).route_layer(private.clone()),
        )
        .route("/api/peers", get(p2p::peers).route_layer(private.clone()))
        .route(
            "/api/dht/nodes",
            get(dht::nodes).route_layer(private.clone()),
        )
        .route(
            "/api/dht/buckets",
            get(dht::buckets).route_layer(private.clone()),
        )
        .route(
            "/api/dht/contacts",
            post(dht::add_contact).route_layer(auth.clone()),
        )
        .route(
            "/api/dht/contacts/{id}",
            delete(dht::remove_contact).route_layer(auth.clone()),
        )
        .route(
            "/api/dht/lookup/{id}",
            get(dht::lookup).route_layer(private.clone()),
        )
        .route(
            "/api/dht/records",
            post(dht::publish_record).route_layer(auth.clone()),
        )
        .route(
            "/api/dht/records/{key}",
            get(dht::get_record).route_layer(private.clone()),
        )
        .route(
            "/api/ai/search",
            get(ai::search).route_layer(private.clone()),
        )
        .route(
            "/api/ai/index",
            post(ai::index_text)
                .route_layer(auth.clone())
                .layer(axum::extract::DefaultBodyLimit::max(MAX_INDEX_BODY_BYTES)),
        )
        .route(
            "/api/ai/index/{id}",
            delete(ai::remove_text).route_layer(auth.clone()),
        )
        .route("/api/docs", get(docs::list).route_layer(private.clone()))
        .route(
            "/api/changes",
            get(docs::changes).route_layer(private.clone()),
        )
        .route(
            "/api/docs/{doc}",
            get(docs::get)
                .route_layer(private.clone())
                .merge(delete(docs::delete).route_layer(auth.clone())),
        )
        .route(
            "/api/docs/{doc}/text",
            get(docs::text).route_layer(private.clone()),
        )
        .route(
            "/api/docs/{doc}/history",
            get(docs::history).route_layer(private.clone()),
        )
        .route(
            "/api/docs/{doc}/versions/{version}",
            get(docs::version).route_layer(private.clone()),
        )
        .route(
            "/api/docs/{doc}/updates",
            post(docs::apply)
                .route_layer(auth.clone())
                .layer(axum::extract::DefaultBodyLimit::max(MAX_UPDATE_BODY_BYTES)),
        )
        .route(
            "/api/docs/{doc}/access",
            put(docs::set_access).route_layer(auth.clone()),
        )
        .route(
            "/api/docs/{doc}/tokens",
            post(docs::issue_token).route_layer(auth.clone()),
        )
        .route(
            "/api/capabilities/{id}",
            delete(docs::revoke).route_layer(auth.clone()),
        )
        .route(
            "/api/messages",
            get(p2p::list_messages)
                .route_layer(private)
                .merge(post(p2p::send_message).route_layer(auth)),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        // Before routing, so unknown paths do not answer foreign hosts either.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            host::check_host,
        ))
        // Outermost, so rejections and the timeout above become JSON errors too.
        .layer(middleware::map_response(error::json_errors))
        .with_state(state)
}
