//! The HTTP surface: the WebSocket upgrade and the two REST calls of the
//! PeerJS client, under `/p2p-signaling/`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::connection;
use crate::server::PeerJsServer;
use crate::wire::ConnectParams;

/// The WebSocket path. The client builds it from `path: "/p2p-signaling/"`.
pub const WS_PATH: &str = "/p2p-signaling/peerjs";
/// `GET` a fresh id (text), as the client does when it is given none.
pub const ID_PATH: &str = "/p2p-signaling/{key}/id";
/// `GET` the ids online (JSON), only with `allow_discovery`.
pub const PEERS_PATH: &str = "/p2p-signaling/{key}/peers";

/// tungstenite's default read buffer is 128 KiB per socket; signaling
/// frames are small, and thousands of idle clients should cost little.
const READ_BUFFER: usize = 2 * 1024;

/// The PeerJS endpoint's routes, to merge into the signaling port's router.
///
/// The per-IP cap needs the peer address: serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(server: PeerJsServer) -> Router {
    // The reference enables CORS for every origin; demo pages on the API port
    // call `/id` on the signaling port.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET]);
    let rest = Router::new()
        .route(ID_PATH, get(new_id))
        .route(PEERS_PATH, get(list_peers))
        .layer(cors);
    Router::new()
        .route(WS_PATH, get(upgrade))
        .merge(rest)
        .with_state(server)
}

async fn upgrade(
    State(server): State<PeerJsServer>,
    RawQuery(query): RawQuery,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    ws: WebSocketUpgrade,
) -> Response {
    if server.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let ip = connect_info.map(|Extension(ConnectInfo(addr))| addr.ip());
    let Some(slot) = server.inner.admit(ip) else {
        return (StatusCode::TOO_MANY_REQUESTS, "too many connections").into_response();
    };
    let params = ConnectParams::from_query(query.as_deref().unwrap_or_default());
    let config = &server.inner.config;
    let inner = server.inner.clone();
    ws.max_message_size(config.max_message_size)
        .max_frame_size(config.max_message_size)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(config.max_message_size.saturating_mul(4))
        .on_upgrade(move |socket| {
            let tasks = inner.tasks.clone();
            tasks.track_future(connection::serve(inner, socket, params, slot))
        })
}

async fn new_id(State(server): State<PeerJsServer>) -> Response {
    loop {
        let Ok(id) = random_uuid() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        if !server.inner.realm().contains(&id) {
            // The reference answers text/html; the client reads it as text.
            return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], id).into_response();
        }
    }
}

async fn list_peers(State(server): State<PeerJsServer>) -> Response {
    if !server.inner.config.allow_discovery {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(server.inner.realm().peer_ids()).into_response()
}

/// A random (version 4) UUID in its usual text form, the reference's id format.
fn random_uuid() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let id = random_uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(id, random_uuid().unwrap());
    }
}
