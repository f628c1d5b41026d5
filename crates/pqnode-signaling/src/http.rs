//! The axum side: the route and the WebSocket upgrade.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use crate::connection::{admit, serve};
use crate::server::SignalingServer;

/// Where the native signaling endpoint is served.
pub const PATH: &str = "/p2p-signaling";

/// tungstenite's read and write buffers (128 KiB each by default). Signaling
/// messages are small, and at thousands of idle connections the default
/// buffers would be most of the server's memory.
pub(crate) const SOCKET_BUFFER: usize = 4 * 1024;

/// The signaling endpoint at [`PATH`], ready to `merge` into the node's router.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so the
/// per-IP limits apply; without the client address they are skipped.
pub fn router(server: SignalingServer) -> Router {
    Router::new().route(PATH, get(upgrade)).with_state(server)
}

async fn upgrade(
    State(server): State<SignalingServer>,
    // `None` when the server runs without connect info: the per-IP limits are skipped.
    // (axum 0.8's `ConnectInfo` is no optional extractor; `Extension` is.)
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    ws: WebSocketUpgrade,
) -> Response {
    let ip = connect_info.map(|Extension(ConnectInfo(addr))| addr.ip());
    let inner = Arc::clone(&server.inner);
    // Counted before the upgrade so a flood of handshakes cannot overshoot the caps.
    let admission = admit(&inner, ip);
    let limit = inner.config.max_message_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .on_upgrade(move |socket| {
            let tasks = inner.tasks.clone();
            tasks.track_future(serve(inner, socket, admission))
        })
}
