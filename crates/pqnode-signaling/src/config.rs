//! Server settings. Every limit the protocol document promises lives here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A token-bucket rate: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Tokens added per second: the sustained rate.
    pub per_second: u32,
    /// Tokens held at most: what may arrive at once after a quiet spell.
    pub burst: u32,
}

/// One STUN/TURN server, in the browser's `RTCIceServer` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs of one server.
    pub urls: Vec<String>,
    /// TURN user name; none for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password; none for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Everything the signaling server can be told.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    /// Largest text frame and message accepted (also axum's frame and message caps).
    pub max_message_bytes: usize,
    /// A connection that has not registered by then is closed (4001).
    pub register_timeout: Duration,
    /// Failed `register` attempts allowed on one connection before close 1008.
    pub max_register_attempts: u32,
    /// WebSocket Ping period; two silent periods close the connection (4008).
    pub heartbeat_interval: Duration,
    /// Largest accepted distance between a registration timestamp and our clock.
    pub max_clock_skew: Duration,
    /// Messages per session.
    pub session_rate: RateLimit,
    /// Messages per client IP address, summed over its connections.
    pub ip_rate: RateLimit,
    /// Directory lookups (for relay to, or lookup of, non-local peers), node-wide.
    pub directory_lookup_rate: RateLimit,
    /// WebSocket connections on the whole server; beyond it new ones are closed 1013.
    pub max_connections: usize,
    /// WebSocket connections from one IP address; beyond it new ones are closed 1013.
    pub max_connections_per_ip: usize,
    /// Topics one session may join (`TOO_MANY_TOPICS` beyond).
    pub max_topics_per_peer: usize,
    /// Local peers per topic; remote peers found through the directory are not counted.
    pub max_peers_per_topic: usize,
    /// Messages waiting for a slow client before senders get `PEER_BUSY`.
    pub outbound_queue: usize,
    /// How often a connected peer's presence is republished to the directory.
    pub presence_refresh: Duration,
    /// How long we remember which node a remote peer was last seen on.
    pub remote_route_ttl: Duration,
    /// Bound on every call into the directory or the forwarder.
    pub federation_timeout: Duration,
    /// Suggested client back-off, sent in the `shutdown` message.
    pub reconnect_after: Duration,
    /// Sent to clients in `hello`.
    pub ice_servers: Vec<IceServer>,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            register_timeout: Duration::from_secs(10),
            max_register_attempts: 5,
            heartbeat_interval: Duration::from_secs(30),
            max_clock_skew: Duration::from_secs(60),
            session_rate: RateLimit {
                per_second: 50,
                burst: 100,
            },
            ip_rate: RateLimit {
                per_second: 200,
                burst: 400,
            },
            directory_lookup_rate: RateLimit {
                per_second: 200,
                burst: 400,
            },
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_topics_per_peer: 16,
            max_peers_per_topic: 256,
            outbound_queue: 256,
            presence_refresh: Duration::from_secs(60),
            remote_route_ttl: Duration::from_secs(600),
            federation_timeout: Duration::from_secs(5),
            reconnect_after: Duration::from_secs(5),
            ice_servers: Vec::new(),
        }
    }
}

/// Longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;
/// Longest `sid` (the client's own connection label), in bytes.
pub const MAX_SID_LEN: usize = 128;
/// Longest textual request `id`, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 64;
