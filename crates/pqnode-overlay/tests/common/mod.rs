//! A loopback network of real nodes: each its own identity, QUIC endpoint and overlay.
#![allow(dead_code)] // Each test binary uses a different part.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use pqnode_crypto::{Identity, NodeId};
use pqnode_net::{Limits, NetConfig, Network, PeerAddr};
use pqnode_overlay::{Overlay, OverlayConfig};
use pqnode_store::Store;

/// Every node shares 127.0.0.1, so the transport's per-IP caps must be lifted, and a dead
/// peer should cost a test a second, not the production 5-10 s.
pub(crate) fn net_config(listen: SocketAddr) -> NetConfig {
    NetConfig {
        listen,
        limits: Limits {
            max_connections: 4096,
            max_half_open: 1024,
            max_per_ip: 4096,
            handshake_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            shutdown_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        peers: Vec::new(),
    }
}

pub(crate) fn overlay_config(identity: Arc<Identity>, seeds: Vec<PeerAddr>) -> OverlayConfig {
    let mut config = OverlayConfig::new(identity).with_seeds(seeds);
    // All nodes are on one /24: the Sybil limit would keep all but two out of each bucket.
    config.dht.table.max_per_subnet = None;
    config.dht.request_timeout = Duration::from_secs(1);
    config
}

pub(crate) fn any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

pub(crate) struct TestNode {
    pub(crate) identity: Arc<Identity>,
    pub(crate) network: Network,
    pub(crate) overlay: Overlay,
    pub(crate) addr: SocketAddr,
}

impl TestNode {
    pub(crate) async fn start(seeds: Vec<PeerAddr>) -> Self {
        let identity = Arc::new(Identity::generate().expect("keygen"));
        Self::start_with(identity, any_port(), None, seeds).await
    }

    pub(crate) async fn start_with(
        identity: Arc<Identity>,
        listen: SocketAddr,
        store: Option<Store>,
        seeds: Vec<PeerAddr>,
    ) -> Self {
        let config = overlay_config(identity.clone(), seeds);
        Self::start_configured(listen, store, config).await
    }

    pub(crate) async fn start_configured(
        listen: SocketAddr,
        store: Option<Store>,
        config: OverlayConfig,
    ) -> Self {
        let identity = config.identity.clone();
        let network = Network::start(&identity, net_config(listen))
            .await
            .expect("network starts");
        let addr = network.local_addr().expect("bound");
        let overlay = Overlay::start(network.clone(), store, config)
            .await
            .expect("overlay starts");
        Self {
            identity,
            network,
            overlay,
            addr,
        }
    }

    pub(crate) fn id(&self) -> NodeId {
        self.identity.node_id()
    }

    pub(crate) fn pinned(&self) -> PeerAddr {
        PeerAddr::new(Some(self.id()), self.addr)
    }

    pub(crate) fn unpinned(&self) -> PeerAddr {
        PeerAddr::new(None, self.addr)
    }

    pub(crate) async fn stop(self) {
        self.overlay.shutdown().await;
        self.network.shutdown().await;
    }
}

/// Two seeds and `n - 2` nodes that join through them, half naming a seed by id and address,
/// half by address only. Each node has bootstrapped when this returns.
pub(crate) async fn network_of(n: usize) -> Vec<TestNode> {
    let first = TestNode::start(Vec::new()).await;
    let second = TestNode::start(vec![first.pinned()]).await;
    second
        .overlay
        .bootstrap(&[first.pinned()])
        .await
        .expect("second seed joins");
    let seeds = [first.pinned(), second.unpinned()];
    let mut nodes = vec![first, second];
    for i in 2..n {
        let seed = seeds[i % 2].clone();
        let node = TestNode::start(Vec::new()).await;
        let joined = node
            .overlay
            .bootstrap(&[seed])
            .await
            .expect("bootstrap runs");
        assert!(!joined.closest.is_empty(), "node {i} reached nobody");
        nodes.push(node);
    }
    nodes
}

/// Stops every node at once (each shutdown waits a moment for its peers to acknowledge).
pub(crate) async fn stop_all(nodes: impl IntoIterator<Item = TestNode>) {
    let mut stopping = tokio::task::JoinSet::new();
    for node in nodes {
        stopping.spawn(node.stop());
    }
    while stopping.join_next().await.is_some() {}
}
