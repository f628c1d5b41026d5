//! The standard measurement of a network under churn and loss, shared by the `sim` example
//! (which prints it at 10 000 nodes) and the tests (which assert on it at a smaller size).
//!
//! On a network built with [`Simulator::bootstrap_all`], [`run`]:
//!
//! 1. sets the scenario's loss;
//! 2. publishes records (version 1, then version 2 of each, from the same publisher);
//! 3. kills a fraction of the nodes at once, with no refresh in between;
//! 4. runs lookups from live nodes to random targets, all at once, then the very same lookups
//!    again (the repeat shows whether a node pays for a dead contact twice);
//! 5. reads every record from a live node other than its publisher, through the real quorum
//!    read, and counts those found and those found at version 2;
//! 6. looks up the ids of nodes that died and of nodes that live, all at once (a lookup of a
//!    node's own id is how the node's address is found: the dead ones show what a lookup pays
//!    for a target that never answers, the live ones whether each is found);
//! 7. optionally kills a second wave of survivors and reads again, then runs the clock on (so
//!    publishers republish) and reads again.
//!
//! Which nodes die, which lookups run and who publishes and reads what depend only on the seed
//! and the [`Workload`], not on the scenario: two scenarios on the same seed kill the same
//! nodes (the first ones of one random order) and run the same lookups, so their figures
//! compare like for like.

use std::time::Duration;

use pqnode_crypto::{Identity, NodeId};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, RngExt, SeedableRng};

use super::report::{LookupFigures, RecordFigures};
use super::{LossRecovery, SimCounters, Simulator, overlap};
use crate::record::{Key, Record};

/// The record name every simulated publisher uses.
const RECORD_NAME: &[u8] = b"sim";
/// Records outlive any run (and the publishers' republish interval).
const RECORD_TTL: Duration = Duration::from_secs(4 * 3600);

/// What happens to the network.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Fraction of the nodes killed at once after the records are published.
    pub kill: f64,
    /// Probability that a transmission is lost, from the first publication on.
    pub loss: f64,
    /// Whether lost transmissions are gone or resent, as in
    /// [`SimConfig::recovery`](super::SimConfig::recovery).
    pub recovery: LossRecovery,
    /// Fraction of the survivors killed in a second wave before records are read again (0:
    /// no second wave).
    pub second_wave: f64,
    /// After the last reads, the clock runs this long and records are read once more (zero:
    /// not at all).
    pub wait: Duration,
}

impl Scenario {
    /// No churn, no loss.
    pub const CALM: Self = Self {
        kill: 0.0,
        loss: 0.0,
        recovery: LossRecovery::None,
        second_wave: 0.0,
        wait: Duration::ZERO,
    };

    /// `kill` of the nodes die at once, every transmission is lost with probability `loss`.
    pub fn churn(kill: f64, loss: f64) -> Self {
        Self {
            kill,
            loss,
            ..Self::CALM
        }
    }
}

/// How much is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Lookups of random ids, each from a node that is never killed.
    pub lookups: usize,
    /// Records published before the churn and read after it, one reader each.
    pub records: usize,
    /// Lookups of a dead node's id, and as many of a live node's id.
    pub targets: usize,
}

/// A scenario's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    /// Nodes killed at once after the records were published.
    pub killed: usize,
    /// Nodes killed in the second wave.
    pub killed_second: usize,
    /// The lookups, right after the churn.
    pub lookups: LookupFigures,
    /// The same lookups again, right after.
    pub repeat: LookupFigures,
    /// Every record read once, after the churn.
    pub records: RecordFigures,
    /// Lookups of the ids of nodes killed in the first wave (none without churn).
    pub dead_targets: LookupFigures,
    /// Lookups of the ids of live nodes.
    pub live_targets: LookupFigures,
    /// How many of those returned their target.
    pub live_targets_found: usize,
    /// Read again after the second wave, if there was one.
    pub second_wave: Option<RecordFigures>,
    /// Read again after [`Scenario::wait`], if it was not zero.
    pub after_wait: Option<RecordFigures>,
    /// What the network carried during the scenario (not the bootstrap).
    pub counters: SimCounters,
}

/// Nodes at the end of the random order are never killed: lookups start there and records
/// are read there. Scenarios may kill at most the rest.
const SAFE_FRACTION: f64 = 0.25;

/// Who dies, who looks up what, who publishes and reads which record.
struct Plan {
    /// Every node, in the order they die.
    order: Vec<usize>,
    lookups: Vec<(usize, NodeId)>,
    /// (publisher, reader, publisher's seed)
    records: Vec<(usize, usize, [u8; 32])>,
    /// (looker, a draw that picks the dead target, the live target): lookers and live
    /// targets are safe nodes.
    targets: Vec<(usize, u64, usize)>,
}

impl Plan {
    fn new(nodes: usize, seed: u64, workload: Workload) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5ce7_a210_0000_0001);
        let mut order: Vec<usize> = (0..nodes).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let safe = order
            .get(nodes - safe_count(nodes)..)
            .unwrap_or_default()
            .to_vec();
        let pick_safe = |rng: &mut Xoshiro256PlusPlus| -> Option<usize> {
            safe.get(rng.random_range(0..safe.len().max(1))).copied()
        };
        let lookups = (0..workload.lookups)
            .filter_map(|_| {
                let from = pick_safe(&mut rng)?;
                let mut target = [0u8; 20];
                rng.fill_bytes(&mut target);
                Some((from, NodeId::from_bytes(target)))
            })
            .collect();
        let records = (0..workload.records)
            .filter_map(|_| {
                let publisher = rng.random_range(0..nodes.max(1));
                let reader = (0..8)
                    .filter_map(|_| pick_safe(&mut rng))
                    .find(|r| *r != publisher)?;
                let mut key_seed = [0u8; 32];
                rng.fill_bytes(&mut key_seed);
                (publisher < nodes).then_some((publisher, reader, key_seed))
            })
            .collect();
        // Drawn last, so the draws above are the same whatever the number of targets.
        let targets = (0..workload.targets)
            .filter_map(|_| {
                let from = pick_safe(&mut rng)?;
                let dead = rng.next_u64();
                let live = (0..8)
                    .filter_map(|_| pick_safe(&mut rng))
                    .find(|t| *t != from)?;
                Some((from, dead, live))
            })
            .collect();
        Self {
            order,
            lookups,
            records,
            targets,
        }
    }

    /// The next nodes to die when `killed` already have and `fraction` of the others die now
    /// (never the safe ones).
    fn doomed(&self, killed: usize, fraction: f64) -> &[usize] {
        let n = self.order.len();
        let count = ((n - killed.min(n)) as f64 * fraction.clamp(0.0, 1.0)).round() as usize;
        let end = (killed + count).min(n - safe_count(n));
        self.order.get(killed..end.max(killed)).unwrap_or_default()
    }
}

/// How many nodes (the last in the random order) are never killed.
fn safe_count(nodes: usize) -> usize {
    ((nodes as f64 * SAFE_FRACTION).ceil() as usize).min(nodes)
}

/// Runs `scenario` on `sim` (a network just built with [`Simulator::bootstrap_all`]).
pub fn run(sim: &mut Simulator, scenario: &Scenario, workload: Workload) -> ScenarioReport {
    let plan = Plan::new(sim.len(), sim.seed(), workload);
    let before = sim.counters();
    sim.set_loss(scenario.loss, scenario.recovery);

    let (keys, replicas) = publish(sim, &plan);

    let first = plan.doomed(0, scenario.kill).to_vec();
    for i in &first {
        sim.kill(*i);
    }
    let lookups = measure_lookups(sim, &plan.lookups).0;
    let repeat = measure_lookups(sim, &plan.lookups).0;
    let records = read_records(sim, &plan, &keys, &replicas);
    let dead: Vec<(usize, NodeId)> = match first.len() as u64 {
        0 => Vec::new(),
        n => plan
            .targets
            .iter()
            .filter_map(|(from, draw, _)| {
                let target = first.get(usize::try_from(draw % n).ok()?)?;
                Some((*from, sim.node_id(*target)))
            })
            .collect(),
    };
    let live: Vec<(usize, NodeId)> = plan
        .targets
        .iter()
        .map(|(from, _, target)| (*from, sim.node_id(*target)))
        .collect();
    let dead_targets = measure_lookups(sim, &dead).0;
    let (live_targets, live_targets_found) = measure_lookups(sim, &live);

    let second = plan.doomed(first.len(), scenario.second_wave).to_vec();
    let second_wave = (!second.is_empty()).then(|| {
        for i in &second {
            sim.kill(*i);
        }
        read_records(sim, &plan, &keys, &replicas)
    });
    let after_wait = (!scenario.wait.is_zero()).then(|| {
        sim.run_for(scenario.wait);
        read_records(sim, &plan, &keys, &replicas)
    });
    let after = sim.counters();
    ScenarioReport {
        killed: first.len(),
        killed_second: second.len(),
        lookups,
        repeat,
        records,
        dead_targets,
        live_targets,
        live_targets_found,
        second_wave,
        after_wait,
        counters: after.since(before),
    }
}

/// Publishes version 1 of every record, then version 2, all at once each time. Returns the
/// keys and how many nodes stored version 2 of each.
fn publish(sim: &mut Simulator, plan: &Plan) -> (Vec<Option<Key>>, Vec<usize>) {
    let signed: Vec<Option<(Identity, usize)>> = plan
        .records
        .iter()
        .map(|(publisher, _, seed)| Some((Identity::from_seed(seed).ok()?, *publisher)))
        .collect();
    let version = |seq: u64| -> Vec<Option<(usize, Record)>> {
        signed
            .iter()
            .map(|s| {
                let (identity, publisher) = s.as_ref()?;
                let value = format!("version {seq}");
                let record =
                    Record::sign(identity, RECORD_NAME, value.as_bytes(), seq, RECORD_TTL).ok()?;
                Some((*publisher, record))
            })
            .collect()
    };
    let v1 = version(1);
    let v2 = version(2);
    let keys = v2
        .iter()
        .map(|r| r.as_ref().map(|(_, r)| *r.key()))
        .collect();
    sim.put_all(v1.into_iter().flatten().collect());
    let stored = sim.put_all(v2.iter().flatten().cloned().collect());
    let mut stored = stored.into_iter();
    let replicas = v2
        .iter()
        .map(|r| match r {
            Some(_) => stored.next().flatten().unwrap_or(0),
            None => 0,
        })
        .collect();
    (keys, replicas)
}

/// Runs `lookups` from their live sources all at once and measures them against the true
/// closest live nodes. Also returns how many found their target itself (for a node's id).
fn measure_lookups(sim: &mut Simulator, lookups: &[(usize, NodeId)]) -> (LookupFigures, usize) {
    let live: Vec<(usize, NodeId)> = lookups
        .iter()
        .copied()
        .filter(|(from, _)| sim.is_alive(*from))
        .collect();
    let k = sim.config.node.table.k;
    let expected: Vec<Vec<NodeId>> = live.iter().map(|(_, t)| sim.true_closest(t, k)).collect();
    let outcomes = sim.find_node_all(&live);
    let found = outcomes
        .iter()
        .zip(&live)
        .filter(|(o, (_, target))| {
            o.as_ref()
                .is_some_and(|o| o.value.first().is_some_and(|c| c.id == *target))
        })
        .count();
    let measured = outcomes.iter().zip(&expected).map(|(o, e)| {
        o.as_ref()
            .map(|o| (o.stats, o.latency, overlap(&o.value, e)))
    });
    (LookupFigures::of(lookups.len(), measured), found)
}

/// Reads every record from its reader, all at once.
fn read_records(
    sim: &mut Simulator,
    plan: &Plan,
    keys: &[Option<Key>],
    replicas: &[usize],
) -> RecordFigures {
    let gets: Vec<(usize, Key)> = plan
        .records
        .iter()
        .zip(keys)
        .filter_map(|((_, reader, _), key)| Some((*reader, (*key)?)))
        .filter(|(reader, _)| sim.is_alive(*reader))
        .collect();
    let outcomes = sim.get_all(&gets);
    let reads = outcomes.iter().zip(&gets).map(|(o, (_, key))| {
        o.as_ref().map(|o| {
            let record = o.value.as_ref().filter(|r| r.key() == key);
            (o.stats, o.latency, record.map(Record::seq))
        })
    });
    RecordFigures::of(keys.len(), replicas, 2, reads)
}

/// Hours of turnover: nodes leave and newcomers join, and nobody republishes records but
/// the nodes that hold them (their publishers left right after publishing). What storer
/// republish is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Turnover {
    /// Nodes at the start; the simulator's other nodes join later, as newcomers.
    pub initial: usize,
    /// Records published at the start, each by a node that leaves right after.
    pub records: usize,
    /// Every `step`, this fraction of the live nodes leaves and as many newcomers join.
    pub rate: f64,
    /// Time between two rounds of leaving and joining.
    pub step: Duration,
    /// How long the network runs; every record is read once every `read_every`.
    pub duration: Duration,
    /// Time between two reads of every record.
    pub read_every: Duration,
}

/// What a [`Turnover`] run gave.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnoverReport {
    /// Virtual time since publication, and the reads then. [`RecordFigures::replicas`] is
    /// the mean number of live nodes holding each record at that time.
    pub reads: Vec<(Duration, RecordFigures)>,
    /// Nodes that left during the run, not counting the publishers.
    pub left: usize,
    /// Newcomers that joined over the run.
    pub joined: usize,
    /// What the network carried during the run.
    pub counters: SimCounters,
}

/// Runs `turnover` on a network of `config.nodes` nodes of which `turnover.initial` start
/// (the rest are the newcomers). Records have a TTL of 4 hours, longer than the run.
pub fn turnover(config: super::SimConfig, turnover: &Turnover) -> TurnoverReport {
    let seed = config.seed;
    let mut sim = Simulator::new(config);
    let total = sim.len();
    for i in turnover.initial.min(total)..total {
        sim.kill(i);
    }
    sim.bootstrap_all();
    let before = sim.counters();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x7e57_0000_0000_0002);
    let puts: Vec<(usize, Record)> = (0..turnover.records)
        .filter_map(|_| {
            let publisher = sim.random_alive()?;
            let mut key_seed = [0u8; 32];
            rng.fill_bytes(&mut key_seed);
            let identity = Identity::from_seed(&key_seed).ok()?;
            let record = Record::sign(&identity, RECORD_NAME, b"v", 1, RECORD_TTL).ok()?;
            Some((publisher, record))
        })
        .collect();
    let keys: Vec<Key> = puts.iter().map(|(_, r)| *r.key()).collect();
    let publishers: Vec<usize> = puts.iter().map(|(p, _)| *p).collect();
    sim.put_all(puts);
    // The publishers leave at once: only the holders can keep the records alive.
    for p in publishers {
        sim.kill(p);
    }
    let (mut left, mut joined) = (0, 0);
    let mut next_newcomer = turnover.initial;
    let mut reads = Vec::new();
    let started = sim.now();
    let mut next_read = started + turnover.read_every;
    let end = started + turnover.duration;
    while sim.now() < end {
        sim.run_for(turnover.step);
        // Read before this step's turnover: every reader has been up a step or more.
        if sim.now() >= next_read {
            next_read = next_read + turnover.read_every;
            let since = sim.now().saturating_duration_since(started);
            reads.push((since, read_all(&mut sim, &keys)));
        }
        if sim.now() >= end {
            break;
        }
        let gone = sim.kill_fraction(turnover.rate);
        left += gone.len();
        for _ in 0..gone.len() {
            if next_newcomer < total {
                sim.join(next_newcomer);
                next_newcomer += 1;
                joined += 1;
            }
        }
    }
    let after = sim.counters();
    TurnoverReport {
        reads,
        left,
        joined,
        counters: after.since(before),
    }
}

/// Reads every record from a random live node, all at once; the figures' `replicas` is the
/// mean number of live nodes holding each record.
fn read_all(sim: &mut Simulator, keys: &[Key]) -> RecordFigures {
    let now = sim.now();
    let holders: Vec<usize> = keys
        .iter()
        .map(|key| {
            sim.alive()
                .into_iter()
                .filter(|i| {
                    sim.node(*i)
                        .is_some_and(|n| n.store().get(key, now).is_some())
                })
                .count()
        })
        .collect();
    let gets: Vec<(usize, Key)> = keys
        .iter()
        .filter_map(|key| Some((sim.random_alive()?, *key)))
        .collect();
    let outcomes = sim.get_all(&gets);
    let reads = outcomes.iter().zip(&gets).map(|(o, (_, key))| {
        o.as_ref().map(|o| {
            let record = o.value.as_ref().filter(|r| r.key() == key);
            (o.stats, o.latency, record.map(Record::seq))
        })
    });
    RecordFigures::of(keys.len(), &holders, 1, reads)
}
