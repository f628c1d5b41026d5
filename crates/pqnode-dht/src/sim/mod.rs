//! A deterministic simulator: thousands of [`Node`]s in one process, a virtual clock, and a
//! network with per-link round-trip times, jitter, loss, churn and partitions. Everything
//! random comes from one seed, so a failing run is reproduced by running the same seed again.
//!
//! Time is modelled, not only rounds. The simulator is a discrete-event clock: every link has
//! a round-trip time drawn from a skewed distribution ([`RttModel`], median 40 ms, tail to
//! 300 ms), every message adds queueing jitter and may be lost ([`LossRecovery`] says whether
//! the transport resends it), a dead node never answers, and each node times its requests out
//! on its own timers, as the core does over QUIC. So a requester pays the real price of a dead
//! contact: its timeout. Every operation's [`Outcome`] carries the virtual time it took, and
//! [`scenario`] runs the standard measurement (lookups and record reads after churn and loss)
//! whose figures the `sim` example prints: rounds next to latency percentiles.
//!
//! ```
//! use pqnode_dht::sim::{SimConfig, Simulator};
//!
//! let mut sim = Simulator::new(SimConfig { nodes: 50, seed: 1, ..SimConfig::default() });
//! sim.bootstrap_all();
//! let target = sim.node_id(7);
//! let lookup = sim.find_node(3, target).expect("lookup finishes");
//! assert_eq!(lookup.value.first().map(|c| c.id), Some(target));
//! assert!(lookup.latency > std::time::Duration::ZERO);
//! ```

mod link;
mod network;
mod ops;
mod queue;
mod report;
pub mod scenario;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use pqnode_crypto::NodeId;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, RngExt, SeedableRng};

use crate::config::Config;
use crate::contact::Contact;
use crate::distance::Distance;
use crate::node::{Node, QueryId, QueryResult};
use crate::time::Instant;
pub use link::{LossRecovery, MAX_RETRANSMITS, RttModel};
pub use ops::Outcome;
use queue::{EventQueue, SimEvent};
pub use report::{LookupFigures, Percentiles, RecordFigures};

/// Parameters of a simulated network.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How many nodes the network has; all exist from the start, none joined yet.
    pub nodes: usize,
    /// The seed of every random choice: ids, link times, loss, churn. The same seed replays the
    /// same run.
    pub seed: u64,
    /// Each pair of nodes has a fixed base round-trip time, drawn from this distribution.
    pub rtt: RttModel,
    /// Each message waits an extra exponentially distributed delay with mean
    /// `jitter × RTT / 2` (queueing): most messages take about half the base RTT, a few
    /// much longer.
    pub jitter: f64,
    /// Probability that any one transmission of a message is lost, independently of all others.
    pub loss: f64,
    /// Whether a lost message is gone or resent (see [`Simulator::set_loss`] to change both).
    pub recovery: LossRecovery,
    /// Probability that a request to a dead node fails fast (its host is up but nothing
    /// listens: the driver reports a failure after one round trip) instead of going unanswered.
    pub refuse: f64,
    /// Time between two joins during [`Simulator::bootstrap_all`].
    pub join_spacing: Duration,
    /// Seeds each joining node is given (random earlier nodes, by address only).
    pub seeds_per_join: usize,
    /// Configuration of every node.
    pub node: Config,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 1000,
            seed: 0,
            rtt: RttModel::default(),
            jitter: 0.25,
            loss: 0.0,
            recovery: LossRecovery::None,
            refuse: 0.0,
            join_spacing: Duration::from_millis(5),
            seeds_per_join: 3,
            node: Config::default(),
        }
    }
}

/// Network-level counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// Requests and responses that reached a live node.
    pub messages_delivered: u64,
    /// Messages that never arrived: lost for good, sent to a dead node or an unused address, or
    /// across a partition.
    pub messages_dropped: u64,
    /// Resends of lost messages ([`LossRecovery::Retransmit`]).
    pub retransmits: u64,
    /// Requests that reached a dead node's address (unanswered, or refused).
    pub requests_to_dead: u64,
    /// Events the clock processed: deliveries, failures and node timers.
    pub events_processed: u64,
}

impl SimCounters {
    /// What was counted after `before`, a reading of the same simulator.
    pub fn since(self, before: SimCounters) -> SimCounters {
        SimCounters {
            messages_delivered: self.messages_delivered - before.messages_delivered,
            messages_dropped: self.messages_dropped - before.messages_dropped,
            retransmits: self.retransmits - before.retransmits,
            requests_to_dead: self.requests_to_dead - before.requests_to_dead,
            events_processed: self.events_processed - before.events_processed,
        }
    }
}

#[derive(Debug)]
struct SimNode {
    node: Node,
    addr: SocketAddr,
    alive: bool,
    group: u32,
    /// The timer instant currently queued for this node.
    timer: Option<Instant>,
}

/// Many nodes, one virtual clock. Node `i` listens on `10.(i % 256).(i / 256 % 256).(i / 65536 + 1):4001`,
/// so every node (of the first 65 536) has its own /24 and the Sybil limit stays active.
#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    now: Instant,
    nodes: Vec<SimNode>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: EventQueue,
    rng: Xoshiro256PlusPlus,
    /// When each running operation started, to time it.
    started: HashMap<(usize, QueryId), Instant>,
    finished: HashMap<(usize, QueryId), Outcome<QueryResult>>,
    counters: SimCounters,
}

/// The wall-clock time every simulated node is told at the start (unix ms): records travel
/// with absolute expiries, and the nodes' clocks agree.
const SIM_EPOCH_MS: u64 = 1_800_000_000_000;

/// Longest a single query may run in virtual time before the simulator gives up on it.
const QUERY_DEADLINE: Duration = Duration::from_secs(600);

impl Simulator {
    /// Creates `config.nodes` nodes with ids drawn from the seed, none of them knowing another; see
    /// [`Simulator::bootstrap_all`].
    pub fn new(config: SimConfig) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let mut nodes = Vec::with_capacity(config.nodes);
        let mut by_addr = HashMap::with_capacity(config.nodes);
        for i in 0..config.nodes {
            let mut id = [0u8; 20];
            rng.fill_bytes(&mut id);
            let addr = address_of(i);
            let mut node = Node::new(
                NodeId::from_bytes(id),
                config.node.clone(),
                rng.next_u64(),
                Instant::ZERO,
            );
            node.set_unix_time(Instant::ZERO, SIM_EPOCH_MS);
            by_addr.insert(addr, i);
            nodes.push(SimNode {
                node,
                addr,
                alive: true,
                group: 0,
                timer: None,
            });
        }
        let mut sim = Self {
            config,
            now: Instant::ZERO,
            nodes,
            by_addr,
            queue: EventQueue::default(),
            rng,
            started: HashMap::new(),
            finished: HashMap::new(),
            counters: SimCounters::default(),
        };
        for i in 0..sim.nodes.len() {
            sim.settle(i);
        }
        sim
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// How many nodes the network has, live or dead.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the network has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The seed the run was configured with, to replay it.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// The network-level counts so far.
    pub fn counters(&self) -> SimCounters {
        self.counters
    }

    /// Node `i`'s DHT state machine, to inspect its table, store or statistics.
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.nodes.get(i).map(|n| &n.node)
    }

    /// The id of node `i` (all-zero for an index out of range).
    pub fn node_id(&self, i: usize) -> NodeId {
        self.nodes
            .get(i)
            .map_or(NodeId::from_bytes([0; 20]), |n| *n.node.local_id())
    }

    /// Node `i`'s id and address, `None` for an index out of range.
    pub fn contact(&self, i: usize) -> Option<Contact> {
        self.nodes
            .get(i)
            .map(|n| Contact::new(*n.node.local_id(), n.addr))
    }

    /// Whether node `i` is up (false for an index out of range).
    pub fn is_alive(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.alive)
    }

    /// Indices of live nodes.
    pub fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.is_alive(*i))
            .collect()
    }

    /// Node 0 starts alone; node `i` joins `join_spacing` after node `i - 1` through
    /// `seeds_per_join` random earlier nodes (known by address only). Then the clock runs past every node's first
    /// bucket refresh, which fills the tables the way a network that has run a while has them.
    pub fn bootstrap_all(&mut self) {
        let spacing = self.config.join_spacing;
        for i in 1..self.nodes.len() {
            let seeds = (0..self.config.seeds_per_join.max(1))
                .map(|_| address_of(self.rng.random_range(0..i)))
                .collect();
            let at = self.now + spacing * u32::try_from(i).unwrap_or(u32::MAX);
            self.queue.push(at, SimEvent::Join { node: i, seeds });
        }
        let joined = self.now + spacing * u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        // Refresh fires at refresh_interval ± jitter after start: run past the latest.
        let refresh = self
            .config
            .node
            .refresh_interval
            .mul_f64(1.0 + self.config.node.jitter.clamp(0.0, 0.9));
        let settle = self.config.node.request_timeout * 4;
        self.run_until(joined.max(Instant::ZERO + refresh) + settle);
    }

    /// Processes every event up to `until`, then sets the clock there.
    pub fn run_until(&mut self, until: Instant) {
        while self.queue.peek_time().is_some_and(|t| t <= until) {
            self.step();
        }
        self.now = self.now.max(until);
    }

    /// Runs the clock forward by `duration`.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// From now on, each transmission is lost with probability `loss`, and a lost message is
    /// handled as `recovery` says.
    pub fn set_loss(&mut self, loss: f64, recovery: LossRecovery) {
        self.config.loss = loss;
        self.config.recovery = recovery;
    }

    /// The base round-trip time between nodes `a` and `b`, fixed for the run.
    pub fn link_rtt(&self, a: usize, b: usize) -> Duration {
        link::base_rtt(self.config.seed, a, b, &self.config.rtt)
    }

    /// Stops node `i`: it answers nothing and its timers stop, as if its host went away.
    pub fn kill(&mut self, i: usize) {
        if let Some(n) = self.nodes.get_mut(i) {
            n.alive = false;
        }
    }

    /// Restarts node `i` with the state it had.
    pub fn revive(&mut self, i: usize) {
        if let Some(n) = self.nodes.get_mut(i) {
            n.alive = true;
            n.timer = None;
        }
        self.settle(i);
    }

    /// Node `i` (never joined, or dead) joins now, as a newcomer, through `seeds_per_join`
    /// random live nodes known by address only.
    pub fn join(&mut self, i: usize) {
        let alive = self.alive();
        if alive.is_empty() || i >= self.nodes.len() {
            return;
        }
        let seeds = (0..self.config.seeds_per_join.max(1))
            .filter_map(|_| alive.get(self.rng.random_range(0..alive.len())))
            .map(|s| address_of(*s))
            .collect();
        self.revive(i);
        self.queue.push(self.now, SimEvent::Join { node: i, seeds });
    }

    /// Kills `fraction` of the live nodes, chosen at random; returns their indices.
    pub fn kill_fraction(&mut self, fraction: f64) -> Vec<usize> {
        let mut alive = self.alive();
        let count = ((alive.len() as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        let mut killed = Vec::with_capacity(count);
        for _ in 0..count {
            let pick = self.rng.random_range(0..alive.len());
            let i = alive.swap_remove(pick);
            self.kill(i);
            killed.push(i);
        }
        killed
    }

    /// Splits the network: messages between nodes of different groups are lost.
    pub fn partition(&mut self, group_of: impl Fn(usize) -> u32) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.group = group_of(i);
        }
    }

    /// Undoes [`Simulator::partition`].
    pub fn heal(&mut self) {
        self.partition(|_| 0);
    }

    /// The `k` live nodes closest to `target`, by brute force: the reference lookups are
    /// measured against.
    pub fn true_closest(&self, target: &NodeId, k: usize) -> Vec<NodeId> {
        let mut all: Vec<(Distance, NodeId)> = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .map(|n| {
                (
                    Distance::between(target, n.node.local_id()),
                    *n.node.local_id(),
                )
            })
            .collect();
        all.sort_unstable();
        all.into_iter().take(k).map(|(_, id)| id).collect()
    }

    /// A random live node.
    pub fn random_alive(&mut self) -> Option<usize> {
        let alive = self.alive();
        if alive.is_empty() {
            return None;
        }
        alive.get(self.rng.random_range(0..alive.len())).copied()
    }

    /// A random id, from the simulation's seed.
    pub fn random_id(&mut self) -> NodeId {
        let mut id = [0u8; 20];
        self.rng.fill_bytes(&mut id);
        NodeId::from_bytes(id)
    }
}

/// Fraction of `expected` present in `found`.
pub fn overlap(found: &[Contact], expected: &[NodeId]) -> f64 {
    if expected.is_empty() {
        return 1.0;
    }
    let hits = expected
        .iter()
        .filter(|id| found.iter().any(|c| c.id == **id))
        .count();
    hits as f64 / expected.len() as f64
}

/// Node `i`'s address: the low 16 bits of `i` pick the /24, so the first 65 536 nodes each
/// have a network of their own; the host byte keeps addresses unique up to 255 × 65 536 nodes.
fn address_of(i: usize) -> SocketAddr {
    let [a, b, c, _] = (i as u32).to_le_bytes();
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, a, b, c.saturating_add(1))),
        4001,
    )
}
