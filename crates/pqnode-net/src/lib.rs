//! pqnode's node-to-node transport: QUIC secured only by post-quantum TLS 1.3.
//!
//! What it is for: a [`Network`] binds one UDP endpoint, authenticates every
//! peer by its ML-DSA-87 key (its [`NodeId`](pqnode_crypto::NodeId) is the
//! hash of that key), keeps one connection per peer, and carries requests —
//! one bidirectional stream each, as length-prefixed, size-capped frames —
//! to the [`Handler`] registered for the request's [`Protocol`]. Features
//! (the DHT, signaling relay, direct messages) each define their protocol,
//! with its own size cap, and register it; the transport knows none of them.
//!
//! What it is not: it does not decide whom to talk to (the DHT does, through
//! [`Network::add_address`], [`Network::subscribe`] and the [`AddressLookup`]
//! it installs for dials by node id alone), it does not parse
//! other protocols' payloads, and it has no classical fallback — a peer that
//! cannot do ML-KEM-1024 and ML-DSA-87 is refused.
//!
//! Where things are: [`tls`] (the PQ-only rustls configuration and our two
//! verifiers), [`wire`] (frame header, caps, generated protobuf types; the
//! schema is `proto/*.proto`), `network` (endpoint, admission caps,
//! connection table, dialing, serving), [`config`], [`stats`].

pub mod config;
pub mod error;
pub mod handler;
mod network;
pub mod stats;
pub mod tls;
pub mod wire;

pub use config::{Limits, NetConfig, ParsePeerAddrError, PeerAddr};
pub use error::{DialError, RequestError, StartError};
pub use handler::{AddressLookup, BoxFuture, Caller, Handler, HandlerError};
pub use network::{Network, RegisterError};
pub use stats::{Direction, NetStats, PeerEvent, PeerInfo};
pub use wire::Protocol;
