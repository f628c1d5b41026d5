//! Counters and the stats snapshot (`getStats()` of the spec).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::protocol::ErrorCode;

/// What sessions count: messages dropped by a rate limit, `error`s sent by code.
/// Monotonic, updated without locks.
#[derive(Default)]
pub(crate) struct Counters {
    pub rate_limited: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

/// What the [`Router`](crate::routing::Router) counts: relay messages handed over here and
/// to other nodes, directory queries throttled, proofs refused. Monotonic, without locks.
#[derive(Default)]
pub(crate) struct RoutingCounters {
    pub relayed_local: AtomicU64,
    pub forwarded: AtomicU64,
    pub delivered_from_remote: AtomicU64,
    pub lookups_throttled: AtomicU64,
    pub bad_proofs: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, code: ErrorCode) {
        if let Some(counter) = self.errors.get(code as usize) {
            Self::bump(counter);
        }
    }

    pub(crate) fn errors(&self) -> BTreeMap<&'static str, u64> {
        ErrorCode::ALL
            .iter()
            .zip(&self.errors)
            .map(|(code, n)| (code.as_str(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// A snapshot of the signaling server, as `/api/peers` shows it under `signaling`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalingStats {
    /// Open WebSocket connections, registered or not.
    pub connections: usize,
    /// Peers known to this node: local ones plus remote ones it has routed to recently.
    pub peers: usize,
    /// Registered peers attached to this node.
    pub connected_peers: usize,
    /// Relay messages handed to a local peer (including ones from other nodes).
    pub messages_relayed: u64,
    /// Relay messages another node accepted for one of its peers.
    pub messages_forwarded: u64,
    /// Relay messages from other nodes delivered here.
    pub messages_from_remote: u64,
    /// Messages dropped by a rate limit.
    pub rate_limited: u64,
    /// Directory lookups skipped because the node-wide lookup budget was spent.
    pub lookups_throttled: u64,
    /// Presence claims by other nodes that their proof did not back (a node
    /// claiming a peer it does not serve, or an envelope speaking for one).
    pub bad_proofs: u64,
    /// `error` messages sent, by code (codes never sent are omitted).
    pub errors: BTreeMap<&'static str, u64>,
}
