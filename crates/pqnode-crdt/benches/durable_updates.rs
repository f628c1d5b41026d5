//! Durable updates: how many Yjs updates per second the engine applies when every
//! acknowledgement waits for the store's commit, one at a time versus many writers at once
//! (whose updates to one document share one yrs transaction and one commit).
//!
//! A real redb file in a temporary folder, so every commit is a real `fsync`. Anchors measured
//! in the same run: one writer awaiting each update (one transaction and commit per update).
//!
//! `cargo bench -p pqnode-crdt --bench durable_updates` (`PQNODE_BENCH_DIR` picks the disk).

use std::time::{Duration, Instant};

use pqnode_crdt::{DocConfig, DocName, DocStore};
use pqnode_store::Store;
use yrs::{Doc, GetString, Text, Transact};

/// Updates per run.
const UPDATES: usize = 4000;

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    commits: u64,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let base = std::env::var_os("PQNODE_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = match &base {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .expect("temporary folder");
    println!(
        "## Durable CRDT updates ({UPDATES} text inserts per run, store in {})",
        dir.path().display()
    );
    println!("| writers | documents | updates/s | p50 ms | p99 ms | commits | vs one at a time |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let anchor = measure(&dir.path().join("anchor.redb"), 1, 1).await;
    row(1, 1, &anchor, &anchor);
    for (run, (writers, documents)) in [(10, 1), (100, 1), (100, 100)].into_iter().enumerate() {
        let figures = measure(&dir.path().join(format!("r{run}.redb")), writers, documents).await;
        row(writers, documents, &figures, &anchor);
    }
}

fn row(writers: usize, documents: usize, figures: &Figures, anchor: &Figures) {
    println!(
        "| {writers} | {documents} | {:.0} | {:.2} | {:.2} | {} | {:.1}x |",
        figures.per_second,
        ms(figures.p50),
        ms(figures.p99),
        figures.commits,
        figures.per_second / anchor.per_second
    );
}

async fn measure(path: &std::path::Path, writers: usize, documents: usize) -> Figures {
    let store = Store::open(path).await.expect("store");
    let docs = DocStore::open(store.clone(), DocConfig::default())
        .await
        .expect("engine");
    let per_writer = UPDATES / writers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let docs = docs.clone();
            let name = DocName::new(&format!("bench-{}", writer % documents)).expect("name");
            tokio::spawn(async move {
                let client = Doc::new();
                let text = client.get_or_insert_text("t");
                let mut times = Vec::with_capacity(per_writer);
                for i in 0..per_writer {
                    let update = {
                        let mut txn = client.transact_mut();
                        let at = text.get_string(&txn).len() as u32;
                        text.insert(&mut txn, at.min(40), if i % 2 == 0 { "ab" } else { "c" });
                        txn.encode_update_v1()
                    };
                    let sent = Instant::now();
                    docs.apply_update(&name, update).await.expect("durable");
                    times.push(sent.elapsed());
                }
                times
            })
        })
        .collect();
    let mut times = Vec::with_capacity(UPDATES);
    for task in tasks {
        times.extend(task.await.expect("writer"));
    }
    let elapsed = started.elapsed();
    times.sort();
    let stats = docs.stats();
    assert_eq!(
        stats.updates_applied as usize,
        times.len(),
        "every ack is counted"
    );
    drop(docs);
    store.close().await.expect("close");
    let acked = times.len();
    Figures {
        per_second: acked as f64 / elapsed.as_secs_f64(),
        p50: times[acked / 2],
        p99: times[(acked * 99 / 100).min(acked - 1)],
        commits: stats.commits,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
