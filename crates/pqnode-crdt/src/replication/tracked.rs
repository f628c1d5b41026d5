//! One tracked document: its replicas, and the task that announces it, listens to its
//! committed updates and runs the anti-entropy rounds.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pqnode_crypto::NodeId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::exchange::{self, Reached};
use super::peer::{self, Peer};
use super::replicator::Shared;
use super::{ReplicationError, jitter};
use crate::stats::add;
use crate::{DocEvent, DocName, DocSubscription, SessionError};

pub(crate) struct Tracked {
    pub(crate) doc: DocName,
    /// Cancelled when tracking stops; every peer worker's token is a child of it.
    pub(crate) cancel: CancellationToken,
    peers: Mutex<HashMap<NodeId, Arc<Peer>>>,
}

impl Tracked {
    pub(crate) fn new(doc: DocName, cancel: CancellationToken) -> Self {
        Self {
            doc,
            cancel,
            peers: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn peers(&self) -> Vec<Arc<Peer>> {
        self.lock().values().cloned().collect()
    }

    pub(crate) fn peer(&self, node: &NodeId) -> Option<Arc<Peer>> {
        self.lock().get(node).cloned()
    }

    fn remove(&self, node: &NodeId) {
        if let Some(peer) = self.lock().remove(node) {
            peer.cancel.cancel();
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Arc<Peer>>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Makes `node` a replica `tracked` syncs with, if there is room, and starts its worker.
/// `resync`: whether an exchange is due first (not when `node` just asked us for one).
/// False when there was no room.
pub(crate) fn add_peer(
    shared: &Arc<Shared>,
    tracked: &Arc<Tracked>,
    node: NodeId,
    resync: bool,
) -> bool {
    let mut peers = tracked.lock();
    if peers.contains_key(&node) {
        return true;
    }
    if peers.len() >= shared.config.max_replicas_per_doc {
        return false;
    }
    let peer = Arc::new(Peer::new(node, tracked.cancel.child_token(), resync));
    peers.insert(node, peer.clone());
    drop(peers);
    shared
        .tasks
        .spawn(peer::run(shared.clone(), tracked.clone(), peer));
    true
}

/// Asks the directory for the document's replicas: new ones are added (an exchange due if
/// `resync`), down ones no longer listed are dropped.
///
/// On an anti-entropy round (`resync`) with more replicas listed than there are slots, one
/// slot changes hands: otherwise the first replicas found would keep their slots for good,
/// and a node that is listed but never answers, or a hostile one that answers every
/// exchange with nothing, could keep this node from ever reaching the honest replicas.
/// Anti-entropy is transitive, so reaching a few of them, in turn, is enough.
pub(crate) async fn refresh(shared: &Arc<Shared>, tracked: &Arc<Tracked>, resync: bool) {
    let nodes = match shared.directory.replicas(tracked.doc.clone()).await {
        Ok(nodes) => nodes,
        Err(error) => {
            tracing::debug!(doc = %tracked.doc, %error, "finding replicas failed");
            return;
        }
    };
    for peer in tracked.peers() {
        if peer.is_down() && !nodes.contains(&peer.node) {
            tracked.remove(&peer.node);
        }
    }
    let unplaced: Vec<NodeId> = nodes
        .into_iter()
        .filter(|node| !add_peer(shared, tracked, *node, resync))
        .collect();
    if resync && let Some(newcomer) = pick(&unplaced) {
        let current: Vec<NodeId> = tracked.lock().keys().copied().collect();
        if let Some(leaving) = pick(&current) {
            tracked.remove(&leaving);
            add(&shared.counters.replicas_rotated, 1);
            add_peer(shared, tracked, newcomer, true);
        }
    }
}

/// One of `nodes`, at random.
fn pick(nodes: &[NodeId]) -> Option<NodeId> {
    let random = std::collections::hash_map::RandomState::new().hash_one(nodes.len());
    let len = u64::try_from(nodes.len()).ok().filter(|len| *len > 0)?;
    nodes.get(usize::try_from(random % len).ok()?).copied()
}

/// The first sync of a newly tracked document: with one replica first, so a node that joins
/// with nothing pulls the document once rather than once per replica; then with the others,
/// which send only what that one lacked.
async fn first_sync(shared: &Arc<Shared>, tracked: &Arc<Tracked>) {
    refresh(shared, tracked, false).await;
    let peers = tracked.peers();
    let mut synced = None;
    for peer in &peers {
        let outcome = tokio::select! {
            _ = tracked.cancel.cancelled() => return,
            outcome = exchange::exchange(shared, &tracked.doc, peer.node) => outcome,
        };
        if settle(shared, tracked, peer, outcome) {
            synced = Some(peer.node);
            break;
        }
    }
    for peer in peers {
        if Some(peer.node) != synced {
            peer.resync();
        }
    }
}

/// Records what a request to `peer` came to; true if it succeeded.
pub(crate) fn settle(
    shared: &Shared,
    tracked: &Tracked,
    peer: &Peer,
    outcome: Result<Reached, ReplicationError>,
) -> bool {
    match outcome {
        Ok(Reached::Synced) => {
            if peer.succeeded() {
                add(&shared.counters.heals, 1);
                tracing::debug!(doc = %tracked.doc, node = ?peer.node, "replica reachable again");
            }
            true
        }
        Ok(Reached::NotHeld) => {
            tracing::debug!(doc = %tracked.doc, node = ?peer.node, "replica does not hold the document; dropped");
            tracked.remove(&peer.node);
            false
        }
        Err(error) => {
            add(&shared.counters.failures, 1);
            tracing::debug!(doc = %tracked.doc, node = ?peer.node, %error, "replica request failed");
            peer.failed();
            false
        }
    }
}

/// The document's task: announce, find replicas, forward live updates, run rounds.
pub(crate) async fn run(shared: Arc<Shared>, tracked: Arc<Tracked>, mut events: DocSubscription) {
    let doc = tracked.doc.clone();
    let announce = shared.directory.announce(doc.clone());
    let (announced, ()) = tokio::join!(announce, first_sync(&shared, &tracked));
    let mut announced = log_announce(&doc, announced);
    let interval = shared.config.anti_entropy_interval;
    let mut next_round = Instant::now() + jitter(interval);
    loop {
        tokio::select! {
            _ = tracked.cancel.cancelled() => break,
            _ = tokio::time::sleep_until(next_round) => {
                add(&shared.counters.anti_entropy_rounds, 1);
                if !announced {
                    announced = log_announce(&doc, shared.directory.announce(doc.clone()).await);
                }
                refresh(&shared, &tracked, true).await;
                for peer in tracked.peers() {
                    peer.resync();
                }
                next_round = Instant::now() + jitter(interval);
            }
            event = events.recv() => match event {
                // Only what was written here travels: updates from replication came from a
                // replica already, and forwarding them again is how storms start.
                Ok(DocEvent::Update { update, origin, .. }) if origin != shared.origin => {
                    for peer in tracked.peers() {
                        if peer.offer(&update, &shared.config) {
                            add(&shared.counters.queue_overflows, 1);
                        }
                    }
                }
                Ok(DocEvent::Deleted) => {
                    tracing::debug!(%doc, "document deleted here; replication of it stops");
                    {
                        let mut all = shared.tracked();
                        if all.get(&doc).is_some_and(|t| Arc::ptr_eq(t, &tracked)) {
                            all.remove(&doc);
                        }
                    }
                    if let Err(error) = shared.directory.retire(doc.clone()).await {
                        tracing::debug!(%doc, %error, "retiring the announcement failed");
                    }
                    break;
                }
                Ok(_) => {}
                // Missed live events: only exchanges can tell what the replicas lack now.
                Err(SessionError::Lagged { .. }) => {
                    for peer in tracked.peers() {
                        peer.resync();
                    }
                }
                Err(_) => break,
            },
        }
    }
    tracked.cancel.cancel();
}

fn log_announce(doc: &DocName, outcome: Result<(), super::LinkError>) -> bool {
    if let Err(error) = &outcome {
        tracing::warn!(%doc, %error, "announcing the document failed; retried next round");
    }
    outcome.is_ok()
}
