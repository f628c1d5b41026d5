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
//! verifiers; public only as far as a raw QUIC endpoint needs it to reach a
//! node), [`wire`] (frame header, caps, generated protobuf types; the schema
//! is `proto/*.proto`; internal but for [`FailureCode`]), `network`
//! (endpoint, admission caps, connection table, dialing, serving),
//! [`config`], [`stats`].

pub mod config;
pub mod error;
pub mod handler;
mod network;
pub mod stats;
pub mod tls;
pub mod wire;

/// Entry points for the fuzz targets in `fuzz/`: not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::wire::{FRAME_HEADER_LEN, Protocol, RequestHeader, ResponseHeader, pb};
    use prost::Message;

    /// Decodes `data` as a request and a response frame header, then its body as a
    /// `Failure`, as the transport does; must never panic, and never accept a body over
    /// the protocol's cap.
    pub fn decode_frame(data: &[u8]) {
        const PROTOCOLS: [Protocol; 3] = [
            Protocol::PING,
            Protocol::new(1, "DHT", 256 * 1024),
            Protocol::new(4, "MESSAGE", 80 * 1024),
        ];
        let Some((header, body)) = data.split_first_chunk::<FRAME_HEADER_LEN>() else {
            return;
        };
        if let Ok(request) = RequestHeader::decode(header) {
            for protocol in PROTOCOLS {
                if let Ok(len) = request.body_len_for(protocol) {
                    assert!(len <= protocol.max_body_len());
                }
            }
        }
        for protocol in PROTOCOLS {
            let _ = ResponseHeader::decode(header, protocol);
        }
        let _ = pb::Failure::decode(body);
    }
}

pub use config::{Limits, NetConfig, ParsePeerAddrError, PeerAddr};
pub use error::{DialError, RequestError, StartError};
pub use handler::{AddressLookup, BoxFuture, Caller, Handler, HandlerError};
pub use network::{Network, RegisterError};
pub use stats::{Direction, NetStats, PeerEvent, PeerInfo};
pub use tls::TlsError;
pub use wire::pb::FailureCode;
pub use wire::{FrameError, Protocol};
