//! Tunables of a DHT node. Defaults follow the spec (ping 30 s, refresh 60 s) and Kademlia
//! (K = 20, α = 3).

use std::time::Duration;

use crate::store::StoreLimits;
use crate::table::TableConfig;

/// Configuration of a [`crate::Node`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Routing table: K, replacement cache, liveness, Sybil limit.
    pub table: TableConfig,
    /// Requests in flight per lookup path (Kademlia's α).
    pub alpha: usize,
    /// S/Kademlia disjoint lookup paths: 1 is plain Kademlia; d > 1 runs d paths that never
    /// share a contact (each with α in flight), so one malicious node can mislead one path only.
    pub disjoint_paths: usize,
    /// A request unanswered for this long has failed.
    pub request_timeout: Duration,
    /// How often stale buckets are refreshed (and the table re-bootstrapped if it emptied).
    pub refresh_interval: Duration,
    /// How often questionable entries are pinged.
    pub ping_interval: Duration,
    /// How often expired records are dropped and due records republished.
    pub maintenance_interval: Duration,
    /// How often the records and provider entries we publish are stored again.
    pub republish_interval: Duration,
    /// Each periodic interval is stretched or shrunk by up to this fraction, at random, so nodes
    /// started together do not act in lockstep.
    pub jitter: f64,
    /// Most bucket-refresh lookups started per refresh tick.
    pub max_refreshes_per_tick: usize,
    /// Ping a stranger that sent us a request if it would get a slot in the table, so it can
    /// enter (only nodes that answer us do).
    pub verify_inbound: bool,
    /// Most such verification pings in flight at once.
    pub max_inbound_verifications: usize,
    /// Most provider entries in one response.
    pub max_providers_per_response: usize,
    /// Record store capacity.
    pub store: StoreLimits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            table: TableConfig::default(),
            alpha: 3,
            disjoint_paths: 1,
            request_timeout: Duration::from_secs(5),
            refresh_interval: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
            maintenance_interval: Duration::from_secs(60),
            republish_interval: Duration::from_secs(30 * 60),
            jitter: 0.1,
            max_refreshes_per_tick: 8,
            verify_inbound: true,
            max_inbound_verifications: 16,
            max_providers_per_response: 16,
            store: StoreLimits::default(),
        }
    }
}
