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
    /// `PING`s.
    pub ping: u64,
    /// `FIND_NODE`s.
    pub find_node: u64,
    /// `FIND_VALUE`s.
    pub find_value: u64,
    /// `STORE`s.
    pub store: u64,
    /// `ADD_PROVIDER`s.
    pub add_provider: u64,
    /// `GET_PROVIDERS`.
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

    /// All requests, of every type.
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
    /// Requests this node sent, by type.
    pub requests_sent: RpcCounts,
    /// Requests other nodes sent us, by type.
    pub requests_received: RpcCounts,
    /// Responses accepted: from the node we asked, of the type we asked for.
    pub responses_received: u64,
    /// Requests that got no answer in time.
    pub timeouts: u64,
    /// Lookup requests that passed their soft timeout (the lookup moved on without them).
    pub stalls: u64,
    /// Requests the driver reported failed, or answered by the wrong node or with the wrong type.
    pub failures: u64,
    /// Lookups started, including bootstrap and bucket refreshes.
    pub lookups_started: u64,
    /// Lookups that finished, with or without a result.
    pub lookups_finished: u64,
    /// Sum of `rounds` over finished lookups (divide by `lookupsFinished` for the mean).
    pub lookup_rounds: u64,
    /// Answering nodes that entered the routing table, into a free slot or in place of a bad entry.
    pub table_inserts: u64,
    /// Entries replaced because they went bad.
    pub table_evictions: u64,
    /// `STORE`s and `ADD_PROVIDER`s from other nodes that we verified and stored.
    pub records_accepted: u64,
    /// `STORE`s and `ADD_PROVIDER`s from other nodes that we refused (invalid, expired, or over a
    /// limit).
    pub records_rejected: u64,
    /// Our own records and provider entries published again on their republish interval.
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
    /// The node's id.
    pub id: NodeId,
    /// The address it answered from.
    pub addr: SocketAddr,
    /// Its bucket: `i` holds the nodes at XOR distance `[2^i, 2^(i+1))` from us.
    pub bucket: u8,
    /// Its liveness (good, questionable, bad).
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
    /// Bucket number: `i` holds the nodes at XOR distance `[2^i, 2^(i+1))` from us.
    pub index: u8,
    /// Entries in the bucket (at most K).
    pub entries: usize,
    /// Nodes waiting in its replacement cache for a slot.
    pub replacements: usize,
    /// Milliseconds since a lookup last refreshed the bucket (or since it was created).
    pub last_refresh_ms_ago: u64,
}

/// The DHT's statistics. The first three fields are the spec's `stats` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DhtStats {
    /// Routing-table entries, good, questionable and bad.
    pub total_nodes: usize,
    /// Buckets holding at least one entry.
    pub buckets_used: usize,
    /// Seed peers the node was bootstrapped with.
    pub bootstrap_nodes: usize,
    /// Entries in the [`NodeState::Good`] state.
    pub good_nodes: usize,
    /// Entries in the [`NodeState::Questionable`] state.
    pub questionable_nodes: usize,
    /// Entries in the [`NodeState::Bad`] state.
    pub bad_nodes: usize,
    /// Records held for others (and our own, stored locally too).
    pub records_stored: usize,
    /// Provider entries held, ours and others'.
    pub providers_stored: usize,
    /// Records and provider entries this node publishes and republishes itself.
    pub records_published: usize,
    /// Queries (lookups, puts, gets) running now.
    pub queries_running: usize,
    /// Requests sent and not yet answered, failed or timed out.
    pub requests_in_flight: usize,
    /// Mean rounds per finished lookup.
    pub mean_lookup_rounds: f64,
    /// Non-empty buckets, nearest first.
    pub buckets: Vec<BucketInfo>,
    /// The monotonic counters.
    pub counters: Counters,
}
