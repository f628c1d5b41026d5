//! A PeerJS-compatible signaling endpoint, so the npm `peerjs` 1.5 client
//! works against a pqnode unchanged.
//!
//! It speaks the wire protocol of the reference server, npm `peer@1.0.2`:
//! a WebSocket at `/p2p-signaling/peerjs?key=&id=&token=` that answers OPEN,
//! ID-TAKEN or ERROR, relays OFFER / ANSWER / CANDIDATE / LEAVE / EXPIRE with
//! `src` stamped by the server, holds messages for absent peers and answers
//! them with one EXPIRE; plus `GET /p2p-signaling/{key}/id`. Unlike the
//! reference it caps message size, rate, queues and connections, and closes
//! every client with 1001 on shutdown.
//!
//! Where it deliberately differs from the reference (nothing the `peerjs`
//! client depends on):
//! - a socket replaced by a same-token reconnect is closed (4009) instead of
//!   being left open; `LEAVE` without `dst` also closes the sender's socket;
//! - any frame, not only `HEARTBEAT`, counts as a sign of life;
//! - ids and tokens are capped at `max_id_len`, messages at 64 KiB (1009),
//!   the rate per client with an `ERROR` and close 4029, queues per absent
//!   peer and in total (a sender whose message cannot be queued gets its
//!   `EXPIRE` at once), sockets per IP (HTTP 429 before the upgrade);
//! - a client that does not read its messages is disconnected (1008) and
//!   its senders get `LEAVE`, as the reference does when a send fails.
//!
//! It is not the native signaling protocol (`pqnode-signaling`): PeerJS ids
//! are bound to a client-chosen token, not to a key, so they live in this
//! endpoint's own namespace, are never published in the DHT and never
//! collide with native peer ids.
//!
//! ```no_run
//! # async fn serve() -> std::io::Result<()> {
//! use pqnode_peerjs::{PeerJsConfig, PeerJsServer, router};
//! let server = PeerJsServer::new(PeerJsConfig::default());
//! let app = router(server.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//!     .await
//! # }
//! ```

/// Entry points for the fuzz targets in `fuzz/`: not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses one PeerJS client frame as the endpoint does; must never panic.
    pub fn parse_client_frame(text: &str) {
        let _ = crate::wire::Inbound::parse(text);
    }
}

mod config;
mod connection;
mod http;
mod realm;
mod server;
mod wire;

pub use config::PeerJsConfig;
pub use http::{ID_PATH, PEERS_PATH, WS_PATH, router};
pub use server::{PeerJsServer, PeerJsStats, ShutdownOutcome};
