//! The requests this node starts: an exchange (anti-entropy) and a push.

use bytes::Bytes;
use pqnode_crypto::NodeId;
use yrs::Update;

use super::ReplicationError;
use super::replicator::Shared;
use super::wire::{MAX_SYNC_UPDATE, SyncRequest, SyncResponse};
use crate::stats::add;
use crate::{DocError, DocName, ydoc};

/// How far a request to a replica got.
pub(crate) enum Reached {
    /// The replica answered: it and this node now hold what the request carried.
    Synced,
    /// The replica does not hold the document and will not take it.
    NotHeld,
}

/// Anti-entropy with `node`: our state vector out, their diff and state vector back; the
/// diff is committed here before what they lack is pushed, so a crash in between loses
/// nothing that was acknowledged anywhere.
pub(crate) async fn exchange(
    shared: &Shared,
    doc: &DocName,
    node: NodeId,
) -> Result<Reached, ReplicationError> {
    add(&shared.counters.sessions_out, 1);
    let state_vector = Bytes::from(shared.docs.state_vector(doc).await?);
    let request = SyncRequest::Exchange {
        doc: doc.clone(),
        state_vector,
    };
    match shared.call(node, request).await? {
        SyncResponse::NotHeld => Ok(Reached::NotHeld),
        SyncResponse::Exchange { diff, state_vector } => {
            let applied = shared
                .docs
                .apply_replicated(doc, diff, shared.origin, MAX_SYNC_UPDATE)
                .await?;
            if applied.is_some() {
                add(&shared.counters.updates_received, 1);
            }
            let theirs = shared.docs.diff(doc, &state_vector).await?;
            if theirs.as_slice() == Update::EMPTY_V1 {
                return Ok(Reached::Synced);
            }
            push(shared, doc, node, theirs.into()).await
        }
        SyncResponse::Pushed { .. } => Err(ReplicationError::UnexpectedResponse),
    }
}

/// Pushes live updates (committed here, in commit order), merged into one update.
pub(crate) async fn push_live(
    shared: &Shared,
    doc: &DocName,
    node: NodeId,
    batch: Vec<Bytes>,
) -> Result<Reached, ReplicationError> {
    let raw: usize = batch.iter().map(Bytes::len).sum();
    let merged = ydoc::merge(&batch).map_err(|reason| DocError::MalformedUpdate { reason })?;
    let reached = push(shared, doc, node, merged).await?;
    add(&shared.counters.updates_sent, batch.len() as u64);
    add(&shared.counters.update_bytes_sent, raw as u64);
    Ok(reached)
}

async fn push(
    shared: &Shared,
    doc: &DocName,
    node: NodeId,
    update: Bytes,
) -> Result<Reached, ReplicationError> {
    if update.len() > MAX_SYNC_UPDATE {
        return Err(ReplicationError::DiffTooLarge {
            doc: doc.clone(),
            len: update.len(),
            max: MAX_SYNC_UPDATE,
        });
    }
    let request = SyncRequest::Push {
        doc: doc.clone(),
        update,
    };
    match shared.call(node, request).await? {
        SyncResponse::Pushed { .. } => Ok(Reached::Synced),
        SyncResponse::NotHeld => Ok(Reached::NotHeld),
        SyncResponse::Exchange { .. } => Err(ReplicationError::UnexpectedResponse),
    }
}
