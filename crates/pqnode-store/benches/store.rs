//! Store throughput: puts/s (one by one, concurrent, batched) and gets/s (cold, concurrent,
//! cached), each next to the same work done on redb directly (the anchor). Anchor and store
//! alternate over several rounds and the medians are compared, so a busy machine skews both
//! alike. Prints figures and ratios; never fails on time.
//!
//! `cargo bench -p pqnode-store` (set PQNODE_BENCH_DIR to measure another disk).

use std::path::Path;
use std::time::{Duration, Instant};

use pqnode_store::{Store, Table};
use redb::{ReadableDatabase, TableDefinition};

const ROUNDS: u32 = 3;
const SINGLE_PUTS: u32 = 300;
const CALLERS: u32 = 64;
const PUTS_PER_CALLER: u32 = 20;
const BATCHED_PUTS: u32 = 50_000;
const BATCH: u32 = 1_000;
const GETS: u32 = 8_000;
const VALUE: [u8; 100] = [7; 100];
/// Keys of one round never collide with another's.
const ROUND_SPAN: u32 = 1_000_000;

const ANCHOR: TableDefinition<&[u8], &[u8]> = TableDefinition::new("anchor");

fn main() {
    let base = std::env::var_os("PQNODE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    println!(
        "store benchmark in {}, medians of {ROUNDS} rounds",
        dir.path().display()
    );

    let anchor = Anchor::new(&dir.path().join("anchor.redb"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(&dir.path().join("store.redb"), &anchor));
}

async fn run(path: &Path, anchor: &Anchor) {
    let store = Store::open(path).await.expect("open");
    let one_txn_per_put = "redb, one txn per put";
    let one_txn_per_get = "redb, one read txn per get";

    let mut single = Comparison::new("put, one at a time", one_txn_per_put);
    let mut concurrent = Comparison::new("put, 64 concurrent callers", one_txn_per_put);
    let mut batched = Comparison::new("put_many, 1000 per call", "redb, same batches");
    for round in 0..ROUNDS {
        single.anchor(anchor.single_puts(round, SINGLE_PUTS));
        single.ours(single_puts(&store, round).await);
        concurrent.anchor(anchor.single_puts(round + ROUNDS, SINGLE_PUTS));
        concurrent.ours(concurrent_puts(&store, round).await);
        batched.anchor(anchor.batched_puts(round));
        batched.ours(batched_puts(&store, round).await);
    }

    let mut cold = Comparison::new("get, first read of each key", one_txn_per_get);
    let mut parallel = Comparison::new("get, first reads, 64 callers", one_txn_per_get);
    let mut cached = Comparison::new("get, same keys again (cached)", one_txn_per_get);
    for round in 0..ROUNDS {
        cold.anchor(anchor.gets(round));
        cold.ours(sequential_gets(&store, round).await);
        parallel.anchor(anchor.gets(round));
        parallel.ours(concurrent_gets(&store, round).await);
        cached.anchor(anchor.gets(round));
        cached.ours(sequential_gets(&store, round).await);
    }

    for comparison in [single, concurrent, batched, cold, parallel, cached] {
        comparison.report();
    }
    let stats = store.stats().await;
    println!(
        "store: {} commits for {} writes; file {} bytes",
        stats.commits,
        stats.writes,
        stats.file_size_bytes.unwrap_or(0)
    );
    store.close().await.expect("close");
}

async fn single_puts(store: &Store, round: u32) -> f64 {
    let started = Instant::now();
    for i in 0..SINGLE_PUTS {
        store
            .put(Table::Messages, key(round, i), VALUE.to_vec())
            .await
            .expect("put");
    }
    rate(SINGLE_PUTS, started.elapsed())
}

async fn concurrent_puts(store: &Store, round: u32) -> f64 {
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let store = store.clone();
        callers.spawn(async move {
            for i in 0..PUTS_PER_CALLER {
                let key = key(round, caller * PUTS_PER_CALLER + i);
                store
                    .put(Table::Routing, key, VALUE.to_vec())
                    .await
                    .expect("put");
            }
        });
    }
    while let Some(caller) = callers.join_next().await {
        caller.expect("caller");
    }
    rate(CALLERS * PUTS_PER_CALLER, started.elapsed())
}

async fn batched_puts(store: &Store, round: u32) -> f64 {
    let started = Instant::now();
    for batch in 0..BATCHED_PUTS / BATCH {
        let entries = (batch * BATCH..(batch + 1) * BATCH).map(|i| (key(round, i), VALUE.to_vec()));
        store
            .put_many(Table::Documents, entries)
            .await
            .expect("put_many");
    }
    rate(BATCHED_PUTS, started.elapsed())
}

/// Reads keys `0..GETS` of the round's batch: the first call per round misses the cache.
async fn sequential_gets(store: &Store, round: u32) -> f64 {
    let started = Instant::now();
    for i in 0..GETS {
        let found = store
            .get(Table::Documents, key(round, i))
            .await
            .expect("get");
        assert!(found.is_some());
    }
    rate(GETS, started.elapsed())
}

/// Reads keys `GETS..2 * GETS` of the round's batch, which nothing has read before.
async fn concurrent_gets(store: &Store, round: u32) -> f64 {
    let per_caller = GETS / CALLERS;
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let store = store.clone();
        callers.spawn(async move {
            let first = GETS + caller * per_caller;
            for i in first..first + per_caller {
                let found = store
                    .get(Table::Documents, key(round, i))
                    .await
                    .expect("get");
                assert!(found.is_some());
            }
        });
    }
    while let Some(caller) = callers.join_next().await {
        caller.expect("caller");
    }
    rate(per_caller * CALLERS, started.elapsed())
}

/// The same work on a bare redb database, on the calling thread.
struct Anchor {
    db: redb::Database,
}

impl Anchor {
    fn new(path: &Path) -> Self {
        let db = redb::Database::create(path).expect("anchor db");
        Self { db }
    }

    fn single_puts(&self, round: u32, count: u32) -> f64 {
        let started = Instant::now();
        for i in 0..count {
            let txn = self.db.begin_write().expect("begin");
            txn.open_table(ANCHOR)
                .expect("table")
                .insert(key(round, i).as_slice(), VALUE.as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        rate(count, started.elapsed())
    }

    fn batched_puts(&self, round: u32) -> f64 {
        // Its own key range, so these are inserts as in the store, not overwrites.
        let round = round + 2 * ROUNDS;
        let started = Instant::now();
        for first in (0..BATCHED_PUTS).step_by(BATCH as usize) {
            let txn = self.db.begin_write().expect("begin");
            {
                let mut table = txn.open_table(ANCHOR).expect("table");
                for i in first..first + BATCH {
                    table
                        .insert(key(round, i).as_slice(), VALUE.as_slice())
                        .expect("insert");
                }
            }
            txn.commit().expect("commit");
        }
        rate(BATCHED_PUTS, started.elapsed())
    }

    fn gets(&self, round: u32) -> f64 {
        let round = round + 2 * ROUNDS;
        let started = Instant::now();
        for i in 0..GETS {
            let txn = self.db.begin_read().expect("begin");
            let table = txn.open_table(ANCHOR).expect("table");
            let found = table.get(key(round, i).as_slice()).expect("get");
            assert!(found.is_some());
        }
        rate(GETS, started.elapsed())
    }
}

struct Comparison {
    what: &'static str,
    anchor_name: &'static str,
    ours: Vec<f64>,
    anchor: Vec<f64>,
}

impl Comparison {
    fn new(what: &'static str, anchor_name: &'static str) -> Self {
        Self {
            what,
            anchor_name,
            ours: Vec::new(),
            anchor: Vec::new(),
        }
    }

    fn ours(&mut self, rate: f64) {
        self.ours.push(rate);
    }

    fn anchor(&mut self, rate: f64) {
        self.anchor.push(rate);
    }

    fn report(mut self) {
        let ours = median(&mut self.ours);
        let anchor = median(&mut self.anchor);
        println!(
            "{:<32} {ours:>10.0} ops/s   anchor ({}) {anchor:>9.0} ops/s   ratio {:>5.2}",
            self.what,
            self.anchor_name,
            ours / anchor
        );
    }
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN)
}

fn key(round: u32, i: u32) -> Vec<u8> {
    (round * ROUND_SPAN + i).to_be_bytes().to_vec()
}

fn rate(operations: u32, took: Duration) -> f64 {
    f64::from(operations) / took.as_secs_f64()
}
