//! Signed records and provider entries across a real loopback network.

mod common;

use std::time::Duration;

use common::network_of;
use pqnode_overlay::record_key;
use tokio::task::JoinSet;

const TTL: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_read_everywhere_and_survives_a_third_of_the_nodes_leaving() {
    let mut nodes = network_of(30).await;
    let publisher = 7;
    let put = nodes[publisher]
        .overlay
        .publish(b"greeting", b"hello from node 7", TTL)
        .await
        .expect("publish");
    assert_eq!(put.key, record_key(&nodes[publisher].id(), b"greeting"));
    assert!(put.stored >= 10, "only {} nodes stored it", put.stored);

    let read_everywhere = |nodes: &[common::TestNode]| {
        let mut reads = JoinSet::new();
        for node in nodes {
            let overlay = node.overlay.clone();
            reads.spawn(async move { overlay.get_record(put.key).await });
        }
        reads
    };
    let mut reads = read_everywhere(&nodes);
    while let Some(read) = reads.join_next().await {
        let record = read
            .expect("task")
            .expect("get runs")
            .expect("record found");
        assert_eq!(record.value(), b"hello from node 7");
        record.verify().expect("signature verifies");
    }

    // A third of the nodes leave, the publisher among them.
    let leaving: Vec<_> = (0..nodes.len()).filter(|i| i % 3 == 1).collect();
    assert!(leaving.contains(&publisher));
    let gone: Vec<_> = leaving
        .into_iter()
        .rev()
        .map(|i| nodes.swap_remove(i))
        .collect();
    common::stop_all(gone).await;
    assert_eq!(nodes.len(), 20);
    let mut reads = read_everywhere(&nodes);
    while let Some(read) = reads.join_next().await {
        let record = read
            .expect("task")
            .expect("get runs")
            .expect("record still found");
        assert_eq!(record.value(), b"hello from node 7");
    }
    common::stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_publication_replaces_the_older_one() {
    let nodes = network_of(8).await;
    let first = nodes[1]
        .overlay
        .publish(b"status", b"one", TTL)
        .await
        .expect("publish");
    let second = nodes[1]
        .overlay
        .publish(b"status", b"two", TTL)
        .await
        .expect("publish");
    assert_eq!(first.key, second.key);
    for node in &nodes {
        let record = node
            .overlay
            .get_record(first.key)
            .await
            .expect("get")
            .expect("found");
        assert_eq!(record.value(), b"two");
    }
    assert!(
        nodes[1]
            .overlay
            .unpublish(first.key)
            .await
            .expect("unpublish")
    );
    assert!(
        !nodes[1]
            .overlay
            .unpublish(first.key)
            .await
            .expect("unpublish")
    );
    let missing = record_key(&nodes[2].id(), b"never published");
    assert_eq!(
        nodes[3].overlay.get_record(missing).await.expect("get"),
        None
    );
    common::stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_entries_from_several_nodes_are_collected() {
    let nodes = network_of(10).await;
    let topic = record_key(&nodes[0].id(), b"topic/chat");
    for (i, node) in nodes.iter().enumerate().take(4) {
        let value = format!("member {i}");
        let put = node
            .overlay
            .add_provider(topic, value.as_bytes(), TTL)
            .await
            .expect("add");
        assert!(put.stored >= 1);
    }
    let providers = nodes[9]
        .overlay
        .get_providers(topic)
        .await
        .expect("get providers");
    let mut publishers: Vec<_> = providers.iter().map(|p| p.publisher_id()).collect();
    publishers.sort_unstable();
    let mut expected: Vec<_> = nodes.iter().take(4).map(|n| n.id()).collect();
    expected.sort_unstable();
    assert_eq!(publishers, expected);
    for p in &providers {
        p.verify().expect("signature verifies");
    }
    common::stop_all(nodes).await;
}
