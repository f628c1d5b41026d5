//! Replication: how long a 10 000-update document takes to reach 3 nodes, and how many bytes
//! cross the wire compared with the raw updates.
//!
//! Three nodes, each with its own redb file (every commit a real `fsync`), joined by the
//! in-memory mesh of the tests (tests/common/mesh.rs), which carries the real protobuf bytes
//! and counts them. Runs, in the same process:
//!
//! - **local only** (the anchor): one node commits the updates, nobody replicates;
//! - **live**: three nodes track the document while one commits the updates; live pushes
//!   carry them (merged while a push is in flight);
//! - **catch-up**: one node holds the finished document; two nodes join and get it by
//!   anti-entropy (one exchange each).
//!
//! `cargo bench -p pqnode-crdt --bench replication` (`PQNODE_BENCH_DIR` picks the disk).

#[path = "../tests/common/mesh.rs"]
mod mesh;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh::{Mesh, Node};
use pqnode_crdt::{DocName, DocStore, ReplicationConfig};
use pqnode_testkit::eventually;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, Text, Transact};

const UPDATES: usize = 10_000;
/// Updates submitted at once: a typing client's updates queue up behind each commit.
const WINDOW: usize = 64;

struct Figures {
    elapsed: Duration,
    /// Nodes the document was carried to.
    receivers: usize,
    /// Store commits on the writing node (updates committed together share one).
    commits: u64,
    requests: usize,
    wire_bytes: usize,
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
    let (updates, text) = typing(UPDATES);
    let raw: usize = updates.iter().map(Vec::len).sum();
    let full = full_state(&updates);
    println!(
        "## Replication of a {UPDATES}-update document to 3 nodes ({raw} bytes of raw updates; \
         the whole document encodes to {full} bytes; final text {} chars)",
        text.len()
    );
    println!(
        "| run | time ms | updates/s | commits on the writer | requests | wire bytes | wire per receiving node / raw | vs local only |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    // The anchor runs before and after (a shared machine drifts); the faster one is the ratio's base.
    let first = local_only(&dir.path().join("anchor1"), &updates).await;
    let live = live(&dir.path().join("live"), &updates, &text).await;
    let catch_up = catch_up(&dir.path().join("catch-up"), &updates, &text).await;
    let second = local_only(&dir.path().join("anchor2"), &updates).await;
    let anchor = match first.elapsed <= second.elapsed {
        true => &first,
        false => &second,
    };
    row("local only (1 node), before", &first, raw, anchor);
    row("local only (1 node), after", &second, raw, anchor);
    row("live (3 nodes)", &live, raw, anchor);
    row("catch-up (2 join)", &catch_up, raw, anchor);
}

fn row(run: &str, figures: &Figures, raw: usize, anchor: &Figures) {
    let secs = figures.elapsed.as_secs_f64();
    let per_node = figures.wire_bytes as f64 / figures.receivers.max(1) as f64;
    println!(
        "| {run} | {:.0} | {:.0} | {} | {} | {} | {:.3} | {:.2}x |",
        secs * 1e3,
        UPDATES as f64 / secs,
        figures.commits,
        figures.requests,
        figures.wire_bytes,
        per_node / raw as f64,
        secs / anchor.elapsed.as_secs_f64()
    );
}

/// A client typing: each update inserts one to three characters near the end.
fn typing(n: usize) -> (Vec<Vec<u8>>, String) {
    let client = Doc::new();
    let text = client.get_or_insert_text("t");
    let mut updates = Vec::with_capacity(n);
    for i in 0..n {
        let mut txn = client.transact_mut();
        let len = text.get_string(&txn).len() as u32;
        let chunk = ["a", "bc", "def"][i % 3];
        text.insert(&mut txn, len.saturating_sub((i % 5) as u32), chunk);
        updates.push(txn.encode_update_v1());
    }
    let final_text = text.get_string(&client.transact());
    (updates, final_text)
}

/// The size of the whole document as one update (what one exchange carries to a new node).
fn full_state(updates: &[Vec<u8>]) -> usize {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        for update in updates {
            let update = yrs::Update::decode_v1(update).expect("decode");
            txn.apply_update(update).expect("apply");
        }
    }
    doc.transact()
        .encode_state_as_update_v1(&yrs::StateVector::default())
        .len()
}

async fn commit_all(docs: &DocStore, doc: &DocName, updates: &[Vec<u8>]) {
    for window in updates.chunks(WINDOW) {
        let commits = window
            .iter()
            .map(|update| docs.apply_update(doc, update.clone()));
        for outcome in futures_util::future::join_all(commits).await {
            outcome.expect("durable");
        }
    }
}

fn config() -> ReplicationConfig {
    let mut config = ReplicationConfig::default();
    config.anti_entropy_interval = Duration::from_secs(600);
    config
}

fn doc() -> DocName {
    DocName::new("bench").expect("name")
}

async fn local_only(dir: &std::path::Path, updates: &[Vec<u8>]) -> Figures {
    std::fs::create_dir_all(dir).expect("dir");
    let mesh = Mesh::new();
    let node = Node::start(&mesh, 1, dir, config()).await;
    node.replicator.track(&doc()).expect("track");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    commit_all(&node.docs, &doc(), updates).await;
    let elapsed = started.elapsed();
    let commits = node.docs.stats().commits;
    node.stop(&mesh).await;
    Figures {
        elapsed,
        commits,
        receivers: 0,
        requests: 0,
        wire_bytes: 0,
    }
}

async fn live(dir: &std::path::Path, updates: &[Vec<u8>], text: &str) -> Figures {
    std::fs::create_dir_all(dir).expect("dir");
    let mesh = Mesh::new();
    let mut nodes = Vec::new();
    for n in 1..=3 {
        let node = Node::start(&mesh, n, dir, config()).await;
        node.replicator.track(&doc()).expect("track");
        nodes.push(node);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    commit_all(&nodes[0].docs, &doc(), updates).await;
    let figures = reached(&mesh, &nodes, text, started).await;
    stop(&mesh, nodes).await;
    figures
}

async fn catch_up(dir: &std::path::Path, updates: &[Vec<u8>], text: &str) -> Figures {
    std::fs::create_dir_all(dir).expect("dir");
    let mesh = Mesh::new();
    let first = Node::start(&mesh, 1, dir, config()).await;
    first.replicator.track(&doc()).expect("track");
    commit_all(&first.docs, &doc(), updates).await;
    let before = (mesh.requests(), mesh.bytes());
    let started = Instant::now();
    let mut nodes = vec![first];
    for n in 2..=3 {
        let node = Node::start(&mesh, n, dir, config()).await;
        node.replicator.track(&doc()).expect("track");
        nodes.push(node);
    }
    let mut figures = reached(&mesh, &nodes, text, started).await;
    figures.requests -= before.0;
    figures.wire_bytes -= before.1;
    stop(&mesh, nodes).await;
    figures
}

/// Waits until every node holds `text`; the time since `started` and the mesh's counters.
async fn reached(mesh: &Arc<Mesh>, nodes: &[Node], text: &str, started: Instant) -> Figures {
    for node in nodes {
        eventually(
            Duration::from_secs(300),
            "the document reaches every node",
            async || node.text(&doc()).await == text,
        )
        .await;
    }
    Figures {
        elapsed: started.elapsed(),
        commits: nodes[0].docs.stats().commits,
        receivers: nodes.len() - 1,
        requests: mesh.requests(),
        wire_bytes: mesh.bytes(),
    }
}

async fn stop(mesh: &Mesh, nodes: Vec<Node>) {
    for node in nodes {
        node.stop(mesh).await;
    }
}
