//! Direct messages between two in-process nodes over the real PQ QUIC transport, with the
//! receiver's store a real redb file: what a sender is told matches what the receiver holds.

use std::time::Duration;

use bytes::Bytes;
use pqnode_crypto::Identity;
use pqnode_messaging::{MAX_TEXT_LEN, MESSAGE, MessageLog, Messenger, SendError};
use pqnode_net::{FailureCode, NetConfig, Network, RequestError};
use pqnode_store::Store;
use tempfile::TempDir;

struct TestNode {
    network: Network,
    messenger: Messenger,
    store: Store,
    _dir: TempDir,
}

impl TestNode {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("pqnode.redb")).await.unwrap();
        let config = NetConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..NetConfig::default()
        };
        let network = Network::start(&Identity::generate().unwrap(), config)
            .await
            .unwrap();
        let messenger = Messenger::start(network.clone(), MessageLog::new(store.clone())).unwrap();
        Self {
            network,
            messenger,
            store,
            _dir: dir,
        }
    }

    fn knows(&self, other: &TestNode) {
        self.network
            .add_address(other.network.node_id(), other.network.local_addr().unwrap());
    }
}

#[tokio::test]
async fn a_delivered_message_is_in_the_receivers_log() {
    let (a, b) = (TestNode::start().await, TestNode::start().await);
    a.knows(&b);
    let delivered = a
        .messenger
        .send(b.network.node_id(), "hello over ML-KEM-1024")
        .await
        .unwrap();
    let page = b.messenger.log().page(10, None).await.unwrap();
    assert_eq!(page.total, 1);
    let stored = &page.messages[0];
    assert_eq!(
        stored.from,
        a.network.node_id(),
        "the sender is the TLS-proven peer"
    );
    assert_eq!(stored.body, "hello over ML-KEM-1024");
    assert_eq!(stored.received_at, delivered.received_at_unix_ms);
    assert_eq!(b.messenger.stats().received, 1);
    assert_eq!(a.messenger.stats().sent, 1);
}

#[tokio::test]
async fn concurrent_senders_share_commits_and_every_ack_is_stored() {
    let b = TestNode::start().await;
    let senders: Vec<TestNode> = start_nodes(4).await;
    let mut tasks = Vec::new();
    for sender in &senders {
        sender.knows(&b);
        for i in 0..25 {
            let messenger = sender.messenger.clone();
            let to = b.network.node_id();
            tasks.push(tokio::spawn(async move {
                messenger.send(to, &format!("message {i}")).await
            }));
        }
    }
    let mut acked = 0;
    for task in tasks {
        task.await.unwrap().unwrap();
        acked += 1;
    }
    assert_eq!(acked, 100);
    assert_eq!(b.messenger.log().page(1, None).await.unwrap().total, 100);
    let stats = b.store.stats().await;
    assert!(
        stats.commits < 100,
        "100 concurrent messages took {} commits: no grouping",
        stats.commits
    );
}

async fn start_nodes(n: usize) -> Vec<TestNode> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(TestNode::start().await);
    }
    nodes
}

#[tokio::test]
async fn a_receiver_that_cannot_store_answers_unavailable_and_keeps_nothing() {
    let (a, b) = (TestNode::start().await, TestNode::start().await);
    a.knows(&b);
    a.messenger
        .send(b.network.node_id(), "before")
        .await
        .unwrap();
    b.store.close().await.unwrap();
    let err = a
        .messenger
        .send(b.network.node_id(), "after the store closed")
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert_eq!(b.messenger.stats().refused_store_unavailable, 1);
    assert_eq!(a.messenger.stats().send_failed, 1);
}

#[tokio::test]
async fn malformed_messages_are_refused_and_the_connection_survives() {
    let (a, b) = (TestNode::start().await, TestNode::start().await);
    a.knows(&b);
    let to = b.network.node_id();
    for garbage in [
        Bytes::from_static(&[0xff, 0xff, 0xff]),
        // Field 1 (text) holding bytes that are not UTF-8.
        Bytes::from_static(&[0x0a, 0x02, 0xc3, 0x28]),
    ] {
        let err = a.network.request(to, MESSAGE, garbage).await.unwrap_err();
        assert!(
            matches!(
                err,
                RequestError::Remote {
                    code: FailureCode::BadRequest,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    assert_eq!(b.messenger.stats().refused_malformed, 2);
    a.messenger.send(to, "still talking").await.unwrap();
    assert_eq!(b.messenger.log().page(10, None).await.unwrap().total, 1);
}

#[tokio::test]
async fn local_mistakes_fail_before_anything_is_sent() {
    let (a, b) = (TestNode::start().await, TestNode::start().await);
    a.knows(&b);
    let long = "x".repeat(MAX_TEXT_LEN + 1);
    assert!(matches!(
        a.messenger.send(b.network.node_id(), &long).await,
        Err(SendError::TooLarge { .. })
    ));
    assert!(matches!(
        a.messenger.send(a.network.node_id(), "me").await,
        Err(SendError::ToSelf)
    ));
    let at_cap = "y".repeat(MAX_TEXT_LEN);
    a.messenger
        .send(b.network.node_id(), &at_cap)
        .await
        .unwrap();
    assert_eq!(a.network.stats().handshakes_ok, 1);
}

#[tokio::test]
async fn pages_walk_the_log_newest_first_without_gaps() {
    let (a, b) = (TestNode::start().await, TestNode::start().await);
    a.knows(&b);
    for i in 0..7 {
        a.messenger
            .send(b.network.node_id(), &format!("m{i}"))
            .await
            .unwrap();
        // Distinct arrival milliseconds, so the order is the sending order.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let log = b.messenger.log();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = log.page(3, before.as_deref()).await.unwrap();
        assert_eq!(page.total, 7);
        seen.extend(page.messages.iter().map(|m| m.body.clone()));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected);
}
