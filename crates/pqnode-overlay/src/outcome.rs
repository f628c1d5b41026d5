//! What finished operations report to callers (and, serialised, to the HTTP API).

use std::time::Duration;

use pqnode_crypto::NodeId;
use pqnode_dht::{Contact, Key, LookupStats};
use serde::Serialize;

/// How a lookup ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupOutcome {
    /// The id looked up.
    pub target: NodeId,
    /// The closest nodes that answered, closest first (at most K).
    pub closest: Vec<Contact>,
    /// Deepest hop that answered (1 = a node from our own table).
    pub rounds: u32,
    /// Requests sent.
    pub requests: u32,
    /// Requests that timed out or failed.
    pub failures: u32,
    /// From start to end of the lookup (milliseconds when serialised).
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

/// How a publication ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutOutcome {
    /// The DHT key the record or provider entry was published under.
    pub key: Key,
    /// How many of the K nodes closest to the key accepted it (this node keeps its own copy
    /// in any case).
    pub stored: usize,
    /// From start to end of the lookup and the stores (milliseconds when serialised).
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

impl LookupOutcome {
    pub(crate) fn new(
        target: NodeId,
        closest: Vec<Contact>,
        stats: LookupStats,
        elapsed: Duration,
    ) -> Self {
        Self {
            target,
            closest,
            rounds: stats.rounds,
            requests: stats.requests,
            failures: stats.failures,
            elapsed,
        }
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
