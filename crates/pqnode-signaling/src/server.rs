//! [`SignalingServer`]: the handle the node holds, and what the server shares between its
//! connections: the session registry, the [`Router`] (federation), counters, shutdown.
//!
//! What it is for: constructing the server, and its outward face (stats, health, shutdown,
//! the two entry points other nodes reach it through). What it is not: routing (the
//! [`Router`] owns that state and its operations), the client protocol
//! ([`crate::session`]) or sockets ([`crate::connection`]).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use pqnode_crypto::NodeId;
use pqnode_health::Health;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SignalingConfig;
use crate::federation::{
    DeliveryOutcome, Directory, Forwarder, LocalOnly, RelayEnvelope, Withdrawal,
};
use crate::registry::{PeerSummary, Registry, SharedRegistry};
use crate::routing::{EnvelopeError, Router};
use crate::stats::{Counters, SignalingStats};

/// The WebSocket signaling server. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct SignalingServer {
    pub(crate) inner: Arc<Inner>,
}

/// What every connection of one server shares.
pub(crate) struct Inner {
    pub node_id: NodeId,
    pub config: SignalingConfig,
    /// Who is connected here. The router reads it; sessions change it.
    pub registry: SharedRegistry,
    /// Where peers elsewhere are, and how ours are announced.
    pub router: Arc<Router>,
    pub counters: Counters,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    next_session: AtomicU64,
}

impl std::fmt::Debug for SignalingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingServer")
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

impl SignalingServer {
    /// A standalone server: peers on other nodes are never found.
    pub fn new(node_id: NodeId, config: SignalingConfig) -> Self {
        Self::with_federation(node_id, config, Arc::new(LocalOnly), Arc::new(LocalOnly))
    }

    /// A server that publishes presence to `directory` and reaches other
    /// nodes through `forwarder`.
    pub fn with_federation(
        node_id: NodeId,
        config: SignalingConfig,
        directory: Arc<dyn Directory>,
        forwarder: Arc<dyn Forwarder>,
    ) -> Self {
        let router = Router::new(node_id, &config, directory, forwarder);
        Self {
            inner: Arc::new(Inner {
                node_id,
                config,
                registry: SharedRegistry::default(),
                router: Arc::new(router),
                counters: Counters::default(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                next_session: AtomicU64::new(1),
            }),
        }
    }

    /// The node this server runs on: what its peers' registrations must name.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The settings it was started with.
    pub fn config(&self) -> &SignalingConfig {
        &self.inner.config
    }

    /// Current figures; cheap enough to call per HTTP request.
    pub fn stats(&self) -> SignalingStats {
        let (connections, connected_peers) = {
            let registry = self.inner.registry();
            (registry.connections(), registry.peer_count())
        };
        let counters = &self.inner.counters;
        let routed = self.inner.router.counters();
        let remote = self.inner.router.remote_peers();
        SignalingStats {
            connections,
            peers: connected_peers.saturating_add(remote),
            connected_peers,
            messages_relayed: routed.relayed_local.load(Ordering::Relaxed),
            messages_forwarded: routed.forwarded.load(Ordering::Relaxed),
            messages_from_remote: routed.delivered_from_remote.load(Ordering::Relaxed),
            rate_limited: counters.rate_limited.load(Ordering::Relaxed),
            lookups_throttled: routed.lookups_throttled.load(Ordering::Relaxed),
            bad_proofs: routed.bad_proofs.load(Ordering::Relaxed),
            errors: counters.errors(),
        }
    }

    /// The peers registered on this node, with their topics.
    pub fn local_peers(&self) -> Vec<PeerSummary> {
        self.inner.registry().summaries()
    }

    /// Pass while serving; warn near the connection cap or while stopping.
    pub fn health(&self) -> Health {
        if self.inner.shutdown.is_cancelled() {
            return Health::warn("shutting down");
        }
        if !self.inner.router.directory_answering() {
            return Health::warn("the directory (DHT) is not answering: presence may be stale");
        }
        let connections = self.inner.registry().connections();
        let cap = self.inner.config.max_connections;
        if connections.saturating_mul(10) >= cap.saturating_mul(9) {
            return Health::warn(format!("{connections} of {cap} connections in use"));
        }
        Health::pass()
    }

    /// Tells every client `shutdown`, closes them with 1001, withdraws their
    /// presence and waits for all of it, at most `deadline`. Returns whether
    /// everything finished in time. New connections are refused from now on.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        let done = tokio::time::timeout(deadline, self.inner.tasks.wait())
            .await
            .is_ok();
        if !done {
            tracing::warn!(
                remaining = self.inner.tasks.len(),
                "signaling shutdown deadline passed"
            );
        }
        done
    }

    /// Entry point for relay messages from other nodes (the QUIC handler
    /// calls this). Checks the sender's proof, delivers to the local
    /// addressee, drops repeats, and remembers that `from` is on `origin` so
    /// replies need no lookup.
    pub fn deliver_remote(
        &self,
        envelope: RelayEnvelope,
    ) -> Result<DeliveryOutcome, EnvelopeError> {
        self.inner
            .router
            .deliver_remote(&self.inner.registry, envelope)
    }

    /// `node` (as the transport authenticated it) says that a peer it served left it. Ends
    /// this node's route to the peer if the route goes through `node` and rests on that
    /// registration or an older one; a newer registration, or one elsewhere, is kept.
    /// Returns whether a route ended.
    pub fn withdrawn(&self, node: NodeId, withdrawal: Withdrawal) -> bool {
        self.inner.router.withdrawn(node, withdrawal)
    }
}

impl Inner {
    /// The session registry, locked (see [`SharedRegistry::lock`]).
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock()
    }

    pub(crate) fn next_session(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn admit(&self, ip: Option<IpAddr>) -> bool {
        self.registry().admit(ip, &self.config, Instant::now())
    }

    pub(crate) fn release(&self, ip: Option<IpAddr>) {
        self.registry().release(ip);
    }
}
