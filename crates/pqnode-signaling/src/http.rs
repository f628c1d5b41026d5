//! The axum side: the route and the WebSocket upgrade.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::get;

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

/// The client's IP address, when the server was started with connect info.
struct ClientIp(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

async fn upgrade(
    State(server): State<SignalingServer>,
    ClientIp(ip): ClientIp,
    ws: WebSocketUpgrade,
) -> Response {
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
