//! Tunables of a DHT node. Defaults follow the spec (ping 30 s, refresh 60 s) and Kademlia
//! (K = 20, α = 3); request timeouts adapt to measured round-trip times within the bounds set
//! here.

use std::time::Duration;

use crate::rtt::TimeoutBounds;
use crate::store::StoreLimits;
use crate::table::TableConfig;
use crate::validate::{ProviderValidator, Validators};

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
    /// The longest a request may go unanswered before it has failed, and the timeout of a
    /// request to a contact never measured (it may need a dial first). A contact that has
    /// answered before gets twice its RTO (RFC 6298: `srtt + 4 × rttvar`), but never less
    /// than one QUIC retransmission takes (`3 × srtt + 50 ms`: a lost packet is resent after
    /// the transport's probe timeout, see `rtt.rs`), bounded by this and
    /// [`Config::min_request_timeout`]. (`mainline`, the BEP 5 crate, fails every request
    /// after a fixed 2 s.)
    pub request_timeout: Duration,
    /// The shortest timeout a measured contact gets.
    pub min_request_timeout: Duration,
    /// A lookup stops waiting for a request after its soft timeout (the contact's RTO, or the
    /// network's for a contact never measured) and asks another contact in its place; an
    /// answer that comes later, before the hard timeout, is still used. This bounds it below.
    pub min_soft_timeout: Duration,
    /// The soft timeout before anyone has ever answered.
    pub initial_soft_timeout: Duration,
    /// How long a contact whose request failed is left out of lookups (unless it answers or
    /// writes to us first, or nobody else is left to ask).
    pub failure_memory: Duration,
    /// Contacts whose RTT and failures are remembered (least recently used are forgotten).
    pub peer_memory: usize,
    /// How often stale buckets are refreshed (and the table re-bootstrapped if it emptied).
    pub refresh_interval: Duration,
    /// When a bootstrap through the seeds reached none of them and the table is short of K,
    /// it is tried again after this, then after twice as long each time, up to
    /// `refresh_interval` (each delay jittered), until a seed answers.
    pub bootstrap_retry: Duration,
    /// How often questionable entries are pinged.
    pub ping_interval: Duration,
    /// How often expired records are dropped and due records republished.
    pub maintenance_interval: Duration,
    /// How often the records and provider entries we publish are stored again.
    pub republish_interval: Duration,
    /// How often a node stores the records it holds for others on the K nodes now closest
    /// to each key (Kademlia's hourly republish), so a record outlives the nodes it was first
    /// put on; a record with a shorter TTL is handed on every half TTL. Receiving the record
    /// (from its publisher, or another holder) puts a node's own turn off by as long, so
    /// while the publisher republishes, storers stay quiet. A copy handed on keeps its
    /// expiry. The same setting hands a record to a node that enters our table closer to
    /// its key than we are (Kademlia's store on join), at most
    /// [`Config::max_join_stores`] records per new node. `None`: records stay where they
    /// were put (and where their publisher puts them again).
    pub replicate_interval: Option<Duration>,
    /// Most records handed to one node that entered the table (store on join).
    pub max_join_stores: usize,
    /// Most records handed on per maintenance tick; the rest wait for the next tick.
    pub max_replications_per_tick: usize,
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
    /// A record read ends early once this many holders returned the same newest copy;
    /// otherwise it asks every close node it finds and returns the newest it saw.
    pub read_quorum: usize,
    /// Record store capacity.
    pub store: StoreLimits,
    /// This node runs without other nodes by choice: an empty table is not a warning.
    pub standalone: bool,
    /// Checks of provider entries whose meaning the application can verify (see
    /// [`crate::ProviderValidator`]).
    pub validators: Validators,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            table: TableConfig::default(),
            alpha: 3,
            disjoint_paths: 1,
            request_timeout: Duration::from_secs(5),
            min_request_timeout: Duration::from_millis(250),
            min_soft_timeout: Duration::from_millis(50),
            initial_soft_timeout: Duration::from_secs(1),
            failure_memory: Duration::from_secs(5 * 60),
            peer_memory: 1024,
            refresh_interval: Duration::from_secs(60),
            bootstrap_retry: Duration::from_secs(1),
            ping_interval: Duration::from_secs(30),
            maintenance_interval: Duration::from_secs(60),
            republish_interval: Duration::from_secs(30 * 60),
            replicate_interval: Some(Duration::from_secs(3600)),
            max_join_stores: 16,
            max_replications_per_tick: 256,
            jitter: 0.1,
            max_refreshes_per_tick: 8,
            verify_inbound: true,
            max_inbound_verifications: 16,
            max_providers_per_response: 16,
            read_quorum: 3,
            store: StoreLimits::default(),
            standalone: false,
            validators: Validators::default(),
        }
    }
}

impl Config {
    /// Adds a check for one kind of provider entry.
    pub fn with_validator(mut self, validator: impl ProviderValidator) -> Self {
        self.validators.push(validator);
        self
    }

    pub(crate) fn timeout_bounds(&self) -> TimeoutBounds {
        TimeoutBounds {
            max: self.request_timeout,
            min: self.min_request_timeout,
            min_soft: self.min_soft_timeout,
            initial_soft: self.initial_soft_timeout,
        }
    }
}
