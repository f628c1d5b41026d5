//! Pages embedded in the binary, served on the signaling port so a browser
//! that can reach the node's public WebSocket can load them too.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The WebRTC chat demo (`crates/pqnode/web/demo.html`): two tabs find each
/// other by topic through the native signaling protocol and talk over a data
/// channel. Kept inside the crate so `cargo package` includes it.
const DEMO_HTML: &str = include_str!("../web/demo.html");

pub(crate) fn router() -> Router {
    Router::new()
        .route("/", get(demo))
        .route("/demo", get(demo))
        .route("/demo.html", get(demo))
}

async fn demo() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything the page needs is inline; it talks only to its own node.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src ws: wss:",
            ),
        ],
        DEMO_HTML,
    )
}
