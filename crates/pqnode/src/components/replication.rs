//! CRDT replication between nodes over the DHT and QUIC: the two seams of
//! `pqnode_crdt::replication`, the inbound handler, and the check every DHT node runs on
//! replica entries.
//!
//! A node that holds document `d` keeps a provider entry under `replica_key(d)` (value:
//! `replica_entry(d)`); replicas exchange state vectors and updates over the QUIC protocol
//! [`SYNC`] (id 3), each push answered only once the receiver committed it.

use std::time::Duration;

use bytes::Bytes;
use pqnode_crdt::DocName;
use pqnode_crdt::replication::wire::{SyncRequest, SyncResponse};
use pqnode_crdt::replication::{
    BoxFuture, LinkError, ReplicaDirectory, Replicator, SYNC_MAX_MESSAGE, SyncLink,
    check_replica_entry, replica_entry, replica_key,
};
use pqnode_crdt_ws::AccessControl;
use pqnode_crypto::NodeId;
use pqnode_dht::{ProviderRecord, ProviderValidator, Verdict};
use pqnode_net::{Caller, Handler, HandlerError, Network, Protocol};
use pqnode_overlay::Overlay;

/// CRDT sync between nodes: wire id 3. Caps a whole document's diff.
pub(crate) const SYNC: Protocol = Protocol::new(3, "SYNC", SYNC_MAX_MESSAGE);

/// A replica entry lives this long unless its node republishes it (the overlay does, while
/// the document is tracked).
const REPLICA_TTL: Duration = Duration::from_secs(30 * 60);

/// [`ReplicaDirectory`] over DHT provider entries. A restricted document is replicated
/// only with the nodes this one trusts ([`AccessControl::may_replicate`]).
pub(crate) struct DhtReplicas {
    pub overlay: Overlay,
    pub access: AccessControl,
}

impl ReplicaDirectory for DhtReplicas {
    fn announce(&self, doc: DocName) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move {
            self.overlay
                .add_provider(replica_key(&doc), &replica_entry(&doc), REPLICA_TTL)
                .await
                .map(|_| ())
                .map_err(LinkError::from_error)
        })
    }

    fn replicas(&self, doc: DocName) -> BoxFuture<'_, Result<Vec<NodeId>, LinkError>> {
        Box::pin(async move {
            let key = replica_key(&doc);
            let local = self.overlay.local_id();
            let entries = self
                .overlay
                .get_providers(key)
                .await
                .map_err(LinkError::from_error)?;
            Ok(entries
                .iter()
                .filter(|e| matches!(check_replica_entry(&key, e.value()), Some(Ok(_))))
                .map(ProviderRecord::publisher_id)
                .filter(|id| *id != local && self.access.may_replicate(doc.as_str(), *id))
                .collect())
        })
    }

    fn retire(&self, doc: DocName) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async move {
            self.overlay
                .unpublish(replica_key(&doc))
                .await
                .map(|_| ())
                .map_err(LinkError::from_error)
        })
    }
}

/// [`SyncLink`] over QUIC.
pub(crate) struct QuicSync {
    pub network: Network,
}

impl SyncLink for QuicSync {
    fn request(&self, node: NodeId, payload: Bytes) -> BoxFuture<'_, Result<Bytes, LinkError>> {
        Box::pin(async move {
            self.network
                .request(node, SYNC, payload)
                .await
                .map_err(LinkError::from_error)
        })
    }
}

/// Answers [`SYNC`] requests from other nodes: a restricted document only to the nodes this
/// one trusts; any other node hears that this node does not hold it.
pub(crate) struct SyncHandler {
    pub replicator: Replicator,
    pub access: AccessControl,
}

impl Handler for SyncHandler {
    async fn handle(&self, caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        let request = SyncRequest::decode(&payload)
            .map_err(|e| HandlerError::BadRequest(format!("sync request: {e}")))?;
        if !self
            .access
            .may_replicate(request.doc().as_str(), caller.node_id)
        {
            return SyncResponse::NotHeld
                .encode()
                .map_err(|e| HandlerError::Internal(e.to_string()));
        }
        self.replicator
            .handle(caller.node_id, payload)
            .await
            .map_err(|e| match e.is_caller_fault() {
                true => HandlerError::BadRequest(e.to_string()),
                false => HandlerError::Unavailable(e.to_string()),
            })
    }
}

/// The check every DHT node runs on replica entries: the value names the document whose
/// key it sits under.
#[derive(Debug)]
pub(crate) struct ReplicaEntries;

impl ProviderValidator for ReplicaEntries {
    fn validate(&self, entry: &ProviderRecord) -> Verdict {
        match check_replica_entry(entry.key(), entry.value()) {
            None => Verdict::NotMine,
            Some(Ok(_)) => Verdict::Valid,
            Some(Err(e)) => Verdict::Invalid(e.to_string()),
        }
    }
}
