//! The routing table, lookups, records and contacts.

use std::net::SocketAddr;

use pqnode_crypto::NodeId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `/api/dht/nodes`: the routing table and the spec's `stats`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DhtNodes {
    pub nodes: Vec<DhtNode>,
    pub stats: DhtNodeStats,
}

/// One routing-table entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtNode {
    #[schema(value_type = String)]
    pub id: NodeId,
    #[schema(value_type = String)]
    pub addr: SocketAddr,
    pub bucket: u8,
    pub state: NodeState,
    /// Milliseconds since it last answered (or sent us a request).
    pub last_seen_ms_ago: u64,
    /// Smoothed round-trip time.
    pub rtt_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NodeState {
    Good,
    Questionable,
    Bad,
}

impl From<pqnode_dht::NodeInfo> for DhtNode {
    fn from(node: pqnode_dht::NodeInfo) -> Self {
        let pqnode_dht::NodeInfo {
            id,
            addr,
            bucket,
            state,
            last_seen_ms_ago,
            rtt_ms,
        } = node;
        Self {
            id,
            addr,
            bucket,
            state: match state {
                pqnode_dht::NodeState::Good => NodeState::Good,
                pqnode_dht::NodeState::Questionable => NodeState::Questionable,
                pqnode_dht::NodeState::Bad => NodeState::Bad,
            },
            last_seen_ms_ago,
            rtt_ms,
        }
    }
}

/// The spec's `{totalNodes, bucketsUsed, bootstrapNodes}` and a few more.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtNodeStats {
    pub total_nodes: usize,
    pub buckets_used: usize,
    pub bootstrap_nodes: usize,
    pub good_nodes: usize,
    pub questionable_nodes: usize,
    pub bad_nodes: usize,
    pub records_stored: usize,
    /// Mean rounds per finished lookup.
    pub mean_lookup_rounds: f64,
}

impl From<&pqnode_dht::DhtStats> for DhtNodeStats {
    fn from(stats: &pqnode_dht::DhtStats) -> Self {
        Self {
            total_nodes: stats.total_nodes,
            buckets_used: stats.buckets_used,
            bootstrap_nodes: stats.bootstrap_nodes,
            good_nodes: stats.good_nodes,
            questionable_nodes: stats.questionable_nodes,
            bad_nodes: stats.bad_nodes,
            records_stored: stats.records_stored,
            mean_lookup_rounds: stats.mean_lookup_rounds,
        }
    }
}

/// `/api/dht/buckets`: the buckets that hold something.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DhtBuckets {
    pub buckets: Vec<DhtBucket>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtBucket {
    pub index: u8,
    pub entries: usize,
    pub replacements: usize,
    pub last_refresh_ms_ago: u64,
}

impl From<pqnode_dht::BucketInfo> for DhtBucket {
    fn from(bucket: pqnode_dht::BucketInfo) -> Self {
        let pqnode_dht::BucketInfo {
            index,
            entries,
            replacements,
            last_refresh_ms_ago,
        } = bucket;
        Self {
            index,
            entries,
            replacements,
            last_refresh_ms_ago,
        }
    }
}

/// How a lookup ended.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Lookup {
    /// The id looked up.
    #[schema(value_type = String)]
    pub target: NodeId,
    /// The closest nodes that answered, closest first (at most K).
    pub closest: Vec<Contact>,
    /// Deepest hop that answered (1 = a node from our own table).
    pub rounds: u32,
    pub requests: u32,
    /// Requests that timed out or failed.
    pub failures: u32,
    /// Milliseconds.
    pub elapsed: u64,
}

/// A node by id and address.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Contact {
    #[schema(value_type = String)]
    pub id: NodeId,
    #[schema(value_type = String)]
    pub addr: SocketAddr,
}

fn millis(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

impl From<pqnode_overlay::LookupOutcome> for Lookup {
    fn from(outcome: pqnode_overlay::LookupOutcome) -> Self {
        let pqnode_overlay::LookupOutcome {
            target,
            closest,
            rounds,
            requests,
            failures,
            elapsed,
        } = outcome;
        Self {
            target,
            closest: closest
                .into_iter()
                .map(|c| Contact {
                    id: c.id,
                    addr: c.addr,
                })
                .collect(),
            rounds,
            requests,
            failures,
            elapsed: millis(elapsed),
        }
    }
}

/// `POST /api/dht/records`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PublishRecord {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[schema(max_length = 16384)]
    pub value: String,
    /// Seconds the record lives.
    #[schema(default = 3600, minimum = 1, maximum = 172800)]
    pub ttl_secs: Option<u64>,
}

/// A record published: its key, derived from (this node's id, name).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Published {
    #[schema(value_type = String)]
    pub key: NodeId,
    /// How many of the K nodes closest to the key accepted it (this node keeps its own copy
    /// in any case).
    pub stored: usize,
    /// Milliseconds.
    pub elapsed: u64,
}

impl From<pqnode_overlay::PutOutcome> for Published {
    fn from(outcome: pqnode_overlay::PutOutcome) -> Self {
        let pqnode_overlay::PutOutcome {
            key,
            stored,
            elapsed,
        } = outcome;
        Self {
            key,
            stored,
            elapsed: millis(elapsed),
        }
    }
}

/// A verified record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtRecord {
    #[schema(value_type = String)]
    pub key: NodeId,
    pub name: String,
    /// Node id of the ML-DSA-87 key that signed it.
    #[schema(value_type = String)]
    pub publisher: NodeId,
    pub seq: u64,
    pub ttl_secs: u64,
    /// The value, when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in hex, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
}

impl From<&pqnode_dht::Record> for DhtRecord {
    fn from(record: &pqnode_dht::Record) -> Self {
        let (value, value_hex) = match std::str::from_utf8(record.value()) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(hex::encode(record.value()))),
        };
        Self {
            key: *record.key(),
            name: String::from_utf8_lossy(record.name()).into_owned(),
            publisher: record.publisher().node_id(),
            seq: record.seq(),
            ttl_secs: record.ttl().as_secs(),
            value,
            value_hex,
        }
    }
}

/// `POST /api/dht/contacts`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddContact {
    /// `<node-id>@<host>:<port>`
    pub contact: String,
}

/// The contact answered and entered the routing table.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContactAdded {
    pub added: String,
    /// The lookup of our own id through it.
    pub lookup: Lookup,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContactRemoved {
    #[schema(value_type = String)]
    pub removed: NodeId,
}
