//! pqnode's native WebRTC signaling server (`ws://…/p2p-signaling`).
//!
//! What it is for: browsers (and native clients) register a key-bound peer
//! id by signing a server challenge, find each other by topic or id, and
//! exchange WebRTC offers, answers and ICE candidates through the server,
//! which relays them in order without ever parsing SDP. Peers attached to
//! other nodes are reached through the [`federation`] seam: a
//! [`federation::Directory`] of presence records and a
//! [`federation::Forwarder`] that carries one envelope one hop.
//!
//! What it is not: a WebRTC peer, a TURN server, the PeerJS-compatible
//! endpoint (`pqnode-peerjs`), or a DHT (the binary implements the
//! federation traits over `pqnode-dht` and QUIC). The wire protocol is
//! specified in `docs/signaling-protocol.md`.
//!
//! ```no_run
//! # async fn run(node_id: pqnode_crypto::NodeId) -> std::io::Result<()> {
//! use pqnode_signaling::{SignalingConfig, SignalingServer, router};
//! let server = SignalingServer::new(node_id, SignalingConfig::default());
//! let app = router(server.clone());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3001").await?;
//! axum::serve(
//!     listener,
//!     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
//! )
//! .await
//! # }
//! ```

/// Entry points for the fuzz targets in `fuzz/`: not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses one client text frame as the server does; must never panic.
    pub fn parse_client_message(text: &str) {
        let _ = crate::protocol::parse(text);
    }

    /// Decodes what other nodes send (relay envelopes with their proofs, withdrawals,
    /// delivery outcomes, DHT presence entries) and checks it as the receiving node does;
    /// must never panic.
    pub fn decode_envelope(bytes: &[u8]) {
        if let Ok(envelope) = crate::federation::wire::decode_envelope(bytes) {
            let _ = envelope.from_proof.verify(envelope.from, envelope.origin);
        }
        let _ = crate::federation::wire::decode_withdrawal(bytes);
        let _ = crate::federation::wire::decode_delivery(bytes);
        // A DHT presence entry, checked as a storer does (the bytes also stand for the key).
        let publisher = pqnode_crypto::NodeId::from_bytes([1; 20]);
        let with_prefix = [crate::federation::wire::PRESENCE_ENTRY_PREFIX, bytes].concat();
        for value in [bytes, with_prefix.as_slice()] {
            let _ = crate::federation::check_presence_entry(&publisher, publisher, value);
        }
    }
}

mod auth;
mod config;
mod connection;
pub mod federation;
mod http;
mod presence;
mod protocol;
mod registry;
mod routing;
mod server;
mod session;
mod stats;

pub use auth::{NONCE_LEN, REGISTER_DOMAIN, registration_body, registration_message};
pub use config::{
    IceServer, MAX_REQUEST_ID_LEN, MAX_SID_LEN, MAX_TOPIC_LEN, RateLimit, SignalingConfig,
};
pub use http::{PATH, router};
pub use pqnode_crypto::{Algorithm, PEER_ID_LEN, ParsePeerIdError, PeerId};
pub use presence::{PresenceProof, ProofError};
pub use protocol::{ErrorCode, RelayKind, close};
pub use registry::PeerSummary;
pub use routing::EnvelopeError;
pub use server::SignalingServer;
pub use stats::SignalingStats;
