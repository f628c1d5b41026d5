//! Requests from other nodes: an exchange is answered with what the asker lacks and our state
//! vector; a push is answered once it is committed here.

use std::sync::Arc;

use bytes::Bytes;
use pqnode_crypto::NodeId;

use super::ReplicationError;
use super::replicator::Shared;
use super::tracked;
use super::wire::{MAX_SYNC_UPDATE, SyncRequest, SyncResponse};
use crate::stats::add;

pub(crate) async fn handle(
    shared: &Arc<Shared>,
    from: NodeId,
    payload: Bytes,
) -> Result<Bytes, ReplicationError> {
    let outcome = answer(shared, from, &payload).await;
    match &outcome {
        Ok(reply) => shared.counters.answered(payload.len(), reply.len()),
        Err(error) => {
            add(&shared.counters.bytes_in, payload.len() as u64);
            if error.is_caller_fault() {
                add(&shared.counters.refused, 1);
            }
            tracing::debug!(node = ?from, %error, "sync request refused");
        }
    }
    outcome
}

async fn answer(
    shared: &Arc<Shared>,
    from: NodeId,
    payload: &[u8],
) -> Result<Bytes, ReplicationError> {
    let request = SyncRequest::decode(payload)?;
    let doc = request.doc().clone();
    let known = shared.tracked().get(&doc).cloned();
    if known.is_none() {
        // Not tracked: serve it if it is stored here, or take it if we accept new replicas.
        let stored = shared.docs.info(&doc).await?.is_some();
        if !stored && !shared.config.accept_new {
            return Ok(SyncResponse::NotHeld.encode()?);
        }
        let max = shared.config.max_tracked_docs;
        if shared.tracked().len() >= max {
            return Err(ReplicationError::TooManyDocs { max });
        }
    }
    // The work first, so a request that fails (a malformed update) starts nothing.
    let response = match request {
        SyncRequest::Exchange { state_vector, .. } => {
            add(&shared.counters.sessions_in, 1);
            let diff = shared.docs.diff(&doc, &state_vector).await?;
            if diff.len() > MAX_SYNC_UPDATE {
                return Err(ReplicationError::DiffTooLarge {
                    doc,
                    len: diff.len(),
                    max: MAX_SYNC_UPDATE,
                });
            }
            let state_vector = shared.docs.state_vector(&doc).await?;
            SyncResponse::Exchange {
                diff: diff.into(),
                state_vector: state_vector.into(),
            }
        }
        SyncRequest::Push { update, .. } => {
            let applied = shared
                .docs
                .apply_replicated(&doc, update, shared.origin, MAX_SYNC_UPDATE)
                .await?;
            let version = match applied {
                Some(version) => {
                    add(&shared.counters.updates_received, 1);
                    version
                }
                None => shared.docs.info(&doc).await?.map_or(0, |info| info.version),
            };
            SyncResponse::Pushed { version }
        }
    };
    let tracked = match known {
        Some(tracked) => tracked,
        None => shared.track(&doc)?,
    };
    // The asker holds the document: sync with it from now on (it just synced with us).
    tracked::add_peer(shared, &tracked, from, false);
    Ok(response.encode()?)
}
