//! Statistics snapshots, serialised in camelCase for `/api/dht/nodes` and `/api/peers`.

use std::net::SocketAddr;

use pqnode_crypto::NodeId;
use serde::Serialize;

use crate::message::RpcKind;
use crate::table::NodeState;

/// Requests by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcCounts {
    pub ping: u64,
    pub find_node: u64,
    pub find_value: u64,
    pub store: u64,
    pub add_provider: u64,
    pub get_providers: u64,
}

impl RpcCounts {
    pub(crate) fn bump(&mut self, kind: RpcKind) {
        let slot = match kind {
            RpcKind::Ping => &mut self.ping,
            RpcKind::FindNode => &mut self.find_node,
            RpcKind::FindValue => &mut self.find_value,
            RpcKind::Store => &mut self.store,
            RpcKind::AddProvider => &mut self.add_provider,
            RpcKind::GetProviders => &mut self.get_providers,
        };
        *slot += 1;
    }

    pub fn total(&self) -> u64 {
        self.ping
            + self.find_node
            + self.find_value
            + self.store
            + self.add_provider
            + self.get_providers
    }
}

/// Monotonic counters since the node started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    pub requests_sent: RpcCounts,
    pub requests_received: RpcCounts,
    pub responses_received: u64,
    /// Requests that got no answer in time.
    pub timeouts: u64,
    /// Lookup requests that passed their soft timeout (the lookup moved on without them).
    pub stalls: u64,
    /// Requests the driver reported failed, or answered by the wrong node or with the wrong type.
    pub failures: u64,
    pub lookups_started: u64,
    pub lookups_finished: u64,
    /// Sum of `rounds` over finished lookups (divide by `lookupsFinished` for the mean).
    pub lookup_rounds: u64,
    pub table_inserts: u64,
    /// Entries replaced because they went bad.
    pub table_evictions: u64,
    pub records_accepted: u64,
    pub records_rejected: u64,
    pub republishes: u64,
    /// Records this node handed on as a storer: republished to the K closest nodes, or
    /// stored on a new node closer to their key than we are.
    pub replications: u64,
    /// Newer record copies sent to nodes that answered a read with an older one.
    pub read_repairs: u64,
}

/// One routing-table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub bucket: u8,
    pub state: NodeState,
    /// Milliseconds since it last answered (or sent us a request), at the time of the snapshot.
    pub last_seen_ms_ago: u64,
    /// Smoothed round-trip time.
    pub rtt_ms: Option<u64>,
}

/// One bucket that holds something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketInfo {
    pub index: u8,
    pub entries: usize,
    pub replacements: usize,
    pub last_refresh_ms_ago: u64,
}

/// The DHT's statistics. The first three fields are the spec's `stats` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DhtStats {
    pub total_nodes: usize,
    pub buckets_used: usize,
    pub bootstrap_nodes: usize,
    pub good_nodes: usize,
    pub questionable_nodes: usize,
    pub bad_nodes: usize,
    pub records_stored: usize,
    pub providers_stored: usize,
    pub records_published: usize,
    pub queries_running: usize,
    pub requests_in_flight: usize,
    /// Mean rounds per finished lookup.
    pub mean_lookup_rounds: f64,
    pub buckets: Vec<BucketInfo>,
    pub counters: Counters,
}
