//! [`Replicator`]: the handle the node holds, and the state its tasks share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use pqnode_crypto::NodeId;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::seams::{LinkError, ReplicaDirectory, SyncLink};
use super::stats::{Counters, ReplicationStats};
use super::tracked::{self, Tracked};
use super::wire::{MAX_REPLICATED_DOC_BYTES, SyncRequest, SyncResponse};
use super::{ReplicationConfig, ReplicationError, exchange};
use crate::{ConfigError, DocName, DocStore, OriginId};

/// Replicates documents between this node and the others holding them (see the
/// [module docs](super)). Cloning is cheap; every clone drives the same replication. Dropping
/// the last clone stops it, as [`shutdown`](Self::shutdown) does without waiting.
#[derive(Clone)]
pub struct Replicator {
    pub(crate) shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

pub(crate) struct Shared {
    pub(crate) docs: DocStore,
    pub(crate) directory: Arc<dyn ReplicaDirectory>,
    pub(crate) link: Arc<dyn SyncLink>,
    pub(crate) config: ReplicationConfig,
    /// Updates applied from other nodes carry it, so they are not forwarded again.
    pub(crate) origin: OriginId,
    pub(crate) counters: Counters,
    pub(crate) tracked: Mutex<HashMap<DocName, Arc<Tracked>>>,
    /// Requests to other nodes in flight, all documents together.
    pub(crate) in_flight: Semaphore,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
}

/// Stops the tasks when the last handle goes (they hold `Shared`, not the handle).
struct Owner(CancellationToken);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The outcome of [`Replicator::sync_now`]: replicas brought in step, and replicas that
/// could not be (unreachable, refused, or not holding the document).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// Replicas now in step with this node for the document.
    pub synced: Vec<NodeId>,
    /// Replicas that could not be synced.
    pub failed: Vec<NodeId>,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator")
            .field("tracked", &self.shared.tracked().len())
            .finish_non_exhaustive()
    }
}

impl Replicator {
    /// Replication of `docs`' documents over `directory` and `link`. Nothing is tracked yet.
    /// Must be called inside a tokio runtime.
    pub fn new(
        docs: DocStore,
        directory: Arc<dyn ReplicaDirectory>,
        link: Arc<dyn SyncLink>,
        config: ReplicationConfig,
    ) -> Result<Replicator, ReplicationError> {
        config.validate()?;
        let max_doc_bytes = docs.config().max_doc_bytes;
        if max_doc_bytes > MAX_REPLICATED_DOC_BYTES {
            return Err(ConfigError::DocTooLargeToReplicate {
                value: max_doc_bytes,
                max: MAX_REPLICATED_DOC_BYTES,
            }
            .into());
        }
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            origin: docs.new_origin(),
            docs,
            directory,
            link,
            in_flight: Semaphore::new(config.max_in_flight),
            config,
            counters: Counters::default(),
            tracked: Mutex::new(HashMap::new()),
            cancel: cancel.clone(),
            tasks: TaskTracker::new(),
        });
        Ok(Replicator {
            shared,
            _owner: Arc::new(Owner(cancel)),
        })
    }

    /// Starts replicating `doc`, held here: announces it, finds its replicas and syncs with
    /// each in the background, then streams live updates. Tracking a tracked document does
    /// nothing.
    pub fn track(&self, doc: &DocName) -> Result<(), ReplicationError> {
        self.shared.track(doc).map(|_| ())
    }

    /// Tracks every document in the store (at start-up, so replicas catch up on what changed
    /// while this node was away). Returns how many are tracked now.
    pub async fn track_stored(&self) -> Result<usize, ReplicationError> {
        for info in self.shared.docs.list().await? {
            self.shared.track(&info.name)?;
        }
        Ok(self.shared.tracked().len())
    }

    /// Stops replicating `doc` and retires its announcement. Returns whether it was tracked.
    pub async fn untrack(&self, doc: &DocName) -> Result<bool, ReplicationError> {
        let Some(tracked) = self.shared.tracked().remove(doc) else {
            return Ok(false);
        };
        tracked.cancel.cancel();
        self.shared.directory.retire(doc.clone()).await?;
        Ok(true)
    }

    /// Documents tracked now, in name order.
    pub fn tracked(&self) -> Vec<DocName> {
        let mut docs: Vec<DocName> = self.shared.tracked().keys().cloned().collect();
        docs.sort();
        docs
    }

    /// Answers one inbound `SYNC` request from `from` (as the transport proved it). An error
    /// means nothing of the request was applied; answer it as a failure
    /// ([`ReplicationError::is_caller_fault`] tells bad request from unavailable).
    pub async fn handle(&self, from: NodeId, payload: Bytes) -> Result<Bytes, ReplicationError> {
        if self.shared.cancel.is_cancelled() {
            return Err(ReplicationError::Stopped);
        }
        super::inbound::handle(&self.shared, from, payload).await
    }

    /// Brings `doc` in step with its replicas now (it must be tracked: it is tracked if not),
    /// asking the directory again for them, and returns which answered.
    pub async fn sync_now(&self, doc: &DocName) -> Result<SyncReport, ReplicationError> {
        let tracked = self.shared.track(doc)?;
        tracked::refresh(&self.shared, &tracked, false).await;
        let peers = tracked.peers();
        let tracked = &tracked;
        let runs = peers.iter().map(|peer| async move {
            let outcome = exchange::exchange(&self.shared, doc, peer.node).await;
            let ok = tracked::settle(&self.shared, tracked, peer, outcome);
            (peer.node, ok)
        });
        let mut report = SyncReport::default();
        for (node, ok) in futures_util::future::join_all(runs).await {
            match ok {
                true => report.synced.push(node),
                false => report.failed.push(node),
            }
        }
        Ok(report)
    }

    /// Tells replication that `node` is reachable again (the transport connected to it):
    /// every tracked document that failed to reach it syncs with it now instead of waiting
    /// out its retry delay.
    pub fn peer_reachable(&self, node: NodeId) {
        for tracked in self.shared.tracked().values() {
            if let Some(peer) = tracked.peer(&node) {
                peer.heal();
            }
        }
    }

    /// Gauges now and counters since start, for `/api/health`.
    pub fn stats(&self) -> ReplicationStats {
        let tracked = self.shared.tracked();
        let replicas = tracked.values().map(|t| t.peers().len() as u64).sum();
        self.shared
            .counters
            .snapshot(tracked.len() as u64, replicas)
    }

    /// Stops every replication task and waits for them. Announcements are left to expire
    /// (a node restarting keeps holding its documents); inbound requests are refused from now.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tracked().clear();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

impl Shared {
    pub(crate) fn tracked(&self) -> MutexGuard<'_, HashMap<DocName, Arc<Tracked>>> {
        self.tracked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The document's tracking, started if it is not running.
    pub(crate) fn track(self: &Arc<Self>, doc: &DocName) -> Result<Arc<Tracked>, ReplicationError> {
        if self.cancel.is_cancelled() {
            return Err(ReplicationError::Stopped);
        }
        let mut all = self.tracked();
        if let Some(tracked) = all.get(doc) {
            return Ok(tracked.clone());
        }
        let max = self.config.max_tracked_docs;
        if all.len() >= max {
            return Err(ReplicationError::TooManyDocs { max });
        }
        let tracked = Arc::new(Tracked::new(doc.clone(), self.cancel.child_token()));
        all.insert(doc.clone(), tracked.clone());
        drop(all);
        let subscription = self.docs.subscribe(doc);
        self.tasks
            .spawn(tracked::run(self.clone(), tracked.clone(), subscription));
        Ok(tracked)
    }

    /// Sends `request` to `node` and decodes the answer, counting both.
    pub(crate) async fn call(
        &self,
        node: NodeId,
        request: SyncRequest,
    ) -> Result<SyncResponse, ReplicationError> {
        let payload = request.encode()?;
        let sent = payload.len();
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| ReplicationError::Stopped)?;
        let timeout = self.config.request_timeout;
        let reply = tokio::time::timeout(timeout, self.link.request(node, payload))
            .await
            .map_err(|_| LinkError::new(format!("no answer within {timeout:?}")))??;
        self.counters.sent(sent, reply.len());
        Ok(SyncResponse::decode(&reply)?)
    }
}
