//! The wire protocol: protocol ids, frame headers, size caps and the
//! generated protobuf messages. The schema's source of truth is
//! `proto/*.proto`; this module only adds the fixed frame header, which
//! must be read before the body.

mod frame;

pub use frame::{
    FRAME_HEADER_LEN, FrameError, RequestHeader, ResponseHeader, WIRE_VERSION, encode_request,
    encode_response,
};

/// Messages generated from `proto/wire.proto`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/pqnode.wire.v1.rs"));
}

/// Messages generated from `proto/message.proto`.
pub mod message_pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/pqnode.message.v1.rs"));
}

use serde::Serialize;

/// Who handles a request: one id per protocol that runs over the node's
/// connections. Later work adds message types inside a protocol, not new
/// streams or framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Protocol {
    Dht,
    SignalingRelay,
    Sync,
    Message,
    /// Answered by the transport itself (liveness probes); handlers cannot claim it.
    Ping,
}

impl Protocol {
    /// Every protocol, in wire-id order.
    pub const ALL: [Protocol; 5] = [
        Protocol::Dht,
        Protocol::SignalingRelay,
        Protocol::Sync,
        Protocol::Message,
        Protocol::Ping,
    ];

    pub const fn wire_id(self) -> u8 {
        let id = match self {
            Protocol::Dht => pb::Protocol::Dht,
            Protocol::SignalingRelay => pb::Protocol::SignalingRelay,
            Protocol::Sync => pb::Protocol::Sync,
            Protocol::Message => pb::Protocol::Message,
            Protocol::Ping => pb::Protocol::Ping,
        };
        id as u8
    }

    pub fn from_wire_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.wire_id() == id)
    }

    /// Largest body a frame of this protocol may carry, in either direction.
    ///
    /// Sized to the largest legitimate message with headroom: a DHT reply
    /// carries several signed records (ML-DSA-87 key 2.6 KB + signature
    /// 4.6 KB each), a sync reply can be a document snapshot.
    pub const fn max_body_len(self) -> usize {
        match self {
            Protocol::Dht => 256 * 1024,
            Protocol::SignalingRelay => 64 * 1024,
            Protocol::Sync => 8 * 1024 * 1024,
            Protocol::Message => MAX_MESSAGE_BODY_LEN + 16 * 1024,
            Protocol::Ping => 64,
        }
    }

    /// Index into per-protocol counters.
    pub(crate) const fn index(self) -> usize {
        match self {
            Protocol::Dht => 0,
            Protocol::SignalingRelay => 1,
            Protocol::Sync => 2,
            Protocol::Message => 3,
            Protocol::Ping => 4,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Dht => "DHT",
            Protocol::SignalingRelay => "SIGNALING_RELAY",
            Protocol::Sync => "SYNC",
            Protocol::Message => "MESSAGE",
            Protocol::Ping => "PING",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Largest body of a direct message (PROTOCOL_MESSAGE).
pub const MAX_MESSAGE_BODY_LEN: usize = 64 * 1024;

/// Longest `Failure.detail` we send or keep.
pub const MAX_FAILURE_DETAIL_LEN: usize = 512;

/// QUIC application error code for a stream reset.
pub(crate) fn stream_code(code: pb::StreamErrorCode) -> quinn::VarInt {
    quinn::VarInt::from_u32(code as u32)
}

/// QUIC application error code for a connection close.
pub(crate) fn close_code(code: pb::CloseCode) -> quinn::VarInt {
    quinn::VarInt::from_u32(code as u32)
}
