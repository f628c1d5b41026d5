//! The core's timers run under the driver: unreachable seeds are retried (with backoff, then
//! on refresh), quiet entries pinged.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestNode, overlay_config};
use pqnode_crypto::Identity;
use pqnode_health::Status;
use pqnode_net::PeerAddr;
use pqnode_overlay::{OverlayConfig, OverlayError};
use pqnode_testkit::settles;

/// A refresh timer short enough to fire within a test.
fn quick_refresh(identity: Arc<Identity>, seeds: Vec<PeerAddr>) -> OverlayConfig {
    let mut config = overlay_config(identity, seeds);
    config.dht.refresh_interval = Duration::from_millis(300);
    config
}

/// Liveness pings within a test; the refresh stays slow, since its lookups would keep every
/// entry fresh and no ping would be needed.
fn quick_pings(identity: Arc<Identity>, seeds: Vec<PeerAddr>) -> OverlayConfig {
    let mut config = overlay_config(identity, seeds);
    config.dht.ping_interval = Duration::from_millis(200);
    config.dht.table.questionable_after = Duration::from_millis(300);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_seed_is_a_warning_and_is_retried_until_it_answers() {
    // A port with nobody behind it (yet).
    let free = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let seed_addr = free.local_addr().expect("addr");
    drop(free);

    let identity = Arc::new(Identity::generate().expect("keygen"));
    let config = quick_refresh(identity, vec![PeerAddr::new(None, seed_addr)]);
    let lonely = TestNode::start_configured(common::any_port(), None, config).await;
    // The first bootstrap fails: the node keeps running, and says so.
    let warned = settles(Duration::from_secs(5), || async {
        let stats = lonely.overlay.stats().await.expect("stats");
        stats.counters.lookups_finished >= 1 && stats.total_nodes == 0
    })
    .await;
    assert!(warned);
    assert_eq!(lonely.overlay.health().status, Status::Warn);
    assert_eq!(
        lonely.overlay.stats().await.expect("stats").bootstrap_nodes,
        1
    );

    // The seed comes up; the refresh timer bootstraps again and finds it.
    let seed = TestNode::start_with(
        Arc::new(Identity::generate().expect("keygen")),
        seed_addr,
        None,
        Vec::new(),
    )
    .await;
    let joined = settles(Duration::from_secs(15), || async {
        let nodes = lonely.overlay.nodes().await.expect("nodes");
        nodes.iter().any(|n| n.id == seed.id())
    })
    .await;
    assert!(joined, "the refresh never reached the seed");
    assert_eq!(lonely.overlay.health().status, Status::Pass);

    common::stop_all([lonely, seed]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_comes_up_after_us_is_reached_within_seconds_not_at_the_next_refresh() {
    let free = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let seed_addr = free.local_addr().expect("addr");
    drop(free);
    let seed_identity = Arc::new(Identity::generate().expect("keygen"));
    let pinned = PeerAddr::new(Some(seed_identity.node_id()), seed_addr);

    // The production refresh interval (60 s): only the backoff retries can find the seed.
    let config = overlay_config(
        Arc::new(Identity::generate().expect("keygen")),
        vec![pinned],
    );
    assert_eq!(config.dht.refresh_interval, Duration::from_secs(60));
    let started = tokio::time::Instant::now();
    let dialer = TestNode::start_configured(common::any_port(), None, config).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seed = TestNode::start_with(seed_identity, seed_addr, None, Vec::new()).await;
    let joined = settles(Duration::from_secs(10), || async {
        let nodes = dialer.overlay.nodes().await.expect("nodes");
        nodes.iter().any(|n| n.id == seed.id())
    })
    .await;
    let elapsed = started.elapsed();
    let stats = dialer.overlay.stats().await.expect("stats");
    eprintln!(
        "seed up after 3 s, in the dialer's table after {elapsed:?} ({} lookups)",
        stats.counters.lookups_started
    );
    assert!(joined, "not in the table after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(12), "{elapsed:?}");

    common::stop_all([dialer, seed]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_entries_are_pinged_and_stay_good() {
    let first = TestNode::start_configured(
        common::any_port(),
        None,
        quick_pings(Arc::new(Identity::generate().expect("keygen")), Vec::new()),
    )
    .await;
    let second = TestNode::start_configured(
        common::any_port(),
        None,
        quick_pings(
            Arc::new(Identity::generate().expect("keygen")),
            vec![first.pinned()],
        ),
    )
    .await;
    // Each node's pings keep the other fresh in the pinged node's table too (a request counts
    // as a sign of life), so which of the two pings is up to the timers' jitter: count both.
    // The first also sent one ping to verify the second when it joined.
    let pinged = settles(Duration::from_secs(10), || async {
        let mut sent = 0;
        let mut both_good = true;
        for node in [&first, &second] {
            let stats = node.overlay.stats().await.expect("stats");
            both_good &= stats.total_nodes == 1 && stats.good_nodes + stats.questionable_nodes == 1;
            sent += stats.counters.requests_sent.ping;
        }
        both_good && sent >= 4
    })
    .await;
    assert!(pinged, "no liveness pings went out");
    for node in [&first, &second] {
        let stats = node.overlay.stats().await.expect("stats");
        assert_eq!((stats.total_nodes, stats.bad_nodes), (1, 0));
    }

    common::stop_all([first, second]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_calls_fail_and_health_fails() {
    let node = TestNode::start(Vec::new()).await;
    let target = node.id();
    node.overlay.shutdown().await;
    // A second shutdown is harmless.
    node.overlay.shutdown().await;
    assert!(matches!(
        node.overlay.lookup(target).await,
        Err(OverlayError::Stopped)
    ));
    assert!(matches!(
        node.overlay.stats().await,
        Err(OverlayError::Stopped)
    ));
    assert_eq!(node.overlay.health().status, Status::Fail);
    node.network.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlay_refuses_an_identity_that_is_not_the_networks() {
    let node = TestNode::start(Vec::new()).await;
    let stranger = Arc::new(Identity::generate().expect("keygen"));
    let refused = pqnode_overlay::Overlay::start(
        node.network.clone(),
        None,
        overlay_config(stranger, Vec::new()),
    )
    .await;
    assert!(matches!(
        refused,
        Err(OverlayError::IdentityMismatch { .. })
    ));
    node.stop().await;
}
