//! Lookup latency on loopback: pqnode's DHT over PQ QUIC against the `mainline` crate's
//! BitTorrent DHT `Testnet` of the same size, measured in the same run.
//!
//! Every node of a network runs in this one process on 127.0.0.1 (ours: one tokio runtime
//! with two workers; mainline: a thread per node). Both networks join through their first
//! node, then answer the same workload: `LOOKUPS` lookups of existing node ids from random
//! nodes, `CONCURRENCY` at a time. Ours runs it twice: at first contact (most requests open a
//! new QUIC connection, one PQ handshake each) and again over the connections now open.
//! Our timers are set to mainline's fixed ones (refresh 15 min, ping 5 min): with every node
//! in one process, the spec's 60 s refresh of hundreds of nodes is hundreds of times one
//! node's background load, and it competes with the lookups measured.
//!
//! Then churn: a third of the nodes of each network stop at once (every third node but the
//! first), nobody tells the others, and the same number of lookups run between survivors,
//! twice: right after (every dead contact still in the tables) and again (what the first pass
//! taught the tables).
//!
//! Printed: time to build the network, lookup latency (median, p90, max), hit rate (the target
//! came back first), our mean rounds, and the ratios. A benchmark, not a test: nothing here
//! fails on time.
//!
//! `cargo bench -p pqnode-overlay --bench loopback` (sizes: `PQNODE_BENCH_SIZES=100,500`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pqnode_crypto::{Identity, NodeId};
use pqnode_net::{Limits, NetConfig, Network, PeerAddr};
use pqnode_overlay::{Overlay, OverlayConfig};
use tokio::task::JoinSet;

const LOOKUPS: usize = 200;
const CONCURRENCY: usize = 10;

struct Figures {
    build: Duration,
    latencies: Vec<Duration>,
    hits: usize,
    rounds: Option<f64>,
}

impl Figures {
    fn percentile(&self, p: usize) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let index = (sorted.len() * p / 100).min(sorted.len().saturating_sub(1));
        sorted.get(index).copied().unwrap_or_default()
    }
}

/// Whether node `i` is one of the third stopped by the churn phase.
fn leaves(i: usize) -> bool {
    i % 3 == 2
}

/// A deterministic sequence of (origin, target) pairs, origin != target.
fn workload(n: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut state = seed;
    let mut next = move || {
        // SplitMix64: good enough to spread picks, and identical for both networks.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as usize
    };
    (0..LOOKUPS)
        .map(|_| {
            let from = next() % n;
            let to = (from + 1 + next() % (n - 1)) % n;
            (from, to)
        })
        .collect()
}

/// Builds an `n`-node network, then runs the workload twice: first contact (each lookup
/// mostly opens new QUIC connections, one PQ handshake each) and again over the open ones.
async fn ours(n: usize) -> [Figures; 4] {
    let limits = Limits {
        max_connections: 8192,
        max_half_open: 4096,
        max_per_ip: 8192,
        shutdown_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let started = Instant::now();
    let mut nodes: Vec<(NodeId, Network, Overlay)> = Vec::with_capacity(n);
    let mut seed: Option<PeerAddr> = None;
    for _ in 0..n {
        let identity = Arc::new(Identity::generate().expect("keygen"));
        let config = NetConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            limits: limits.clone(),
            peers: Vec::new(),
        };
        let network = Network::start(&identity, config).await.expect("network");
        let addr = network.local_addr().expect("bound");
        let mut overlay_config = OverlayConfig::new(identity.clone());
        overlay_config.dht.table.max_per_subnet = None;
        // mainline's timers (see the module docs).
        overlay_config.dht.refresh_interval = Duration::from_secs(15 * 60);
        overlay_config.dht.ping_interval = Duration::from_secs(5 * 60);
        let overlay = Overlay::start(network.clone(), None, overlay_config)
            .await
            .expect("overlay");
        if let Some(seed) = &seed {
            overlay
                .bootstrap(std::slice::from_ref(seed))
                .await
                .expect("bootstrap");
        } else {
            seed = Some(PeerAddr::new(Some(identity.node_id()), addr));
        }
        nodes.push((identity.node_id(), network, overlay));
        if nodes.len().is_multiple_of(100) {
            eprintln!(
                "  pqnode: {} nodes joined after {:.1?}",
                nodes.len(),
                started.elapsed()
            );
        }
    }
    let build = started.elapsed();

    let ids: Vec<NodeId> = nodes.iter().map(|n| n.0).collect();
    let overlays: Vec<Overlay> = nodes.iter().map(|n| n.2.clone()).collect();
    let cold = our_lookups(&overlays, &ids, 7, build).await;
    let warm = our_lookups(&overlays, &ids, 7, build).await;

    // Churn: a third stop at once, without a word to anyone.
    let (leaving, staying): (Vec<_>, Vec<_>) =
        nodes.into_iter().enumerate().partition(|(i, _)| leaves(*i));
    stop(leaving.into_iter().map(|(_, node)| node)).await;
    let ids: Vec<NodeId> = staying.iter().map(|(_, n)| n.0).collect();
    let overlays: Vec<Overlay> = staying.iter().map(|(_, n)| n.2.clone()).collect();
    let churned = our_lookups(&overlays, &ids, 11, build).await;
    let repeated = our_lookups(&overlays, &ids, 11, build).await;
    stop(staying.into_iter().map(|(_, node)| node)).await;
    [cold, warm, churned, repeated]
}

async fn stop(nodes: impl Iterator<Item = (NodeId, Network, Overlay)>) {
    let mut stopping = JoinSet::new();
    for (_, network, overlay) in nodes {
        stopping.spawn(async move {
            overlay.shutdown().await;
            network.shutdown().await;
        });
    }
    while stopping.join_next().await.is_some() {}
}

/// Runs the workload; `seed` picks the pairs, so the same seed repeats the same lookups.
async fn our_lookups(overlays: &[Overlay], ids: &[NodeId], seed: u64, build: Duration) -> Figures {
    let mut pending = workload(ids.len(), seed).into_iter();
    let mut running = JoinSet::new();
    let mut figures = Figures {
        build,
        latencies: Vec::new(),
        hits: 0,
        rounds: None,
    };
    let mut rounds = 0u64;
    loop {
        while running.len() < CONCURRENCY {
            let Some((from, to)) = pending.next() else {
                break;
            };
            let overlay = overlays[from].clone();
            let target = ids[to];
            running.spawn(async move { (target, overlay.lookup(target).await) });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let (target, outcome) = done.expect("task");
        let outcome = outcome.expect("lookup");
        figures.latencies.push(outcome.elapsed);
        rounds += u64::from(outcome.rounds);
        if outcome.closest.first().map(|c| c.id) == Some(target) {
            figures.hits += 1;
        }
    }
    figures.rounds = Some(rounds as f64 / figures.latencies.len().max(1) as f64);
    figures
}

async fn mainline_testnet(n: usize) -> [Figures; 3] {
    let started = Instant::now();
    let testnet = mainline::Testnet::builder(n)
        .seeded(false)
        .build()
        .expect("testnet");
    let nodes: Vec<mainline::async_dht::AsyncDht> = testnet
        .nodes
        .iter()
        .cloned()
        .map(|d| d.as_async())
        .collect();
    // Unseeded nodes join through the first one in the background: wait until each has.
    for (i, node) in nodes.iter().enumerate() {
        node.bootstrapped().await;
        if (i + 1).is_multiple_of(100) {
            eprintln!(
                "  mainline: {} nodes joined after {:.1?}",
                i + 1,
                started.elapsed()
            );
        }
    }
    let build = started.elapsed();

    let mut ids = Vec::with_capacity(n);
    for node in &nodes {
        ids.push(*node.info().await.id());
    }
    let connected = mainline_lookups(&nodes, &ids, 7, build).await;

    // Churn: dropping every handle of a node stops its actor thread.
    let mut testnet = testnet;
    let mut staying = Vec::new();
    let mut staying_ids = Vec::new();
    for (i, (node, id)) in nodes.into_iter().zip(ids).enumerate() {
        if !leaves(i) {
            staying.push(node);
            staying_ids.push(id);
        }
    }
    testnet.nodes = testnet
        .nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !leaves(*i))
        .map(|(_, dht)| dht)
        .collect();
    let churned = mainline_lookups(&staying, &staying_ids, 11, build).await;
    let repeated = mainline_lookups(&staying, &staying_ids, 11, build).await;
    drop(staying);
    drop(testnet);
    [connected, churned, repeated]
}

async fn mainline_lookups(
    nodes: &[mainline::async_dht::AsyncDht],
    ids: &[mainline::Id],
    seed: u64,
    build: Duration,
) -> Figures {
    let mut pending = workload(ids.len(), seed).into_iter();
    let mut running = JoinSet::new();
    let mut figures = Figures {
        build,
        latencies: Vec::new(),
        hits: 0,
        rounds: None,
    };
    loop {
        while running.len() < CONCURRENCY {
            let Some((from, to)) = pending.next() else {
                break;
            };
            let node = nodes[from].clone();
            let target = ids[to];
            running.spawn(async move {
                let started = Instant::now();
                let closest = node.find_node(target).await;
                (target, closest, started.elapsed())
            });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let (target, closest, elapsed) = done.expect("task");
        figures.latencies.push(elapsed);
        if closest.first().map(|c| *c.id()) == Some(target) {
            figures.hits += 1;
        }
    }
    figures
}

fn print(name: &str, n: usize, f: &Figures) {
    let rounds = f
        .rounds
        .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}"));
    println!(
        "{name:<32} n={n:<4} build {:>8.2?}  median {:>9.2?}  p90 {:>9.2?}  max {:>9.2?}  hits {}/{}  rounds {rounds}",
        f.build,
        f.percentile(50),
        f.percentile(90),
        f.percentile(100),
        f.hits,
        f.latencies.len(),
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::var("PQNODE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 500]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "loopback lookups: {LOOKUPS} per network, {CONCURRENCY} at a time, all nodes in one process"
    );
    for n in sizes.into_iter().filter(|n| *n >= 2) {
        let [pq, warm, pq_churned, pq_repeated] = runtime.block_on(ours(n));
        print("pqnode, first contact", n, &pq);
        print("pqnode, connected", n, &warm);
        print("pqnode, a third just left", n, &pq_churned);
        print("pqnode, a third left, repeated", n, &pq_repeated);
        let [anchor, anchor_churned, anchor_repeated] = runtime.block_on(mainline_testnet(n));
        print("mainline Testnet", n, &anchor);
        print("mainline, a third just left", n, &anchor_churned);
        print("mainline, a third left, repeated", n, &anchor_repeated);
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        for (label, ours, theirs) in [
            ("first contact", &pq, &anchor),
            ("connected", &warm, &anchor),
            ("a third just left", &pq_churned, &anchor_churned),
            ("a third left, repeated", &pq_repeated, &anchor_repeated),
        ] {
            println!(
                "  ratio pqnode / mainline ({label}): median {:.3}  p90 {:.3}  max {:.3}  (below 1 = pqnode faster)",
                ratio(ours.percentile(50), theirs.percentile(50)),
                ratio(ours.percentile(90), theirs.percentile(90)),
                ratio(ours.percentile(100), theirs.percentile(100)),
            );
        }
    }
}
