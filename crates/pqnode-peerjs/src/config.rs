//! Settings of the PeerJS endpoint. Defaults follow npm `peer@1.0.2` where it
//! has one, and add the caps the reference server lacks.

use std::time::Duration;

/// Settings of a [`PeerJsServer`](crate::PeerJsServer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerJsConfig {
    /// The API key clients must present (`?key=`). PeerJS' default is `"peerjs"`.
    pub key: String,
    /// How long a message for an absent peer waits before its sender gets `EXPIRE`.
    pub expire_timeout: Duration,
    /// A client silent for this long is disconnected (the reference default is 90 s;
    /// the client sends `HEARTBEAT` every 5 s).
    pub alive_timeout: Duration,
    /// Registered peers at most; beyond it new clients get the reference's
    /// "concurrent user limit" error.
    pub concurrent_limit: usize,
    /// Open WebSockets per remote IP at most (checked only when the server is
    /// served with `into_make_service_with_connect_info::<SocketAddr>()`).
    pub max_connections_per_ip: usize,
    /// Largest accepted WebSocket message, in bytes.
    pub max_message_size: usize,
    /// Longest accepted peer id and token, in bytes.
    pub max_id_len: usize,
    /// Sustained messages per second a client may send.
    pub rate_per_second: u32,
    /// Messages a client may send in a burst above the sustained rate.
    pub rate_burst: u32,
    /// Messages held for one absent peer at most.
    pub max_queued_per_peer: usize,
    /// Messages held for all absent peers together at most.
    pub max_queued_total: usize,
    /// Frames waiting to be written to one client at most; a client that
    /// falls this far behind is disconnected as dead.
    pub outbound_buffer: usize,
    /// A write that takes longer than this disconnects the client.
    pub write_timeout: Duration,
    /// Answer `GET {key}/peers` with the list of ids (off, as in the reference).
    pub allow_discovery: bool,
}

impl Default for PeerJsConfig {
    fn default() -> Self {
        Self {
            key: "peerjs".to_owned(),
            expire_timeout: Duration::from_millis(5000),
            alive_timeout: Duration::from_millis(90_000),
            concurrent_limit: 5000,
            max_connections_per_ip: 256,
            max_message_size: 64 * 1024,
            max_id_len: 256,
            rate_per_second: 100,
            rate_burst: 200,
            max_queued_per_peer: 64,
            max_queued_total: 10_000,
            outbound_buffer: 256,
            write_timeout: Duration::from_secs(10),
            allow_discovery: false,
        }
    }
}
