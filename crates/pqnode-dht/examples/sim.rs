//! Runs the deterministic simulator at scale and prints its figures.
//!
//! ```text
//! cargo run --release -p pqnode-dht --example sim -- --nodes 10000 --seed 1
//! ```
//! Flags: `--nodes N` (default 10000), `--seed S` (1), `--lookups L` (500), `--records R` (200),
//! `--loss P` (0.0), `--kill F` (0.2, fraction killed before the record gets), `--paths D`
//! (1, S/Kademlia disjoint lookup paths).

use std::time::{Duration, Instant as WallClock};

use pqnode_crypto::Identity;
use pqnode_dht::sim::{SimConfig, Simulator, overlap};
use pqnode_dht::{Config, NodeId, Record};

struct Args {
    nodes: usize,
    seed: u64,
    lookups: usize,
    records: usize,
    loss: f64,
    kill: f64,
    paths: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nodes: 10_000,
        seed: 1,
        lookups: 500,
        records: 200,
        loss: 0.0,
        kill: 0.2,
        paths: 1,
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
        "seed {} nodes {} loss {} paths {} (same seed, same run)",
        args.seed, args.nodes, args.loss, args.paths
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

    // Lookups, all started at once so they overlap like real traffic.
    let targets: Vec<(usize, NodeId)> = (0..args.lookups)
        .filter_map(|_| Some((sim.random_alive()?, sim.random_id())))
        .collect();
    let expected: Vec<Vec<NodeId>> = targets
        .iter()
        .map(|(_, t)| sim.true_closest(t, 20))
        .collect();
    let clock = WallClock::now();
    let virtual_start = sim.now();
    let ids: Vec<_> = targets
        .iter()
        .filter_map(|(from, target)| {
            Some((*from, sim.start(*from, |n, now| n.find_node(now, *target))?))
        })
        .collect();
    let results = sim.wait(&ids);
    let wall = clock.elapsed().as_secs_f64();
    let mut overlaps = Vec::new();
    let mut rounds = Vec::new();
    let mut requests = Vec::new();
    for (result, expected) in results.iter().zip(&expected) {
        if let Some((pqnode_dht::QueryResult::FindNode { closest, .. }, stats)) = result {
            overlaps.push(overlap(closest, expected));
            rounds.push(stats.rounds as usize);
            requests.push(stats.requests as usize);
        }
    }
    println!(
        "lookups: {} finished of {}, mean overlap with true 20 closest {:.4}, rounds {:.2}, requests {:.1}; {:.0} lookups/s wall ({:.2} s virtual)",
        overlaps.len(),
        args.lookups,
        overlaps.iter().sum::<f64>() / overlaps.len().max(1) as f64,
        mean(&rounds),
        mean(&requests),
        overlaps.len() as f64 / wall,
        sim.now()
            .saturating_duration_since(virtual_start)
            .as_secs_f64(),
    );

    // Records: publish (all at once), kill a fraction, fetch (all at once).
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
    let keys: Vec<_> = puts.iter().map(|(_, r)| *r.key()).collect();
    let replicas: Vec<usize> = sim
        .put_all(puts)
        .into_iter()
        .map(|r| r.unwrap_or(0))
        .collect();
    let killed = sim.kill_fraction(args.kill);
    let gets: Vec<_> = keys
        .iter()
        .filter_map(|k| Some((sim.random_alive()?, *k)))
        .collect();
    let results = sim.get_all(&gets);
    let found = results
        .iter()
        .filter(|r| matches!(r, Some((Some(_), _))))
        .count();
    let get_rounds: Vec<usize> = results
        .iter()
        .flatten()
        .map(|(_, s)| s.rounds as usize)
        .collect();
    println!(
        "records: {} published on {:.1} nodes each; after killing {} nodes, {}/{} found ({:.2} %), rounds {:.2}",
        keys.len(),
        mean(&replicas),
        killed.len(),
        found,
        keys.len(),
        100.0 * found as f64 / keys.len().max(1) as f64,
        mean(&get_rounds),
    );
    let c = sim.counters();
    println!(
        "total: {:.1} s wall, {} events, {} messages delivered, {} dropped",
        started.elapsed().as_secs_f64(),
        c.events_processed,
        c.messages_delivered,
        c.messages_dropped
    );
}

fn mean(values: &[usize]) -> f64 {
    values.iter().sum::<usize>() as f64 / values.len().max(1) as f64
}
