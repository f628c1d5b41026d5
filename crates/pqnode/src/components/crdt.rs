//! Start-up step 4: CRDT documents — the engine on the node's store, who may open what,
//! and the Yjs endpoint the signaling port mounts at `/sync/{doc}`. Once the DHT and QUIC
//! run, documents replicate to the other nodes that hold them
//! ([`CrdtService::attach_replication`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use pqnode_crdt::replication::ReplicationConfig;
use pqnode_crdt::{DocChange, DocConfig, DocName, DocStore, Replicator};
use pqnode_crdt_ws::{AccessControl, Admission, SyncEndpoint, TokenId};
use pqnode_crypto::{Identity, NodeId};
use pqnode_health::Health;
use pqnode_net::{Network, PeerEvent};
use pqnode_overlay::Overlay;
use pqnode_store::Store;
use tokio_util::sync::CancellationToken;

use super::replication::{DhtReplicas, QuicSync, SYNC, SyncHandler};
use super::revocations::RevocationSharing;
use super::{Component, StatsFuture};
use crate::config::Config;

pub(crate) struct CrdtService {
    docs: DocStore,
    access: AccessControl,
    store: Store,
    /// Closes every Yjs connection when the node stops.
    shutdown: CancellationToken,
    /// Set once the DHT and QUIC run.
    replicator: Arc<OnceLock<Replicator>>,
    /// Revocations shared with the nodes that trust this one, once the DHT runs.
    revocations: Arc<RevocationSharing>,
    revocation_poll: Duration,
    admission: Arc<Admission>,
}

impl CrdtService {
    pub(crate) async fn start(
        config: &Config,
        identity: Arc<Identity>,
        store: Store,
    ) -> anyhow::Result<Arc<Self>> {
        let trusted = config
            .crdt
            .trusted_issuers
            .iter()
            .map(|id| {
                id.parse::<NodeId>()
                    .with_context(|| format!("crdt.trusted_issuers: {id:?} is not a node id"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let docs = DocStore::open(store.clone(), DocConfig::default())
            .await
            .context("cannot open the document engine")?;
        let access =
            AccessControl::load(store.clone(), identity, trusted, config.crdt.default_access)
                .await
                .context("cannot load document access policies")?;
        Ok(Arc::new(Self {
            docs,
            revocations: Arc::new(RevocationSharing::new(access.clone())),
            access,
            store,
            shutdown: CancellationToken::new(),
            replicator: Arc::new(OnceLock::new()),
            revocation_poll: Duration::from_secs(config.crdt.revocation_poll_secs.max(1)),
            admission: Arc::new(Admission::default()),
        }))
    }

    /// Replicates documents to the other nodes that hold them: registers [`SYNC`] on the
    /// network, tracks every stored document, every document that changes, and every one a
    /// client opens, and retries replicas at once when a node connects again.
    pub(crate) fn attach_replication(
        &self,
        overlay: Overlay,
        network: Network,
    ) -> anyhow::Result<()> {
        tokio::spawn(Arc::clone(&self.revocations).run(
            overlay.clone(),
            self.revocation_poll,
            self.shutdown.clone(),
        ));
        let replicator = Replicator::new(
            self.docs.clone(),
            Arc::new(DhtReplicas {
                overlay,
                access: self.access.clone(),
            }),
            Arc::new(QuicSync {
                network: network.clone(),
            }),
            ReplicationConfig::default(),
        )
        .context("cannot start CRDT replication")?;
        network
            .register(
                SYNC,
                SyncHandler {
                    replicator: replicator.clone(),
                    access: self.access.clone(),
                },
            )
            .context("cannot register the CRDT sync protocol")?;
        let _ = self.replicator.set(replicator.clone());
        tokio::spawn(follow(
            replicator,
            self.docs.changes(),
            network.subscribe(),
            self.shutdown.clone(),
        ));
        Ok(())
    }

    pub(crate) fn docs(&self) -> &DocStore {
        &self.docs
    }

    pub(crate) fn access(&self) -> &AccessControl {
        &self.access
    }

    /// What the signaling port serves at `/sync/{doc}`.
    pub(crate) fn endpoint(&self) -> SyncEndpoint {
        let replicator = Arc::clone(&self.replicator);
        SyncEndpoint {
            docs: self.docs.clone(),
            access: self.access.clone(),
            shutdown: self.shutdown.clone(),
            // A client may open a document this node has never held: its replicas have it.
            on_open: Some(Arc::new(move |doc: &DocName| {
                if let Some(replicator) = replicator.get()
                    && let Err(e) = replicator.track(doc)
                {
                    tracing::debug!(%doc, error = %e, "document not replicated");
                }
            })),
            admission: Arc::clone(&self.admission),
        }
    }

    /// Revokes a capability token: its sessions here close at once; if this node issued it,
    /// the node's published revocations name it, so nodes that trust this one close its
    /// sessions within their poll interval. Returns the sessions closed here and whether the
    /// list was published.
    pub(crate) async fn revoke(&self, id: TokenId) -> anyhow::Result<(usize, bool)> {
        let closed = self.access.revoke(id).await?;
        let published = self.revocations.changed().await;
        Ok((closed, published))
    }

    /// Exports the engine's and replication's figures to `/metrics` (counters as totals;
    /// rates are Prometheus's `rate()`).
    pub(crate) fn record_metrics(&self) {
        let docs = self.docs.stats();
        metrics::gauge!("pqnode_crdt_documents").set(docs.documents as f64);
        metrics::gauge!("pqnode_crdt_loaded_documents").set(docs.loaded_docs as f64);
        metrics::gauge!("pqnode_crdt_loaded_bytes").set(docs.loaded_bytes as f64);
        metrics::gauge!("pqnode_crdt_sync_sessions").set(docs.sync_sessions as f64);
        let totals = [
            ("pqnode_crdt_updates_applied_total", docs.updates_applied),
            ("pqnode_crdt_update_bytes_total", docs.update_bytes),
            ("pqnode_crdt_updates_rejected_total", docs.updates_rejected),
            ("pqnode_crdt_commits_total", docs.commits),
            ("pqnode_crdt_commit_failures_total", docs.commit_failures),
            ("pqnode_crdt_compactions_total", docs.compactions),
            ("pqnode_crdt_client_bytes_in_total", docs.bytes_in),
            ("pqnode_crdt_client_bytes_out_total", docs.bytes_out),
        ];
        for (name, value) in totals {
            metrics::counter!(name).absolute(value);
        }
        if let Some(replicator) = self.replicator.get() {
            let r = replicator.stats();
            metrics::gauge!("pqnode_crdt_replicated_documents").set(r.tracked_docs as f64);
            metrics::gauge!("pqnode_crdt_replicas").set(r.replicas as f64);
            let totals = [
                ("pqnode_crdt_replication_bytes_out_total", r.bytes_out),
                ("pqnode_crdt_replication_bytes_in_total", r.bytes_in),
                ("pqnode_crdt_replication_updates_sent_total", r.updates_sent),
                (
                    "pqnode_crdt_replication_updates_received_total",
                    r.updates_received,
                ),
                (
                    "pqnode_crdt_replication_sync_sessions_total",
                    r.sync_sessions_out + r.sync_sessions_in,
                ),
                ("pqnode_crdt_replication_failures_total", r.failures),
            ];
            for (name, value) in totals {
                metrics::counter!(name).absolute(value);
            }
        }
    }

    /// Closes every Yjs connection (1001) and stops replication; acknowledged updates are
    /// already on disk.
    pub(crate) async fn shutdown(&self) {
        self.shutdown.cancel();
        if let Some(replicator) = self.replicator.get() {
            replicator.shutdown().await;
        }
    }
}

impl Component for CrdtService {
    fn health(&self) -> Health {
        // Documents live in the store: an update cannot be acknowledged while it fails.
        match self.store.health() {
            h if h.status == pqnode_health::Status::Fail => {
                Health::fail("the store is failing: document updates are refused")
            }
            _ => Health::pass(),
        }
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async {
            let mut stats = serde_json::to_value(self.docs.stats()).unwrap_or_default();
            stats["tokenSessions"] = serde_json::json!(self.access.live_token_sessions());
            if let Some(replicator) = self.replicator.get() {
                stats["replication"] = serde_json::to_value(replicator.stats()).unwrap_or_default();
            }
            stats
        })
    }
}

/// Keeps replication following the node: every stored document at start, every document
/// that changes, and replicas retried at once when their node connects again.
async fn follow(
    replicator: Replicator,
    mut changes: tokio::sync::broadcast::Receiver<DocChange>,
    mut connections: tokio::sync::broadcast::Receiver<PeerEvent>,
    stop: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    match replicator.track_stored().await {
        Ok(n) => tracing::info!(documents = n, "replicating stored documents"),
        Err(e) => tracing::warn!(error = %e, "cannot replicate the stored documents"),
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            change = changes.recv() => match change {
                Ok(DocChange::Updated { name, .. }) => {
                    // Tracking a tracked document is a no-op.
                    let _ = replicator.track(&name);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    let _ = replicator.track_stored().await;
                }
                Err(RecvError::Closed) => return,
            },
            event = connections.recv() => match event {
                Ok(PeerEvent::Connected { node_id, .. }) => replicator.peer_reachable(node_id),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
        }
    }
}
