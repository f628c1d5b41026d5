//! Runs the deterministic simulator at scale and prints its figures: lookup accuracy, rounds
//! and latency (simulated milliseconds) before and after churn, and record availability.
//!
//! ```text
//! cargo run --release -p pqnode-dht --example sim -- --nodes 10000 --seed 1
//! ```
//! Flags: `--nodes N` (default 10000), `--seed S` (1), `--lookups L` (500), `--records R` (200),
//! `--loss P` (0.1, per message), `--kill F` (0.3, fraction of the live nodes killed in each
//! wave), `--paths D` (1, S/Kademlia disjoint lookup paths), `--wait M` (20, virtual minutes
//! between the two waves of churn).
//!
//! The run: bootstrap every node; lookups; publish records; a first wave of churn kills a
//! fraction of the nodes at once; the same number of lookups, then the very same lookups again
//! (the repeat shows whether a node pays for dead contacts twice); gets; the network runs on
//! for a while; a second wave kills the same fraction of the survivors; gets again.

use std::time::{Duration, Instant as WallClock};

use pqnode_crypto::Identity;
use pqnode_dht::sim::{Outcome, Percentiles, SimConfig, Simulator, overlap};
use pqnode_dht::{Config, Contact, Key, NodeId, Record};

struct Args {
    nodes: usize,
    seed: u64,
    lookups: usize,
    records: usize,
    loss: f64,
    kill: f64,
    paths: usize,
    wait: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 10_000,
        seed: 1,
        lookups: 500,
        records: 200,
        loss: 0.1,
        kill: 0.3,
        paths: 1,
        wait: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--nodes" => args.nodes = value.parse().map_err(|_| bad())?,
            "--seed" => args.seed = value.parse().map_err(|_| bad())?,
            "--lookups" => args.lookups = value.parse().map_err(|_| bad())?,
            "--records" => args.records = value.parse().map_err(|_| bad())?,
            "--loss" => args.loss = value.parse().map_err(|_| bad())?,
            "--kill" => args.kill = value.parse().map_err(|_| bad())?,
            "--paths" => args.paths = value.parse().map_err(|_| bad())?,
            "--wait" => args.wait = value.parse().map_err(|_| bad())?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!(
        "seed {} nodes {} loss {} kill {} paths {} (same seed, same run)",
        args.seed, args.nodes, args.loss, args.kill, args.paths
    );
    let started = WallClock::now();
    let mut sim = Simulator::new(SimConfig {
        nodes: args.nodes,
        seed: args.seed,
        loss: args.loss,
        node: Config {
            disjoint_paths: args.paths,
            ..Config::default()
        },
        ..SimConfig::default()
    });
    sim.bootstrap_all();
    let table_sizes: Vec<usize> = (0..sim.len())
        .filter_map(|i| sim.node(i))
        .map(|n| n.table().len())
        .collect();
    let buckets: Vec<usize> = (0..sim.len())
        .filter_map(|i| sim.node(i))
        .map(|n| n.table().buckets_used())
        .collect();
    println!(
        "bootstrap: {:.1} s wall, {:.1} s virtual, mean table {:.1} entries in {:.1} buckets, {} messages",
        started.elapsed().as_secs_f64(),
        sim.now().elapsed().as_secs_f64(),
        mean(&table_sizes),
        mean(&buckets),
        sim.counters().messages_delivered,
    );

    let before = random_lookups(&mut sim, args.lookups);
    run_lookups(&mut sim, "lookups before churn", &before);

    // Records: publish (all at once) from random nodes.
    let mut puts = Vec::new();
    for i in 0..args.records {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let Ok(publisher) = Identity::from_seed(&seed) else {
            continue;
        };
        let Ok(record) = Record::sign(&publisher, b"name", b"value", 1, Duration::from_secs(3600))
        else {
            continue;
        };
        if let Some(from) = sim.random_alive() {
            puts.push((from, record));
        }
    }
    let keys: Vec<Key> = puts.iter().map(|(_, r)| *r.key()).collect();
    let replicas: Vec<usize> = sim
        .put_all(puts)
        .into_iter()
        .map(|r| r.unwrap_or(0))
        .collect();
    println!(
        "records: {} published on {:.1} nodes each",
        keys.len(),
        mean(&replicas)
    );

    let killed = sim.kill_fraction(args.kill);
    println!(
        "churn: killed {} nodes at once, {} left",
        killed.len(),
        sim.alive().len()
    );
    let after = random_lookups(&mut sim, args.lookups);
    run_lookups(&mut sim, "lookups after churn", &after);
    run_lookups(&mut sim, "the same lookups again", &after);
    run_gets(&mut sim, "records after churn", &keys);

    sim.run_for(Duration::from_secs(args.wait * 60));
    let killed = sim.kill_fraction(args.kill);
    println!(
        "churn: {} virtual minutes later, killed {} more nodes, {} left",
        args.wait,
        killed.len(),
        sim.alive().len()
    );
    run_gets(&mut sim, "records after the second wave", &keys);
    run_lookups(&mut sim, "lookups after the second wave", &after);

    let c = sim.counters();
    println!(
        "total: {:.1} s wall, {:.0} s virtual, {} events, {} messages delivered, {} dropped, {} requests to dead nodes",
        started.elapsed().as_secs_f64(),
        sim.now().elapsed().as_secs_f64(),
        c.events_processed,
        c.messages_delivered,
        c.messages_dropped,
        c.requests_to_dead,
    );
}

/// Random live sources and random targets.
fn random_lookups(sim: &mut Simulator, count: usize) -> Vec<(usize, NodeId)> {
    (0..count)
        .filter_map(|_| Some((sim.random_alive()?, sim.random_id())))
        .collect()
}

/// Runs `lookups` all at once (so they overlap like real traffic) and prints their figures.
fn run_lookups(sim: &mut Simulator, label: &str, lookups: &[(usize, NodeId)]) {
    let lookups: Vec<(usize, NodeId)> = lookups
        .iter()
        .copied()
        .filter(|(from, _)| sim.is_alive(*from))
        .collect();
    let expected: Vec<Vec<NodeId>> = lookups
        .iter()
        .map(|(_, t)| sim.true_closest(t, 20))
        .collect();
    let clock = WallClock::now();
    let outcomes = sim.find_node_all(&lookups);
    let wall = clock.elapsed().as_secs_f64();
    let finished: Vec<(&Outcome<Vec<Contact>>, &Vec<NodeId>)> = outcomes
        .iter()
        .zip(&expected)
        .filter_map(|(o, e)| Some((o.as_ref()?, e)))
        .collect();
    let overlaps: Vec<f64> = finished.iter().map(|(o, e)| overlap(&o.value, e)).collect();
    let stat = |f: fn(&Outcome<Vec<Contact>>) -> u32| -> f64 {
        finished.iter().map(|(o, _)| f64::from(f(o))).sum::<f64>() / finished.len().max(1) as f64
    };
    let latencies: Vec<Duration> = finished.iter().map(|(o, _)| o.latency).collect();
    println!(
        "{label}: {} of {} finished, overlap with the true 20 closest {:.4}, rounds {:.2}, requests {:.1}, failed {:.2}; latency {}; {:.0} lookups/s wall",
        finished.len(),
        lookups.len(),
        overlaps.iter().sum::<f64>() / overlaps.len().max(1) as f64,
        stat(|o| o.stats.rounds),
        stat(|o| o.stats.requests),
        stat(|o| o.stats.failures),
        Percentiles::of(&latencies),
        finished.len() as f64 / wall,
    );
}

/// Fetches every key from a random live node, all at once, and prints the availability.
fn run_gets(sim: &mut Simulator, label: &str, keys: &[Key]) {
    let gets: Vec<(usize, Key)> = keys
        .iter()
        .filter_map(|k| Some((sim.random_alive()?, *k)))
        .collect();
    let outcomes = sim.get_all(&gets);
    let found = outcomes
        .iter()
        .zip(&gets)
        .filter(|(o, (_, key))| {
            o.as_ref()
                .and_then(|o| o.value.as_ref())
                .is_some_and(|r| r.key() == key)
        })
        .count();
    let finished: Vec<&Outcome<Option<Record>>> = outcomes.iter().flatten().collect();
    let rounds: Vec<usize> = finished.iter().map(|o| o.stats.rounds as usize).collect();
    let latencies: Vec<Duration> = finished.iter().map(|o| o.latency).collect();
    println!(
        "{label}: {found}/{} found ({:.2} %), rounds {:.2}; latency {}",
        keys.len(),
        100.0 * found as f64 / keys.len().max(1) as f64,
        mean(&rounds),
        Percentiles::of(&latencies),
    );
}

fn mean(values: &[usize]) -> f64 {
    values.iter().sum::<usize>() as f64 / values.len().max(1) as f64
}
