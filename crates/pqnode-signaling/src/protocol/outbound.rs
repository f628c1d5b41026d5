//! What the server sends: replies, events and relayed messages.

use serde::Serialize;
use serde_json::value::RawValue;

use super::{ErrorCode, RelayKind, RequestId};
use pqnode_crypto::PeerId;

/// Limits announced in `hello`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireLimits {
    pub max_message_bytes: usize,
    pub max_topics_per_peer: usize,
    pub max_peers_per_topic: usize,
    pub max_topic_len: usize,
    pub max_sid_len: usize,
    pub rate_per_second: u32,
    pub rate_burst: u32,
}

/// One entry of a `peers` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PeerEntry {
    pub peer_id: PeerId,
    pub node_id: pqnode_crypto::NodeId,
}

/// Whether a relayed message reached a local peer or the peer's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AckStatus {
    Delivered,
    Forwarded,
}

/// Everything the server sends except relayed messages.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerMessage<'a> {
    Hello {
        v: u8,
        node_id: pqnode_crypto::NodeId,
        nonce: &'a str,
        heartbeat_ms: u64,
        register_timeout_ms: u64,
        limits: &'a WireLimits,
        ice_servers: &'a [crate::config::IceServer],
    },
    Registered {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        peer_id: PeerId,
        topics: Vec<&'a str>,
    },
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        to: PeerId,
        status: AckStatus,
    },
    Joined {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        topic: &'a str,
    },
    Left {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        topic: &'a str,
    },
    Peers {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        topic: &'a str,
        peers: &'a [PeerEntry],
    },
    Peer {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        peer_id: PeerId,
        online: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        node_id: Option<pqnode_crypto::NodeId>,
    },
    PeerJoined {
        topic: &'a str,
        peer_id: PeerId,
    },
    PeerLeft {
        topic: &'a str,
        peer_id: PeerId,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
    },
    SessionReplaced,
    Shutdown {
        reconnect_after_ms: u64,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        code: ErrorCode,
        message: &'a str,
    },
}

/// A relayed `offer` / `answer` / `candidate` / `bye` as the recipient sees it.
#[derive(Debug, Serialize)]
pub(crate) struct RelayedMessage<'a> {
    #[serde(rename = "type")]
    pub kind: RelayKind,
    pub from: PeerId,
    pub to: PeerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    pub data: &'a RawValue,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode;

    const PEER: &str = "00112233445566778899aabbccddeeff00112233";

    #[test]
    fn relayed_message_embeds_raw_data() {
        let data = RawValue::from_string(r#"{"candidate":"c","sdpMid":"0"}"#.into()).unwrap();
        let from: PeerId = PEER.parse().unwrap();
        let text = encode(&RelayedMessage {
            kind: RelayKind::Candidate,
            from,
            to: from,
            sid: None,
            data: &data,
        });
        assert_eq!(
            text,
            format!(
                r#"{{"type":"candidate","from":"{PEER}","to":"{PEER}","data":{{"candidate":"c","sdpMid":"0"}}}}"#
            )
        );
    }
}
