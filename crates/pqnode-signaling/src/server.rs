//! The signaling server: shared state, routing of relay messages, the
//! federation entry point, stats, health and shutdown.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use moka::sync::Cache;
use pqnode_crypto::NodeId;
use pqnode_health::Health;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{MAX_SID_LEN, SignalingConfig};
use crate::federation::{
    BoxFuture, DeliveryOutcome, Directory, FederationError, Forwarder, LocalOnly, MessageId,
    RelayEnvelope, Withdrawal,
};
use crate::presence::ProofError;
use crate::registry::{PeerSummary, Presence, Registry};
use crate::stats::{Counters, SignalingStats};
use pqnode_crypto::PeerId;
use pqnode_limits::{LogThrottle, TokenBucket};

/// Recently seen envelope ids; a repeat within this window is dropped.
const DEDUP_WINDOW: Duration = Duration::from_secs(120);
const DEDUP_CAPACITY: u64 = 100_000;
const ROUTE_CAPACITY: u64 = 100_000;
/// Most nodes told that one local peer left: the ones that relayed to it most recently.
const MAX_AUDIENCE: usize = 64;

/// The WebSocket signaling server. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct SignalingServer {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub node_id: NodeId,
    pub config: SignalingConfig,
    registry: Mutex<Registry>,
    pub directory: Arc<dyn Directory>,
    pub forwarder: Arc<dyn Forwarder>,
    /// Which node a remote peer proved it is attached to, so replies skip the lookup.
    pub routes: Cache<PeerId, Route>,
    /// Envelope ids delivered recently (deduplication).
    pub seen: Cache<MessageId, ()>,
    /// Presence proofs already verified, by (peer, node, registration time), with the
    /// SHA-256 of their signature: an ML-DSA-87 check per relayed message would cost more
    /// than the relay.
    pub verified: Cache<(PeerId, NodeId, u64), [u8; 32]>,
    pub counters: Counters,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    next_session: AtomicU64,
    /// Whether the last directory call succeeded.
    directory_answering: AtomicBool,
    /// Node-wide budget for directory lookups (see `routing::locate`).
    pub lookup_budget: Mutex<TokenBucket>,
    /// While the DHT is down every registration fails to publish: one line per interval.
    presence_failures: LogThrottle,
    /// For each local peer, the nodes that relayed to it (and so hold a route to it through
    /// this node): they are told at once when it leaves.
    audience: Mutex<HashMap<PeerId, VecDeque<NodeId>>>,
}

/// Where a remote peer is, and the time of the registration that proved it: a route is
/// replaced only by a proof at least as recent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub node: NodeId,
    pub ts_ms: u64,
}

/// An envelope from another node that breaks the protocol's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// `data` is over `max_message_bytes`.
    #[error("data is larger than the message limit")]
    TooLarge,
    /// `data` is not JSON: a sender must relay what its client sent, which was JSON.
    #[error("data is not valid JSON")]
    BadData,
    /// `sid` is over [`MAX_SID_LEN`](crate::MAX_SID_LEN).
    #[error("sid is longer than {MAX_SID_LEN} bytes")]
    BadSid,
    /// The sender's presence proof does not show that it is attached to the sending node.
    #[error("the sender's presence proof is invalid: {0}")]
    BadProof(#[from] ProofError),
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
        let routes = Cache::builder()
            .max_capacity(ROUTE_CAPACITY)
            .time_to_live(config.remote_route_ttl)
            .build();
        let seen = Cache::builder()
            .max_capacity(DEDUP_CAPACITY)
            .time_to_live(DEDUP_WINDOW)
            .build();
        let verified = Cache::builder()
            .max_capacity(ROUTE_CAPACITY)
            .time_to_live(config.remote_route_ttl)
            .build();
        let lookup_budget = Mutex::new(TokenBucket::new(
            config.directory_lookup_rate.per_second,
            config.directory_lookup_rate.burst,
            Instant::now(),
        ));
        Self {
            inner: Arc::new(Inner {
                node_id,
                config,
                registry: Mutex::new(Registry::default()),
                directory,
                forwarder,
                routes,
                seen,
                verified,
                counters: Counters::default(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                next_session: AtomicU64::new(1),
                lookup_budget,
                directory_answering: AtomicBool::new(true),
                presence_failures: LogThrottle::new(Duration::from_secs(10)),
                audience: Mutex::default(),
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
        // moka counts lazily; settle pending inserts and expiries first.
        self.inner.routes.run_pending_tasks();
        let remote = usize::try_from(self.inner.routes.entry_count()).unwrap_or(usize::MAX);
        SignalingStats {
            connections,
            peers: connected_peers.saturating_add(remote),
            connected_peers,
            messages_relayed: counters.relayed_local.load(Ordering::Relaxed),
            messages_forwarded: counters.forwarded.load(Ordering::Relaxed),
            messages_from_remote: counters.delivered_from_remote.load(Ordering::Relaxed),
            rate_limited: counters.rate_limited.load(Ordering::Relaxed),
            lookups_throttled: counters.lookups_throttled.load(Ordering::Relaxed),
            bad_proofs: counters.bad_proofs.load(Ordering::Relaxed),
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
        if !self.inner.directory_answering.load(Ordering::Relaxed) {
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
        self.inner.deliver_remote(envelope)
    }

    /// `node` (as the transport authenticated it) says that a peer it served left it. Ends
    /// this node's route to the peer if the route goes through `node` and rests on that
    /// registration or an older one; a newer registration, or one elsewhere, is kept.
    /// Returns whether a route ended.
    pub fn withdrawn(&self, node: NodeId, withdrawal: Withdrawal) -> bool {
        let routes = &self.inner.routes;
        let ends = routes
            .get(&withdrawal.peer)
            .is_some_and(|route| route.node == node && route.ts_ms <= withdrawal.ts_ms);
        if ends {
            routes.invalidate(&withdrawal.peer);
        }
        ends
    }
}

impl Inner {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-updated in
        // a way that matters more than refusing all service would.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    /// Runs one directory call under `federation_timeout`, and records
    /// whether the directory answered (for `health()`).
    pub(crate) async fn directory_call<T>(
        &self,
        what: &'static str,
        call: BoxFuture<'_, Result<T, FederationError>>,
    ) -> Option<T> {
        let outcome = tokio::time::timeout(self.config.federation_timeout, call).await;
        let value = match outcome {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "directory call {what} failed");
                None
            }
            Err(_) => {
                tracing::debug!("directory call {what} timed out");
                None
            }
        };
        self.directory_answering
            .store(value.is_some(), Ordering::Relaxed);
        value
    }

    /// Remembers that `node` relayed to the local peer `to`, so it hears when `to` leaves.
    pub(crate) fn note_audience(&self, to: PeerId, node: NodeId) {
        let mut audience = self
            .audience
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Most recent last: the nodes that relayed lately are the ones likely to route again.
        let nodes = audience.entry(to).or_default();
        nodes.retain(|n| *n != node);
        nodes.push_back(node);
        if nodes.len() > MAX_AUDIENCE {
            nodes.pop_front();
        }
    }

    fn take_audience(&self, peer: &PeerId) -> VecDeque<NodeId> {
        self.audience
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(peer)
            .unwrap_or_default()
    }

    /// Keeps `peer`'s presence in the directory in line with its registration and topics,
    /// refreshes it periodically, and when the peer leaves withdraws it: in the directory,
    /// and straight to the nodes that relayed to it.
    pub(crate) fn spawn_presence(
        self: &Arc<Self>,
        peer: PeerId,
        mut desired: watch::Receiver<Presence>,
    ) {
        let inner = Arc::clone(self);
        self.tasks.spawn(async move {
            let period = inner.config.presence_refresh;
            let mut refresh = tokio::time::interval_at(Instant::now() + period, period);
            refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_ts = None;
            loop {
                let Some(announce) = desired.borrow_and_update().clone() else {
                    break;
                };
                last_ts = Some(announce.proof.ts_ms);
                let published = inner
                    .directory_call(
                        "publish presence",
                        inner
                            .directory
                            .publish_presence(announce.proof, announce.topics),
                    )
                    .await;
                if published.is_none()
                    && let Some(held) = inner.presence_failures.admit(std::time::Instant::now())
                {
                    tracing::warn!(%peer, suppressed = held.count, "presence not published");
                }
                tokio::select! {
                    changed = desired.changed() => if changed.is_err() { break },
                    _ = refresh.tick() => {}
                }
            }
            let Some(ts_ms) = last_ts else { return };
            inner.withdraw(Withdrawal { peer, ts_ms }).await;
        });
    }

    /// Ends `withdrawal.peer`'s presence: a withdrawal entry in the directory, and a notice
    /// to every node that relayed to it, all at once.
    async fn withdraw(&self, withdrawal: Withdrawal) {
        let peer = withdrawal.peer;
        let notices = self.take_audience(&peer).into_iter().map(|node| async move {
            let told = tokio::time::timeout(
                self.config.federation_timeout,
                self.forwarder.withdrawn(node, withdrawal),
            )
            .await;
            if !matches!(told, Ok(Ok(()))) {
                tracing::debug!(%peer, %node, "withdrawal notice not delivered; the node's route fails on use");
            }
        });
        let directory = async {
            self.directory_call("withdraw presence", self.directory.withdraw(withdrawal))
                .await
                .is_some()
        };
        let (withdrawn, _) = tokio::join!(directory, futures_util::future::join_all(notices));
        if !withdrawn && let Some(held) = self.presence_failures.admit(std::time::Instant::now()) {
            tracing::warn!(%peer, suppressed = held.count, "presence not withdrawn; it will expire");
        }
    }
}
