//! Durable acknowledgements: how many messages per second one node can take when every
//! acknowledgement waits for the commit to disk, and what group commit buys.
//!
//! Two in-process nodes on 127.0.0.1 over the real PQ QUIC transport; the receiver's store is
//! a real redb file in a temporary folder, so every commit is a real `fsync`. For 1, 10 and 100
//! concurrent senders it prints acknowledged messages per second and the latency of one send
//! (p50, p99), against the anchor measured in the same run: the same store committing every
//! write on its own (`max_group: 1`).
//!
//! `cargo bench -p pqnode-messaging --bench durable_acks` (set `PQNODE_BENCH_DIR` to measure
//! on another disk than the temporary folder's).

use std::time::{Duration, Instant};

use pqnode_crypto::Identity;
use pqnode_messaging::{MessageLog, Messenger};
use pqnode_net::{NetConfig, Network};
use pqnode_store::{Store, StoreOptions};

/// Messages per run, spread over the senders.
const MESSAGES: usize = 2000;
const SENDERS: [usize; 3] = [1, 10, 100];
const TEXT: &str = "a durable message of about sixty-four bytes, acked after fsync";

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

#[tokio::main]
async fn main() {
    let base = std::env::var_os("PQNODE_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = match &base {
        Some(base) => tempfile::tempdir_in(base),
        None => tempfile::tempdir(),
    }
    .expect("temporary folder");
    println!(
        "## Durable acknowledgements ({MESSAGES} messages of {} B per run, store in {})",
        TEXT.len(),
        dir.path().display()
    );
    println!(
        "| senders | grouped acks/s | p50 ms | p99 ms | one fsync each: acks/s | p50 ms | p99 ms | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (run, senders) in SENDERS.into_iter().enumerate() {
        let grouped = measure(&dir.path().join(format!("g{run}.redb")), 256, senders).await;
        let single = measure(&dir.path().join(format!("s{run}.redb")), 1, senders).await;
        println!(
            "| {senders} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1}x |",
            grouped.per_second,
            ms(grouped.p50),
            ms(grouped.p99),
            single.per_second,
            ms(single.p50),
            ms(single.p99),
            grouped.per_second / single.per_second
        );
    }
}

async fn measure(path: &std::path::Path, max_group: usize, senders: usize) -> Figures {
    let store = Store::open_with(
        path,
        StoreOptions {
            max_group,
            ..StoreOptions::default()
        },
    )
    .await
    .expect("store");
    let receiver = start_node().await;
    let sender = start_node().await;
    let log = MessageLog::new(store.clone());
    let _receiving = Messenger::start(receiver.clone(), log.clone()).expect("register");
    let sending = Messenger::start(sender.clone(), MessageLog::new(scratch_store(path).await))
        .expect("register");
    sender.add_address(receiver.node_id(), receiver.local_addr().expect("addr"));
    let to = receiver.node_id();
    for _ in 0..20 {
        sending.send(to, "warm-up").await.expect("warm-up");
    }

    let per_sender = MESSAGES / senders;
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let sending = sending.clone();
            tokio::spawn(async move {
                let mut times = Vec::with_capacity(per_sender);
                for _ in 0..per_sender {
                    let sent = Instant::now();
                    sending.send(to, TEXT).await.expect("delivered");
                    times.push(sent.elapsed());
                }
                times
            })
        })
        .collect();
    let mut times = Vec::with_capacity(MESSAGES);
    for task in tasks {
        times.extend(task.await.expect("sender"));
    }
    let elapsed = started.elapsed();
    times.sort();
    let acked = times.len();
    let page = log.page(1, None).await.expect("read back");
    assert_eq!(page.total, (acked + 20) as u64, "every ack is in the store");

    sender.shutdown().await;
    receiver.shutdown().await;
    store.close().await.expect("close");
    Figures {
        per_second: acked as f64 / elapsed.as_secs_f64(),
        p50: times[acked / 2],
        p99: times[(acked * 99 / 100).min(acked - 1)],
    }
}

async fn start_node() -> Network {
    let config = NetConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        ..NetConfig::default()
    };
    Network::start(&Identity::generate().expect("identity"), config)
        .await
        .expect("network")
}

/// The sender needs a log of its own; it receives nothing.
async fn scratch_store(path: &std::path::Path) -> Store {
    Store::open(path.with_extension("sender.redb"))
        .await
        .expect("sender store")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
