//! Durable updates: how many Yjs updates per second the engine applies when every
//! acknowledgement waits for the store's commit, one at a time versus many writers at once
//! (whose updates to one document share one yrs transaction and one commit), and one client
//! connection sending a burst through a [`Session`], which queues each update without waiting
//! for the commit of the one before.
//!
//! A real redb file in a temporary folder, so every commit is a real `fsync`. Anchors measured
//! in the same run: one writer awaiting each update (one transaction and commit per update).
//!
//! `cargo bench -p pqnode-crdt --bench durable_updates` (`PQNODE_BENCH_DIR` picks the disk).

use std::time::{Duration, Instant};

use pqnode_crdt::{DocConfig, DocName, DocStore, Session, SessionOptions};
use pqnode_store::Store;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, Text, Transact};

/// Updates per run.
const UPDATES: usize = 4000;

struct Figures {
    per_second: f64,
    /// Per-update acknowledgement latency; a session's burst has none to report.
    latency: Option<(Duration, Duration)>,
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
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let anchor = measure(&dir.path().join("anchor.redb"), 1, 1).await;
    row("1", 1, &anchor, &anchor);
    for (run, (writers, documents)) in [(10, 1), (100, 1), (100, 100)].into_iter().enumerate() {
        let figures = measure(&dir.path().join(format!("r{run}.redb")), writers, documents).await;
        row(&writers.to_string(), documents, &figures, &anchor);
    }
    let burst = measure_session(&dir.path().join("session.redb")).await;
    row("1 session, burst", 1, &burst, &anchor);
}

fn row(writers: &str, documents: usize, figures: &Figures, anchor: &Figures) {
    let (p50, p99) = match figures.latency {
        Some((p50, p99)) => (format!("{:.2}", ms(p50)), format!("{:.2}", ms(p99))),
        None => ("-".into(), "-".into()),
    };
    println!(
        "| {writers} | {documents} | {:.0} | {p50} | {p99} | {} | {:.1}x |",
        figures.per_second,
        figures.commits,
        figures.per_second / anchor.per_second
    );
}

/// Updates a client would send one after another: inserts near the start of root text "t".
fn edits(count: usize) -> impl Iterator<Item = Vec<u8>> {
    let client = Doc::new();
    let text = client.get_or_insert_text("t");
    (0..count).map(move |i| {
        let mut txn = client.transact_mut();
        let at = text.get_string(&txn).len() as u32;
        text.insert(&mut txn, at.min(40), if i % 2 == 0 { "ab" } else { "c" });
        txn.encode_update_v1()
    })
}

/// One connection's burst: every update framed as y-websocket sends it, fed to one session
/// as fast as it takes them, then timed until the last is committed.
async fn measure_session(path: &std::path::Path) -> Figures {
    let store = Store::open(path).await.expect("store");
    let docs = DocStore::open(store.clone(), DocConfig::default())
        .await
        .expect("engine");
    let name = DocName::new("burst").expect("name");
    let (mut session, _events, _greeting) = Session::open(&docs, &name, SessionOptions::default())
        .await
        .expect("session");
    let frames: Vec<Vec<u8>> = edits(UPDATES)
        .map(|update| Message::Sync(SyncMessage::Update(update)).encode_v1())
        .collect();
    let started = Instant::now();
    for frame in &frames {
        session.on_message(frame).await.expect("queued");
    }
    session.flush().await.expect("durable");
    let elapsed = started.elapsed();
    let stats = docs.stats();
    assert_eq!(
        stats.updates_applied as usize, UPDATES,
        "every update is stored"
    );
    drop(session);
    drop(docs);
    store.close().await.expect("close");
    Figures {
        per_second: UPDATES as f64 / elapsed.as_secs_f64(),
        latency: None,
        commits: stats.commits,
    }
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
                let mut times = Vec::with_capacity(per_writer);
                for update in edits(per_writer) {
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
        latency: Some((times[acked / 2], times[(acked * 99 / 100).min(acked - 1)])),
        commits: stats.commits,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
