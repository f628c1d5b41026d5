//! The per-document writer: a task that drains the document's queue, applies each batch in
//! one yrs transaction, commits it (log entries, header, and a snapshot when due) in one store
//! transaction, and only then answers the callers and tells the subscribers.
//!
//! If the batch fails to apply, the document is rebuilt from the store and each update is
//! tried alone, so one bad update fails alone. If the commit fails, memory is dropped (it is
//! ahead of the disk) and the next use reloads it from the store.

use std::sync::Arc;

use bytes::Bytes;
use pqnode_store::Table;
use tokio::sync::oneshot;

use crate::docstore::Inner;
use crate::hub::{DocChange, DocEvent, OriginId};
use crate::keys::{self, DocMeta};
use crate::slot::{DocSlot, Loaded, PendingUpdate, WriterGuard};
use crate::stats::add;
use crate::{DocError, load, wire, ydoc};

/// An update applied in memory and waiting for its commit.
struct Applied {
    bytes: Bytes,
    origin: OriginId,
    reply: oneshot::Sender<Result<u64, DocError>>,
}

impl From<PendingUpdate> for Applied {
    fn from(pending: PendingUpdate) -> Self {
        Self {
            bytes: pending.bytes,
            origin: pending.origin,
            reply: pending.reply,
        }
    }
}

/// Committed updates of one batch, in a row from one origin: subscribers hear them as one
/// event, so a burst from one connection costs each of them one frame per commit instead of
/// one per update, and a reader falls behind the broadcast ring no faster than commits come.
struct Run {
    /// The sequence number of the last update of the run.
    seq: u64,
    origin: OriginId,
    updates: Vec<Bytes>,
}

impl Run {
    fn broadcast(self, slot: &DocSlot) {
        let updates = match ydoc::merge(&self.updates) {
            Ok(merged) => vec![merged],
            Err(reason) => {
                tracing::warn!(doc = %slot.name, %reason, "merging committed updates failed; relaying them one by one");
                self.updates
            }
        };
        for update in updates {
            let frame = Bytes::from(wire::update(&update));
            let _ = slot.events.send(Arc::new(DocEvent::Update {
                seq: self.seq,
                update,
                frame,
                origin: self.origin,
            }));
        }
    }
}

pub(crate) async fn run(inner: Arc<Inner>, slot: Arc<DocSlot>) {
    let _guard = WriterGuard(&slot);
    loop {
        let mut state = slot.state.lock().await;
        let batch = slot.take_batch(inner.config.max_batch_updates);
        if batch.is_empty() {
            return;
        }
        if state.is_none() {
            match inner.load_into(&slot, &mut state).await {
                Ok(()) => {}
                Err(error) => {
                    fail(&inner, batch.into_iter().map(Applied::from), &error);
                    continue;
                }
            }
        }
        apply_batch(&inner, &slot, &mut state, batch).await;
        slot.set_loaded(&state);
    }
}

async fn apply_batch(
    inner: &Inner,
    slot: &DocSlot,
    state: &mut Option<Loaded>,
    batch: Vec<PendingUpdate>,
) {
    let Some(loaded) = state.as_mut() else {
        return fail(
            inner,
            batch.into_iter().map(Applied::from),
            &DocError::Stopped,
        );
    };
    // Refuse what would take the document past its cap; the rest goes on.
    let max = inner.config.max_doc_bytes;
    let mut size = loaded.meta.stored_bytes();
    let mut accepted = Vec::with_capacity(batch.len());
    for pending in batch {
        let grown = size.saturating_add(pending.bytes.len() as u64);
        if grown > max {
            let error = DocError::DocumentTooLarge {
                doc: slot.name.clone(),
                size: grown,
                max,
            };
            fail(inner, [Applied::from(pending)], &error);
        } else {
            size = grown;
            accepted.push(pending);
        }
    }
    if accepted.is_empty() {
        return;
    }
    let mut updates = Vec::with_capacity(accepted.len());
    let mut applied = Vec::with_capacity(accepted.len());
    for pending in accepted {
        updates.push(pending.update);
        applied.push(Applied {
            bytes: pending.bytes,
            origin: pending.origin,
            reply: pending.reply,
        });
    }
    if ydoc::apply_all(&loaded.doc, updates).is_ok() {
        return commit(inner, slot, state, applied).await;
    }
    // Something in the batch is bad: start again from the disk, one update at a time.
    *state = None;
    for one in applied {
        if state.is_none()
            && let Err(error) = reload(inner, slot, state).await
        {
            fail(inner, [one], &error);
            continue;
        }
        let Some(loaded) = state.as_mut() else {
            continue;
        };
        let outcome = ydoc::decode_update(&one.bytes)
            .and_then(|update| ydoc::apply_all(&loaded.doc, [update]));
        match outcome {
            Ok(()) => commit(inner, slot, state, vec![one]).await,
            Err(reason) => {
                tracing::debug!(doc = %slot.name, %reason, "update rejected by yrs");
                fail(inner, [one], &DocError::RejectedUpdate { reason });
                // The document may hold part of it: forget memory, reload before the next.
                *state = None;
            }
        }
    }
}

async fn reload(inner: &Inner, slot: &DocSlot, state: &mut Option<Loaded>) -> Result<(), DocError> {
    *state = Some(load::load(&inner.store, &slot.name).await?);
    add(&inner.counters.loads, 1);
    Ok(())
}

/// Commits what `applied` added to the document, then answers and broadcasts.
async fn commit(inner: &Inner, slot: &DocSlot, state: &mut Option<Loaded>, applied: Vec<Applied>) {
    let Some(loaded) = state.as_mut() else { return };
    let now = pqnode_clock::now_unix_ms();
    let name = &slot.name;
    let mut meta = loaded.meta.clone();
    let created = !meta.exists();
    if created {
        meta.created_ms = now;
    }
    meta.updated_ms = now;
    let first_seq = meta.last_seq + 1;
    let mut entries: Vec<(Vec<u8>, Bytes)> = Vec::with_capacity(applied.len() + 2);
    for one in &applied {
        meta.last_seq += 1;
        meta.log_updates += 1;
        meta.log_bytes += one.bytes.len() as u64;
        entries.push((
            keys::log_key(name, meta.last_seq),
            keys::frame_value(now, &one.bytes),
        ));
    }
    let mut delete_ranges = Vec::new();
    let due = meta.log_updates >= inner.config.compact_every_updates
        || meta.log_bytes >= inner.config.compact_every_bytes;
    let mut compacted = false;
    if due {
        match ydoc::encode_full(&loaded.doc) {
            Ok(snapshot) if snapshot.len() as u64 <= inner.config.max_doc_bytes => {
                compact(
                    &mut meta,
                    name,
                    snapshot,
                    now,
                    &mut entries,
                    &mut delete_ranges,
                );
                compacted = true;
            }
            Ok(snapshot) => {
                tracing::warn!(doc = %name, bytes = snapshot.len(), "snapshot over the document cap; not compacting")
            }
            Err(reason) => {
                tracing::warn!(doc = %name, %reason, "encoding a snapshot failed; not compacting")
            }
        }
    }
    entries.push((keys::meta_key(name), Bytes::from(meta.encode())));

    if let Err(error) = inner
        .store
        .write_batch(Table::Documents, delete_ranges, entries)
        .await
    {
        let error = DocError::from(error);
        tracing::warn!(doc = %name, %error, "committing updates failed; the document reloads from the store");
        add(&inner.counters.commit_failures, 1);
        *state = None;
        return fail(inner, applied, &error);
    }
    loaded.meta = meta;
    let counters = &inner.counters;
    add(&counters.commits, 1);
    add(&counters.compactions, u64::from(compacted));
    add(&counters.documents, u64::from(created));
    let broadcast = slot.events.receiver_count() > 0;
    let mut last_seq = None;
    let mut runs: Vec<Run> = Vec::new();
    for (seq, one) in (first_seq..).zip(applied) {
        last_seq = Some(seq);
        add(&counters.updates_applied, 1);
        add(&counters.update_bytes, one.bytes.len() as u64);
        let _ = one.reply.send(Ok(seq));
        if broadcast {
            match runs.last_mut() {
                Some(run) if run.origin == one.origin => {
                    run.seq = seq;
                    run.updates.push(one.bytes);
                }
                _ => runs.push(Run {
                    seq,
                    origin: one.origin,
                    updates: vec![one.bytes],
                }),
            }
        }
    }
    for run in runs {
        run.broadcast(slot);
    }
    if let Some(version) = last_seq {
        let _ = inner.changes.send(DocChange::Updated {
            name: slot.name.clone(),
            version,
        });
    }
}

/// Adds the snapshot of the document at `meta.last_seq` to the commit and drops what the
/// history no longer needs: the snapshot before the previous one, and log entries it covers.
fn compact(
    meta: &mut DocMeta,
    name: &crate::DocName,
    snapshot: Vec<u8>,
    now: u64,
    entries: &mut Vec<(Vec<u8>, Bytes)>,
    delete_ranges: &mut Vec<(Vec<u8>, Vec<u8>)>,
) {
    // The previous snapshot becomes the oldest readable version.
    let base = meta.snapshot_seq.max(meta.base_seq);
    if base > meta.base_seq {
        delete_ranges.push(keys::below(keys::snapshot_prefix(name), base));
        delete_ranges.push(keys::below(keys::log_prefix(name), base + 1));
    }
    meta.base_seq = base;
    meta.old_updates = meta.log_updates + if base > 0 { 0 } else { meta.old_updates };
    meta.old_bytes = meta.log_bytes + if base > 0 { 0 } else { meta.old_bytes };
    meta.log_updates = 0;
    meta.log_bytes = 0;
    meta.snapshot_seq = meta.last_seq;
    meta.snapshot_bytes = snapshot.len() as u64;
    meta.compactions += 1;
    entries.push((
        keys::snapshot_key(name, meta.last_seq),
        keys::frame_value(now, &snapshot),
    ));
}

fn fail(inner: &Inner, applied: impl IntoIterator<Item = Applied>, error: &DocError) {
    for one in applied {
        add(&inner.counters.updates_rejected, 1);
        let _ = one.reply.send(Err(error.clone()));
    }
}
