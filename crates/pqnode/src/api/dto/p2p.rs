//! Connected nodes and direct messages.

use std::net::SocketAddr;

use pqnode_crypto::NodeId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `/api/peers`: P2P connections merged with signaling and DHT figures.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Peers {
    /// Live QUIC connections.
    pub connected: usize,
    /// Distinct nodes known: connections and the DHT routing table.
    pub total: usize,
    pub list: Vec<Peer>,
    pub signaling: SignalingFigures,
    pub dht: DhtFigures,
}

/// One connected peer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Peer {
    /// The peer's node id, proven in the handshake.
    #[schema(value_type = String)]
    pub node_id: NodeId,
    #[schema(value_type = String)]
    pub address: SocketAddr,
    pub direction: Direction,
    /// When the connection was established, Unix milliseconds.
    pub since_unix_ms: u64,
    /// QUIC's current round-trip estimate, milliseconds.
    pub rtt_ms: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    #[schema(examples("MLKEM1024"))]
    pub key_exchange: &'static str,
    #[schema(examples("ML-DSA-87"))]
    pub signature: &'static str,
    /// False when we dialed by address alone and learned the id from the handshake.
    pub pinned: bool,
}

/// Who dialed a connection.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

impl From<pqnode_net::PeerInfo> for Peer {
    fn from(peer: pqnode_net::PeerInfo) -> Self {
        let pqnode_net::PeerInfo {
            node_id,
            address,
            direction,
            since_unix_ms,
            rtt_ms,
            bytes_in,
            bytes_out,
            key_exchange,
            signature,
            pinned,
        } = peer;
        Self {
            node_id,
            address,
            direction: match direction {
                pqnode_net::Direction::Inbound => Direction::Inbound,
                pqnode_net::Direction::Outbound => Direction::Outbound,
            },
            since_unix_ms,
            rtt_ms,
            bytes_in,
            bytes_out,
            key_exchange,
            signature,
            pinned,
        }
    }
}

/// The signaling server's figures, as `/api/peers` shows them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignalingFigures {
    /// Open WebSocket connections, registered or not.
    pub connections: usize,
    pub peers: usize,
    pub connected_peers: usize,
    pub dht_nodes: usize,
    pub dht_buckets: usize,
}

/// The DHT's three headline figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtFigures {
    pub total_nodes: usize,
    pub buckets_used: usize,
    pub bootstrap_nodes: usize,
}

/// `POST /api/messages`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendMessage {
    /// The receiving node's id, 40 hex characters.
    pub to: String,
    /// UTF-8 text.
    #[schema(max_length = 65536)]
    pub body: String,
}

/// The receiving node committed the message to its store.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Delivered {
    #[schema(value_type = String)]
    pub to: NodeId,
    /// The receiver's clock when it stored the message, Unix milliseconds.
    pub delivered_at: u64,
    /// Always true: an answer is only given once the message is on the receiver's disk.
    pub stored: bool,
}

/// `GET /api/messages`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListMessages {
    /// Messages per page.
    #[param(default = 100, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next` of an earlier page: lists the messages received before that one.
    pub before: Option<String>,
}

/// One page of received messages, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MessagePage {
    pub messages: Vec<Message>,
    /// Messages in the whole log.
    pub total: u64,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next: Option<String>,
}

/// A received message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    /// Its position in the log: a cursor for `before`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The sender's node id, authenticated by the post-quantum TLS handshake.
    #[schema(value_type = String)]
    pub from: NodeId,
    pub body: String,
    /// The sender's clock (informative), Unix milliseconds.
    pub sent_at: u64,
    /// This node's clock, Unix milliseconds.
    pub received_at: u64,
}

impl From<pqnode_messaging::MessagePage> for MessagePage {
    fn from(page: pqnode_messaging::MessagePage) -> Self {
        let pqnode_messaging::MessagePage {
            messages,
            total,
            next,
        } = page;
        let messages = messages
            .into_iter()
            .map(|m| {
                let pqnode_messaging::StoredMessage {
                    id,
                    from,
                    body,
                    sent_at,
                    received_at,
                } = m;
                Message {
                    id,
                    from,
                    body,
                    sent_at,
                    received_at,
                }
            })
            .collect();
        Self {
            messages,
            total,
            next,
        }
    }
}
