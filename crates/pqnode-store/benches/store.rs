//! Store throughput: puts/s (one by one, concurrent, batched) and gets/s (cold, cached), each
//! next to the same work done on redb directly in this run (the anchor), so the ratios show
//! what the thread, the channel and the cache cost or save. Prints figures; never fails on time.
//!
//! `cargo bench -p pqnode-store` (set PQNODE_BENCH_DIR to measure another disk).

use std::path::Path;
use std::time::{Duration, Instant};

use pqnode_store::{Store, Table};
use redb::{ReadableDatabase, TableDefinition};

const SINGLE_PUTS: u32 = 500;
const CONCURRENT_TASKS: u32 = 64;
const BATCHED_PUTS: u32 = 100_000;
const BATCH: u32 = 1_000;
const GETS: u32 = 50_000;
const VALUE: [u8; 100] = [7; 100];

const ANCHOR: TableDefinition<&[u8], &[u8]> = TableDefinition::new("anchor");

fn main() {
    let base = std::env::var_os("PQNODE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    println!("store benchmark in {}", dir.path().display());

    let anchor = Anchor::new(&dir.path().join("anchor.redb"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(&dir.path().join("store.redb"), &anchor));
}

async fn run(path: &Path, anchor: &Anchor) {
    let store = Store::open(path).await.expect("open");

    let anchor_single = anchor.single_puts(SINGLE_PUTS);
    let started = Instant::now();
    for i in 0..SINGLE_PUTS {
        store
            .put(Table::Messages, key(i), VALUE.to_vec())
            .await
            .expect("put");
    }
    let single = rate(SINGLE_PUTS, started.elapsed());
    report(
        "put, one at a time",
        single,
        "redb, one txn per put",
        anchor_single,
    );

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..CONCURRENT_TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..SINGLE_PUTS / CONCURRENT_TASKS * 4 {
                let key = [task.to_be_bytes(), i.to_be_bytes()].concat();
                store
                    .put(Table::Routing, key, VALUE.to_vec())
                    .await
                    .expect("put");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task");
    }
    let concurrent_puts = CONCURRENT_TASKS * (SINGLE_PUTS / CONCURRENT_TASKS * 4);
    let concurrent = rate(concurrent_puts, started.elapsed());
    report(
        &format!("put, {CONCURRENT_TASKS} concurrent callers"),
        concurrent,
        "redb, one txn per put",
        anchor_single,
    );

    let anchor_batched = anchor.batched_puts(BATCHED_PUTS, BATCH);
    let started = Instant::now();
    for batch in 0..BATCHED_PUTS / BATCH {
        let entries = (batch * BATCH..(batch + 1) * BATCH).map(|i| (key(i), VALUE.to_vec()));
        store
            .put_many(Table::Documents, entries)
            .await
            .expect("put_many");
    }
    let batched = rate(BATCHED_PUTS, started.elapsed());
    report(
        &format!("put_many, {BATCH} per call"),
        batched,
        "redb, same batches",
        anchor_batched,
    );

    let anchor_gets = anchor.gets(GETS, BATCHED_PUTS);
    let started = Instant::now();
    for i in 0..GETS / 2 {
        let found = store.get(Table::Documents, key(i)).await.expect("get");
        assert!(found.is_some());
    }
    let cold = rate(GETS / 2, started.elapsed());
    report(
        "get, first read of each key",
        cold,
        "redb, one read txn per get",
        anchor_gets,
    );

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = GETS / 2 / CONCURRENT_TASKS;
    for task in 0..CONCURRENT_TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            let first = GETS / 2 + task * per_task;
            for i in first..first + per_task {
                let found = store.get(Table::Documents, key(i)).await.expect("get");
                assert!(found.is_some());
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task");
    }
    let concurrent = rate(per_task * CONCURRENT_TASKS, started.elapsed());
    report(
        &format!("get, first reads, {CONCURRENT_TASKS} callers"),
        concurrent,
        "redb, one read txn per get",
        anchor_gets,
    );

    let started = Instant::now();
    for i in 0..GETS / 2 {
        let found = store.get(Table::Documents, key(i)).await.expect("get");
        assert!(found.is_some());
    }
    let cached = rate(GETS / 2, started.elapsed());
    report(
        "get, same keys again (cached)",
        cached,
        "redb, one read txn per get",
        anchor_gets,
    );

    let stats = store.stats().await;
    println!(
        "store: {} commits for {} writes, file {} bytes",
        stats.commits,
        stats.writes,
        stats.file_size_bytes.unwrap_or(0)
    );
    store.close().await.expect("close");
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

    fn single_puts(&self, count: u32) -> f64 {
        let started = Instant::now();
        for i in 0..count {
            let txn = self.db.begin_write().expect("begin");
            txn.open_table(ANCHOR)
                .expect("table")
                .insert(key(i).as_slice(), VALUE.as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        rate(count, started.elapsed())
    }

    fn batched_puts(&self, count: u32, batch: u32) -> f64 {
        let started = Instant::now();
        for first in (0..count).step_by(batch as usize) {
            let txn = self.db.begin_write().expect("begin");
            {
                let mut table = txn.open_table(ANCHOR).expect("table");
                for i in first..first + batch {
                    table
                        .insert(key(i).as_slice(), VALUE.as_slice())
                        .expect("insert");
                }
            }
            txn.commit().expect("commit");
        }
        rate(count, started.elapsed())
    }

    fn gets(&self, count: u32, keys: u32) -> f64 {
        let started = Instant::now();
        for i in 0..count {
            let txn = self.db.begin_read().expect("begin");
            let table = txn.open_table(ANCHOR).expect("table");
            let found = table.get(key(i % keys).as_slice()).expect("get");
            assert!(found.is_some());
        }
        rate(count, started.elapsed())
    }
}

fn key(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

fn rate(operations: u32, took: Duration) -> f64 {
    f64::from(operations) / took.as_secs_f64()
}

fn report(what: &str, ours: f64, anchor_name: &str, anchor: f64) {
    println!(
        "{what:<34} {ours:>12.0} ops/s   anchor ({anchor_name}) {anchor:>10.0} ops/s   ratio {:>6.2}",
        ours / anchor
    );
}
