//! Presence, both ways. Out: each local peer's presence kept in the directory while it is
//! connected, and withdrawn when it leaves, with a notice straight to the nodes that relayed
//! to it (its audience). In: another node's notice that a peer it served left
//! ([`Router::withdrawn`]). Not the proofs themselves ([`crate::presence`]) nor when a peer
//! registers or leaves (the registry says, through the `watch` it hands the worker).

use std::collections::VecDeque;
use std::sync::Arc;

use pqnode_crypto::{NodeId, PeerId};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::Router;
use crate::federation::Withdrawal;
use crate::registry::Presence;

/// Most nodes told that one local peer left: the ones that relayed to it most recently.
const MAX_AUDIENCE: usize = 64;

impl Router {
    /// `node` (as the transport authenticated it) says that a peer it served left it. Ends
    /// this node's route to the peer if the route goes through `node` and rests on that
    /// registration or an older one; a newer registration, or one elsewhere, is kept.
    /// Returns whether a route ended.
    pub(crate) fn withdrawn(&self, node: NodeId, withdrawal: Withdrawal) -> bool {
        let ends = self
            .routes
            .get(&withdrawal.peer)
            .is_some_and(|route| route.node == node && route.ts_ms <= withdrawal.ts_ms);
        if ends {
            self.routes.invalidate(&withdrawal.peer);
        }
        ends
    }

    /// Remembers that `node` relayed to the local peer `to`, so it hears when `to` leaves.
    pub(super) fn note_audience(&self, to: PeerId, node: NodeId) {
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
    /// and straight to the nodes that relayed to it. The worker runs on `tasks`, so the
    /// server's shutdown waits for the withdrawal.
    pub(crate) fn spawn_presence(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        peer: PeerId,
        mut desired: watch::Receiver<Presence>,
    ) {
        let router = Arc::clone(self);
        tasks.spawn(async move {
            let period = router.presence_refresh;
            let mut refresh = tokio::time::interval_at(Instant::now() + period, period);
            refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_ts = None;
            loop {
                let Some(announce) = desired.borrow_and_update().clone() else {
                    break;
                };
                last_ts = Some(announce.proof.ts_ms);
                let published = router
                    .directory_call(
                        "publish presence",
                        router
                            .directory
                            .publish_presence(announce.proof, announce.topics),
                    )
                    .await;
                if published.is_none()
                    && let Some(held) = router.presence_failures.admit(std::time::Instant::now())
                {
                    tracing::warn!(%peer, suppressed = held.count, "presence not published");
                }
                tokio::select! {
                    changed = desired.changed() => if changed.is_err() { break },
                    _ = refresh.tick() => {}
                }
            }
            let Some(ts_ms) = last_ts else { return };
            router.withdraw(Withdrawal { peer, ts_ms }).await;
        });
    }

    /// Ends `withdrawal.peer`'s presence: a withdrawal entry in the directory, and a notice
    /// to every node that relayed to it, all at once.
    async fn withdraw(&self, withdrawal: Withdrawal) {
        let peer = withdrawal.peer;
        let notices = self.take_audience(&peer).into_iter().map(|node| async move {
            let told = tokio::time::timeout(
                self.federation_timeout,
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
