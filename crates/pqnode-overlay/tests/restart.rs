//! A node that restarts with the same identity and store rejoins without its seeds.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{TestNode, network_of};
use pqnode_crypto::Identity;
use pqnode_store::Store;
use pqnode_testkit::settles;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_reloads_its_table_and_rejoins_without_bootstrap_nodes() {
    let mut others = network_of(12).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.redb");
    let identity = Arc::new(Identity::generate().expect("keygen"));

    let store = Store::open(&path).await.expect("store opens");
    let node = TestNode::start_with(
        identity.clone(),
        common::any_port(),
        Some(store.clone()),
        vec![others[0].pinned()],
    )
    .await;
    let addr = node.addr;
    // It joined through its seed in the background.
    let joined = settles(Duration::from_secs(10), || async {
        node.overlay
            .stats()
            .await
            .map(|s| s.total_nodes >= 10)
            .unwrap_or(false)
    })
    .await;
    assert!(joined, "the node never filled its table");
    node.stop().await;
    store.close().await.expect("store closes");
    let released = settles(Duration::from_secs(10), || async {
        std::net::UdpSocket::bind(addr).is_ok()
    })
    .await;
    assert!(released, "the old endpoint still holds {addr}");

    // Its seeds are gone too: only the saved table can bring it back.
    others.swap_remove(1).stop().await;
    others.swap_remove(0).stop().await;

    let store = Store::open(&path).await.expect("store reopens");
    let node = TestNode::start_with(identity.clone(), addr, Some(store.clone()), Vec::new()).await;
    let stats = node.overlay.stats().await.expect("stats");
    assert!(
        stats.total_nodes >= 9,
        "restored {} entries",
        stats.total_nodes
    );
    assert_eq!(stats.bootstrap_nodes, 0);

    // Both ways: it finds everyone, and everyone finds it at its address. The two stopped
    // seeds are still in the tables and cost each lookup one request timeout.
    let mut lookups = tokio::task::JoinSet::new();
    for other in &others {
        let (mine, theirs) = (node.overlay.clone(), other.overlay.clone());
        let (other_id, node_id) = (other.id(), node.id());
        lookups.spawn(async move {
            let found = mine.lookup(other_id).await.expect("lookup");
            assert_eq!(found.closest.first().map(|c| c.id), Some(other_id));
            let seen = theirs.lookup(node_id).await.expect("lookup");
            assert_eq!(
                seen.closest.first().map(|c| (c.id, c.addr)),
                Some((node_id, addr))
            );
        });
    }
    while let Some(done) = lookups.join_next().await {
        done.expect("lookups agree");
    }
    assert_eq!(node.overlay.health().status, pqnode_health::Status::Pass);

    node.stop().await;
    store.close().await.expect("store closes");
    common::stop_all(others).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_held_for_others_survive_a_restart() {
    let others = network_of(4).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("holder.redb");
    let identity = Arc::new(Identity::generate().expect("keygen"));
    let store = Store::open(&path).await.expect("store opens");
    let holder = TestNode::start_with(
        identity.clone(),
        common::any_port(),
        Some(store.clone()),
        vec![others[0].pinned()],
    )
    .await;
    holder
        .overlay
        .bootstrap(&[others[0].pinned()])
        .await
        .expect("joins");

    // Five nodes and K = 20: every node stores every record.
    let record = others[2]
        .overlay
        .publish(b"kept", b"across restarts", Duration::from_secs(3600))
        .await
        .expect("publish");
    let topic = pqnode_overlay::record_key(&others[3].id(), b"topic");
    others[3]
        .overlay
        .add_provider(topic, b"here", Duration::from_secs(3600))
        .await
        .expect("provide");
    let held = holder.overlay.stats().await.expect("stats");
    assert_eq!((held.records_stored, held.providers_stored), (1, 1));
    // STORED was answered after the commit: both are on the holder's disk already, before
    // any periodic save or shutdown.
    let on_disk = store
        .scan_records(std::time::SystemTime::now())
        .await
        .expect("scan");
    assert_eq!(on_disk.len(), 2, "held items on disk: {}", on_disk.len());

    holder.stop().await;
    store.close().await.expect("store closes");
    common::stop_all(others).await;

    // Alone now: whatever it serves comes from its own store.
    let store = Store::open(&path).await.expect("store reopens");
    let holder = TestNode::start_with(
        identity,
        common::any_port(),
        Some(store.clone()),
        Vec::new(),
    )
    .await;
    let stats = holder.overlay.stats().await.expect("stats");
    assert_eq!((stats.records_stored, stats.providers_stored), (1, 1));
    let found = holder.overlay.get_record(record.key).await.expect("get");
    assert_eq!(
        found.map(|r| r.value().to_vec()),
        Some(b"across restarts".to_vec())
    );

    holder.stop().await;
    store.close().await.expect("store closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_is_saved_periodically_not_only_at_shutdown() {
    let others = network_of(3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("node.redb"))
        .await
        .expect("store opens");
    let identity = Arc::new(Identity::generate().expect("keygen"));
    let mut config = common::overlay_config(identity, vec![others[0].pinned()]);
    config.save_interval = Duration::from_millis(100);
    let node = TestNode::start_configured(common::any_port(), Some(store.clone()), config).await;

    let saved = settles(Duration::from_secs(10), || async {
        let routing = store
            .scan(pqnode_store::Table::Routing)
            .await
            .expect("scan");
        // The node's contacts, not just an empty table written at start.
        let contacts = routing
            .iter()
            .filter_map(|(_, table)| pqnode_dht::codec::decode_table(table).ok())
            .map(|contacts| contacts.len())
            .sum::<usize>();
        contacts >= 2
    })
    .await;
    assert!(saved, "nothing was saved while the node ran");

    node.stop().await;
    store.close().await.expect("store closes");
    common::stop_all(others).await;
}

/// Where each of `nodes` lists `id` in its routing table (`None`: not listed).
async fn listed_at(nodes: &[TestNode], id: pqnode_crypto::NodeId) -> Vec<Option<SocketAddr>> {
    let mut listed = Vec::new();
    for node in nodes {
        let entries = node.overlay.nodes().await.expect("nodes");
        listed.push(entries.iter().find(|e| e.id == id).map(|e| e.addr));
    }
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_on_a_new_port_is_listed_at_its_new_address_once_it_talks() {
    let others = network_of(5).await;
    let identity = Arc::new(Identity::generate().expect("keygen"));
    let seeds: Vec<_> = others.iter().map(TestNode::pinned).collect();
    let node = TestNode::start_with(identity.clone(), common::any_port(), None, Vec::new()).await;
    node.overlay.bootstrap(&seeds).await.expect("joins");
    let old_addr = node.addr;
    // Each node it asked pinged it back and took it in.
    let everyone_knows = settles(Duration::from_secs(10), || async {
        listed_at(&others, node.id()).await == vec![Some(old_addr); others.len()]
    })
    .await;
    assert!(everyone_knows, "{:?}", listed_at(&others, node.id()).await);
    node.stop().await;

    // Same identity, new port, nothing saved: it learns of the others only from its seeds.
    let node = TestNode::start_with(identity, common::any_port(), None, Vec::new()).await;
    assert_ne!(node.addr, old_addr, "the OS gave the same port twice");
    node.overlay.bootstrap(&seeds).await.expect("rejoins");
    // Every node it asked was told by the transport where the request came from.
    let moved = settles(Duration::from_secs(10), || async {
        listed_at(&others, node.id()).await == vec![Some(node.addr); others.len()]
    })
    .await;
    assert!(moved, "{:?}", listed_at(&others, node.id()).await);
    // And a lookup from anyone finds it there.
    let seen = others[0].overlay.lookup(node.id()).await.expect("lookup");
    assert_eq!(
        seen.closest.first().map(|c| (c.id, c.addr)),
        Some((node.id(), node.addr))
    );

    node.stop().await;
    common::stop_all(others).await;
}
