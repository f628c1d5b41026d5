//! Counters and the snapshots built from them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pqnode_crypto::NodeId;
use pqnode_limits::LogThrottle;
use serde::Serialize;

use crate::wire::Protocol;

/// How often a line about an event a remote party can repeat at will is
/// logged at most; the counters above it are exact, the log only samples.
pub(crate) const NOISY_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// One throttle per kind of event outside input causes, so a flood of one
/// kind (bad Initials) cannot hide the first line of another.
#[derive(Debug)]
pub(crate) struct NoisyLogs {
    /// Incoming connections refused by a cap before any handshake.
    pub refused: LogThrottle,
    /// Inbound handshakes that failed or timed out.
    pub inbound_handshake: LogThrottle,
    /// Outbound handshakes refused (a peer or an address someone handed us).
    pub outbound_handshake: LogThrottle,
    /// Connections closed because the completed handshake proved the wrong thing.
    pub unacceptable: LogThrottle,
    /// Malformed request frames, and connections closed for repeating them.
    pub malformed: LogThrottle,
    pub abuse: LogThrottle,
}

impl Default for NoisyLogs {
    fn default() -> Self {
        let throttle = || LogThrottle::new(NOISY_LOG_INTERVAL);
        Self {
            refused: throttle(),
            inbound_handshake: throttle(),
            outbound_handshake: throttle(),
            unacceptable: throttle(),
            malformed: throttle(),
            abuse: throttle(),
        }
    }
}

/// Monotonic counters of one network; cheap to bump from any task.
#[derive(Default)]
pub(crate) struct Counters {
    /// Throttles for the log lines that go with some of these counters.
    pub noisy: NoisyLogs,
    pub handshakes_ok: AtomicU64,
    handshakes_failed: Mutex<BTreeMap<&'static str, u64>>,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    pub retries_sent: AtomicU64,
    /// By protocol name; ids nobody here registered count as `unknown`.
    requests_in: Mutex<BTreeMap<&'static str, u64>>,
    requests_out: Mutex<BTreeMap<&'static str, u64>>,
    pub requests_failed_out: AtomicU64,
    pub streams_reset: AtomicU64,
    pub closed_for_abuse: AtomicU64,
    /// UDP bytes of connections that are gone (live ones are read from quinn).
    pub closed_bytes_sent: AtomicU64,
    pub closed_bytes_received: AtomicU64,
}

impl Counters {
    pub(crate) fn handshake_failed(&self, reason: &'static str) {
        bump(&self.handshakes_failed, reason);
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        bump(&self.refused, reason);
    }

    /// A request arrived for `protocol`, or for an id nobody registered (`None`).
    pub(crate) fn request_in(&self, protocol: Option<Protocol>) {
        bump(
            &self.requests_in,
            protocol.map_or("unknown", Protocol::name),
        );
    }

    pub(crate) fn request_out(&self, protocol: Protocol) {
        bump(&self.requests_out, protocol.name());
    }

    pub(crate) fn snapshot(&self, live: LiveTotals) -> NetStats {
        NetStats {
            connections: live.inbound + live.outbound,
            handshakes_in_progress: live.handshakes_in_progress,
            inbound: live.inbound,
            outbound: live.outbound,
            handshakes_ok: self.handshakes_ok.load(Ordering::Relaxed),
            handshakes_failed: read(&self.handshakes_failed),
            refused: read(&self.refused),
            retries_sent: self.retries_sent.load(Ordering::Relaxed),
            requests_in: read(&self.requests_in),
            requests_out: read(&self.requests_out),
            requests_failed_out: self.requests_failed_out.load(Ordering::Relaxed),
            streams_reset: self.streams_reset.load(Ordering::Relaxed),
            connections_closed_for_abuse: self.closed_for_abuse.load(Ordering::Relaxed),
            duplicate_identity_connections: 0,
            identity_clashes: 0,
            bytes_sent: self.closed_bytes_sent.load(Ordering::Relaxed) + live.bytes_sent,
            bytes_received: self.closed_bytes_received.load(Ordering::Relaxed)
                + live.bytes_received,
        }
    }
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    *map.entry(key).or_default() += 1;
}

fn read(map: &Mutex<BTreeMap<&'static str, u64>>) -> BTreeMap<String, u64> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Totals over the connections open right now.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LiveTotals {
    pub handshakes_in_progress: usize,
    pub inbound: usize,
    pub outbound: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// A snapshot of the network's counters (`getStats()` of the spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetStats {
    /// Open connections, both directions.
    pub connections: usize,
    /// Inbound handshakes under way (the half-open count the caps apply to).
    pub handshakes_in_progress: usize,
    /// Open connections the peer dialed.
    pub inbound: usize,
    /// Open connections this node dialed.
    pub outbound: usize,
    /// Handshakes completed, both directions.
    pub handshakes_ok: u64,
    /// Failed handshakes (both directions) by reason, e.g. `no_common_algorithms`, `wrong_node_id`.
    pub handshakes_failed: BTreeMap<String, u64>,
    /// Incoming connections refused before a handshake, by cap.
    pub refused: BTreeMap<String, u64>,
    /// QUIC Retry packets sent to validate addresses under load.
    pub retries_sent: u64,
    /// Requests received, by protocol name (`unknown` for ids nobody registered).
    pub requests_in: BTreeMap<String, u64>,
    /// Requests sent, by protocol name.
    pub requests_out: BTreeMap<String, u64>,
    /// Requests sent that ended in an error, a peer's refusal or a timeout included.
    pub requests_failed_out: u64,
    /// Request streams reset because their frames were malformed.
    pub streams_reset: u64,
    /// Connections closed for sending too many malformed frames.
    pub connections_closed_for_abuse: u64,
    /// Inbound connections that proved this node's own id without being its own dial:
    /// another host holds this node's key (refused; see `/api/health`).
    pub duplicate_identity_connections: u64,
    /// Second connections of another node's id, from another address while its first
    /// connection still answered: refused, the first kept (a copied key, or a flapping path).
    pub identity_clashes: u64,
    /// UDP payload bytes, all connections since start.
    pub bytes_sent: u64,
    /// UDP payload bytes, all connections since start.
    pub bytes_received: u64,
}

/// Who dialed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The peer dialed us.
    Inbound,
    /// We dialed the peer.
    Outbound,
}

/// One connected peer, as `/api/peers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// The peer's node id, proven in the handshake.
    pub node_id: NodeId,
    /// The address the connection talks to.
    pub address: SocketAddr,
    /// Who dialed.
    pub direction: Direction,
    /// When the connection was established, Unix milliseconds.
    pub since_unix_ms: u64,
    /// QUIC's current round-trip estimate, milliseconds.
    pub rtt_ms: f64,
    /// UDP payload bytes received on this connection.
    pub bytes_in: u64,
    /// UDP payload bytes sent on this connection.
    pub bytes_out: u64,
    /// Key-exchange group of the handshake (`MLKEM1024`).
    pub key_exchange: &'static str,
    /// Signature algorithm the peer proved its key with (`ML-DSA-87`).
    pub signature: &'static str,
    /// False when we dialed by address alone and learned the id from the handshake.
    pub pinned: bool,
}

/// A change in the connection table, for components that track peers (the DHT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// `node_id` has a new connection in use (first contact, or a replacement,
    /// possibly from a new address). Its id was proven in the handshake.
    Connected {
        /// The peer's node id.
        node_id: NodeId,
        /// The address of the new connection.
        address: SocketAddr,
        /// Who dialed it.
        direction: Direction,
    },
    /// The connection in use for `node_id` closed and none replaced it.
    Disconnected {
        /// The peer whose last connection closed.
        node_id: NodeId,
    },
}
