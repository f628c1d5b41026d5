//! DHT figures: simulator throughput at 10 000 nodes, and heap bytes per routing-table entry and
//! per stored record. Prints figures and ratios against anchors measured in the same run; never
//! fails on time.
//!
//! `cargo bench -p pqnode-dht --bench dht` (or with `-- --nodes N` for another network size).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as WallClock};

use pqnode_crypto::Identity;
use pqnode_dht::sim::{SimConfig, Simulator};
use pqnode_dht::{
    Contact, Distance, Instant, NodeId, ProviderRecord, QueryResult, Record, RecordStore,
    RoutingTable, StoreLimits, TableConfig, codec,
};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};

/// Counts live heap bytes, so memory figures are measured rather than estimated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let nodes = std::env::args()
        .skip_while(|a| a != "--nodes")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    table_memory();
    store_memory();
    codec_speed();
    simulator_throughput(nodes);
}

fn random_contact(rng: &mut impl Rng, i: u32) -> Contact {
    let mut id = [0u8; 20];
    rng.fill_bytes(&mut id);
    let [a, b, c, _] = i.to_le_bytes();
    Contact::new(
        NodeId::from_bytes(id),
        SocketAddr::from(([10, a, b, c], 4001)),
    )
}

fn table_memory() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let before = live();
    let mut table = RoutingTable::new(
        NodeId::from_bytes([0; 20]),
        TableConfig::default(),
        Instant::ZERO,
    );
    for i in 0..200_000 {
        table.record_success(
            random_contact(&mut rng, i),
            Instant::ZERO,
            Some(Duration::from_millis(20)),
        );
    }
    let bytes = live() - before;
    let entries = table.len();
    let cached: usize = table.bucket_views().iter().map(|b| b.replacements).sum();
    let contacts = entries + cached;
    println!(
        "routing table: {entries} entries + {cached} cached in {} buckets, {bytes} heap bytes = {:.0} bytes per contact (anchor: a bare Contact is {} bytes, ratio {:.2})",
        table.buckets_used(),
        bytes as f64 / contacts as f64,
        std::mem::size_of::<Contact>(),
        bytes as f64 / contacts as f64 / std::mem::size_of::<Contact>() as f64,
    );
    // Closest-20 from the table against a brute-force sort of the same contacts.
    let all = table.contacts();
    let target = random_contact(&mut rng, 0).id;
    let rounds = 20_000;
    let t = WallClock::now();
    for _ in 0..rounds {
        black_box(table.closest(black_box(&target), 20, Instant::ZERO));
    }
    let closest = t.elapsed() / rounds;
    let t = WallClock::now();
    for _ in 0..rounds {
        let mut sorted: Vec<(Distance, NodeId)> = all
            .iter()
            .map(|c| (Distance::between(&target, &c.id), c.id))
            .collect();
        sorted.sort_unstable();
        black_box(sorted);
    }
    let brute = t.elapsed() / rounds;
    println!(
        "closest(20): {closest:?} per call; anchor full sort of the same contacts {brute:?}; ratio {:.2}",
        closest.as_secs_f64() / brute.as_secs_f64()
    );
}

fn store_memory() {
    let count = 1000;
    let identities: Vec<Identity> = (0..count)
        .filter_map(|i: u32| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            Identity::from_seed(&seed).ok()
        })
        .collect();
    let records: Vec<Record> = identities
        .iter()
        .filter_map(|id| {
            Record::sign(id, b"presence", &[7u8; 100], 1, Duration::from_secs(3600)).ok()
        })
        .collect();
    let value_bytes = records
        .first()
        .map_or(0, |r| r.value().len() + r.name().len());
    let signed_bytes = records.first().map_or(0, |r| {
        r.publisher().as_bytes().len() + r.signature().as_bytes().len()
    });
    let mut store = RecordStore::new(StoreLimits::default());
    let before = live();
    for r in records.iter().cloned() {
        let _ = store.put(r, Instant::ZERO);
    }
    let bytes = live() - before;
    println!(
        "record store: {} records with {value_bytes}-byte name+value, {bytes} heap bytes = {:.0} bytes per record (anchor: ML-DSA-87 key + signature alone = {signed_bytes} bytes, ratio {:.3})",
        store.record_count(),
        bytes as f64 / store.record_count() as f64,
        bytes as f64 / store.record_count() as f64 / signed_bytes as f64,
    );
    let topic = NodeId::from_bytes([3; 20]);
    let providers: Vec<ProviderRecord> = identities
        .iter()
        .take(256)
        .filter_map(|id| {
            ProviderRecord::sign(
                id,
                topic,
                b"ws://198.51.100.7:3001",
                1,
                Duration::from_secs(600),
            )
            .ok()
        })
        .collect();
    let before = live();
    for p in providers.iter().cloned() {
        let _ = store.add_provider(p, pqnode_dht::Typing::Untyped, Instant::ZERO);
    }
    let bytes = live() - before;
    println!(
        "provider entries: {} under one key, {:.0} heap bytes per entry",
        store.provider_count(),
        bytes as f64 / store.provider_count().max(1) as f64
    );
    if let Some(r) = records.first() {
        let rounds = 200;
        let t = WallClock::now();
        for _ in 0..rounds {
            black_box(r.verify().is_ok());
        }
        let verify = t.elapsed() / rounds;
        let t = WallClock::now();
        for id in identities.iter().take(rounds as usize) {
            black_box(
                Record::sign(id, b"presence", &[7u8; 100], 2, Duration::from_secs(3600)).is_ok(),
            );
        }
        let sign = t.elapsed() / rounds;
        println!(
            "record verify {verify:?}, sign {sign:?} (ratio verify/sign {:.2})",
            verify.as_secs_f64() / sign.as_secs_f64()
        );
    }
}

fn codec_speed() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let response = pqnode_dht::Response::Nodes {
        closer: (0..20).map(|i| random_contact(&mut rng, i)).collect(),
    };
    let bytes = codec::encode_response(&response);
    let rounds = 100_000;
    let t = WallClock::now();
    for _ in 0..rounds {
        black_box(codec::decode_response(black_box(&bytes)).is_ok());
    }
    let decode = t.elapsed() / rounds;
    let t = WallClock::now();
    for _ in 0..rounds {
        black_box(codec::encode_response(black_box(&response)));
    }
    let encode = t.elapsed() / rounds;
    let t = WallClock::now();
    for _ in 0..rounds {
        black_box(black_box(&bytes).to_vec());
    }
    let copy = t.elapsed() / rounds;
    println!(
        "codec: NODES response with 20 contacts = {} bytes; decode {decode:?}, encode {encode:?}; anchor copy of the bytes {copy:?} (decode/copy {:.1})",
        bytes.len(),
        decode.as_secs_f64() / copy.as_secs_f64()
    );
}

fn simulator_throughput(nodes: usize) {
    let t = WallClock::now();
    let heap_before = live();
    let mut sim = Simulator::new(SimConfig {
        nodes,
        seed: 7,
        ..SimConfig::default()
    });
    sim.bootstrap_all();
    let bootstrap = t.elapsed();
    let heap = live() - heap_before;
    let entries: usize = (0..sim.len())
        .filter_map(|i| sim.node(i))
        .map(|n| n.table().len())
        .sum();
    println!(
        "simulator: {nodes} nodes bootstrapped in {:.1} s wall ({:.0} s virtual, {} messages); heap {:.0} MiB = {:.1} KiB per node, {:.1} table entries per node",
        bootstrap.as_secs_f64(),
        sim.now().elapsed().as_secs_f64(),
        sim.counters().messages_delivered,
        heap as f64 / (1 << 20) as f64,
        heap as f64 / 1024.0 / nodes as f64,
        entries as f64 / nodes as f64,
    );
    let lookups = 2000;
    let targets: Vec<(usize, NodeId)> = (0..lookups)
        .filter_map(|_| Some((sim.random_alive()?, sim.random_id())))
        .collect();
    // Anchor: the brute-force answer (a sort of every id) for the same targets.
    let t = WallClock::now();
    for (_, target) in &targets {
        black_box(sim.true_closest(target, 20));
    }
    let brute = t.elapsed();
    let messages_before = sim.counters().messages_delivered;
    let t = WallClock::now();
    let ids: Vec<_> = targets
        .iter()
        .filter_map(|(from, target)| {
            Some((*from, sim.start(*from, |n, now| n.find_node(now, *target))?))
        })
        .collect();
    let results = sim.wait(&ids);
    let wall = t.elapsed();
    let finished = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_some_and(|o| matches!(o.value, QueryResult::FindNode { .. }))
        })
        .count();
    let messages = sim.counters().messages_delivered - messages_before;
    println!(
        "simulator: {finished} concurrent lookups in {:.2} s = {:.0} lookups/s ({:.0} messages/s, {:.1} messages per lookup incl. background); anchor brute-force closest-20 over all nodes {:.0} per s; ratio {:.2}",
        wall.as_secs_f64(),
        finished as f64 / wall.as_secs_f64(),
        messages as f64 / wall.as_secs_f64(),
        messages as f64 / finished.max(1) as f64,
        targets.len() as f64 / brute.as_secs_f64(),
        (finished as f64 / wall.as_secs_f64()) / (targets.len() as f64 / brute.as_secs_f64()),
    );
}
