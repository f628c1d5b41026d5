//! [`DocStore`]: durable yrs documents on the node's store, loaded lazily and cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pqnode_store::{Store, Table};
use tokio::sync::oneshot;

use crate::hub::{CHANGES_CAPACITY, DocChange, DocSubscription, OriginId};
use crate::slot::{DocSlot, Loaded, PendingUpdate};
use crate::stats::{Counters, CrdtStats, add};
use crate::{DocConfig, DocError, DocName, keys, load, writer, ydoc};

/// The document engine. Cloning is cheap; every clone serves the same documents.
///
/// Documents are created by their first update and live in the store's `documents` table
/// (layout in the crate docs). Each is loaded into memory on first use and stays there while
/// used; idle ones, and the least recently used ones beyond the configured budget, are dropped
/// from memory (never from the store) unless a session or subscription holds them.
#[derive(Clone)]
pub struct DocStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) config: DocConfig,
    pub(crate) counters: Counters,
    pub(crate) slots: Mutex<HashMap<DocName, Arc<DocSlot>>>,
    /// Every commit and deletion, for listeners that follow all documents.
    pub(crate) changes: tokio::sync::broadcast::Sender<DocChange>,
    epoch: Instant,
    next_origin: AtomicU64,
}

impl std::fmt::Debug for DocStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocStore")
            .field("loaded", &self.inner.slots().len())
            .finish_non_exhaustive()
    }
}

impl DocStore {
    /// Opens the engine over `store`: checks `config`, counts the stored documents and starts
    /// the task that evicts idle documents (it ends when the last clone is dropped). Must be
    /// called inside a tokio runtime.
    pub async fn open(store: Store, config: DocConfig) -> Result<DocStore, DocError> {
        config.validate()?;
        let documents = store
            .scan_prefix(Table::Documents, keys::META_PREFIX)
            .await?
            .len() as u64;
        let inner = Arc::new(Inner {
            store,
            config,
            counters: Counters::default(),
            slots: Mutex::new(HashMap::new()),
            changes: tokio::sync::broadcast::channel(CHANGES_CAPACITY).0,
            epoch: Instant::now(),
            next_origin: AtomicU64::new(1),
        });
        add(&inner.counters.documents, documents);
        let period = (inner.config.idle_evict_after / 2).max(Duration::from_millis(100));
        tokio::spawn(sweep(Arc::downgrade(&inner), period));
        Ok(DocStore { inner })
    }

    /// The limits it was opened with.
    pub fn config(&self) -> &DocConfig {
        &self.inner.config
    }

    /// A new origin, for a session or a replication link, so its own changes are not echoed
    /// back to it.
    pub fn new_origin(&self) -> OriginId {
        OriginId(self.inner.next_origin.fetch_add(1, Ordering::Relaxed))
    }

    /// Validates `update` (a Yjs v1 update), applies it and returns once it is committed to
    /// the store: the document's version (log sequence number) that includes it. Updates
    /// arriving together for one document share one yrs transaction and one commit. A refused
    /// update changes nothing, in memory or on disk. An empty update commits nothing.
    pub async fn apply_update(
        &self,
        name: &DocName,
        update: impl Into<Bytes>,
    ) -> Result<u64, DocError> {
        self.apply_update_from(name, update, OriginId::LOCAL).await
    }

    /// [`apply_update`](Self::apply_update) on behalf of `origin`, whose subscribers do not
    /// hear it back.
    pub async fn apply_update_from(
        &self,
        name: &DocName,
        update: impl Into<Bytes>,
        origin: OriginId,
    ) -> Result<u64, DocError> {
        let slot = self.inner.slot(name);
        let max = self.inner.config.max_update_bytes;
        self.inner.submit(&slot, update.into(), origin, max).await
    }

    /// [`apply_update_from`](Self::apply_update_from) with a cap of `max` bytes instead of
    /// `max_update_bytes`: replication carries a whole document's diff in one update, which
    /// may be larger than any one client edit. The document cap still applies.
    pub(crate) async fn apply_capped(
        &self,
        name: &DocName,
        update: Bytes,
        origin: OriginId,
        max: usize,
    ) -> Result<u64, DocError> {
        let slot = self.inner.slot(name);
        self.inner.submit(&slot, update, origin, max).await
    }

    /// Every document's commits and deletions, as they happen (after the commit). A listener
    /// that falls more than a few thousand changes behind hears `Lagged` and should re-read
    /// what it follows ([`list`](Self::list)).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<DocChange> {
        self.inner.changes.subscribe()
    }

    /// Live events of `name` (committed updates, awareness, deletion). Holds the document in
    /// memory while it lives.
    pub fn subscribe(&self, name: &DocName) -> DocSubscription {
        DocSubscription::new(self.inner.slot(name))
    }

    /// Drops idle documents from memory now (the background task does it periodically);
    /// returns how many.
    pub fn evict_idle(&self) -> usize {
        self.inner.evict(true)
    }

    /// Gauges now and counters since start, for `/api/health`.
    pub fn stats(&self) -> CrdtStats {
        let slots = self.inner.slots();
        let bytes = slots
            .values()
            .map(|slot| slot.stored_bytes.load(Ordering::Relaxed))
            .sum();
        self.inner.counters.snapshot(slots.len() as u64, bytes)
    }
}

impl Inner {
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn slots(&self) -> MutexGuard<'_, HashMap<DocName, Arc<DocSlot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The document's slot, created (not yet loaded) on first use.
    pub(crate) fn slot(&self, name: &DocName) -> Arc<DocSlot> {
        let now = self.now_ms();
        let (slot, grew) = {
            let mut slots = self.slots();
            match slots.get(name) {
                Some(slot) => (slot.clone(), false),
                None => {
                    let slot = Arc::new(DocSlot::new(
                        name.clone(),
                        self.config.broadcast_capacity,
                        now,
                    ));
                    slots.insert(name.clone(), slot.clone());
                    (slot, slots.len() > self.config.max_loaded_docs)
                }
            }
        };
        slot.touch(now);
        if grew {
            self.evict(false);
        }
        slot
    }

    /// The slot's state, loaded from the store if it is not in memory.
    pub(crate) async fn loaded<'a>(
        &self,
        slot: &'a DocSlot,
    ) -> Result<tokio::sync::MutexGuard<'a, Option<Loaded>>, DocError> {
        let mut state = slot.state.lock().await;
        if state.is_none() {
            self.load_into(slot, &mut state).await?;
        }
        slot.touch(self.now_ms());
        Ok(state)
    }

    pub(crate) async fn load_into(
        &self,
        slot: &DocSlot,
        state: &mut Option<Loaded>,
    ) -> Result<(), DocError> {
        *state = Some(load::load(&self.store, &slot.name).await?);
        add(&self.counters.loads, 1);
        slot.set_loaded(state);
        if self.over_budget() {
            self.evict(false);
        }
        Ok(())
    }

    /// Validates `bytes` and applies it, returning once it is committed (with the
    /// document's sequence number after it).
    pub(crate) async fn submit(
        self: &Arc<Self>,
        slot: &Arc<DocSlot>,
        bytes: Bytes,
        origin: OriginId,
        max: usize,
    ) -> Result<u64, DocError> {
        match self.enqueue(slot, bytes, origin, max)? {
            Some(commit) => commit.await.map_err(|_| DocError::Stopped)?,
            None => {
                let state = self.loaded(slot).await?;
                Ok(state.as_ref().map_or(0, |loaded| loaded.meta.last_seq))
            }
        }
    }

    /// Validates `bytes` and queues it for the document's writer, without waiting: the
    /// receiver answers once it is committed. `None` for an update that changes nothing.
    /// Errors are the update's own (too large, malformed); nothing was queued.
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        slot: &Arc<DocSlot>,
        bytes: Bytes,
        origin: OriginId,
        max: usize,
    ) -> Result<Option<Commit>, DocError> {
        let update = if bytes.len() > max {
            Err(DocError::UpdateTooLarge {
                len: bytes.len(),
                max,
            })
        } else {
            ydoc::decode_update(&bytes).map_err(|reason| DocError::MalformedUpdate { reason })
        };
        let update = match update {
            Ok(update) => update,
            Err(error) => {
                add(&self.counters.updates_rejected, 1);
                return Err(error);
            }
        };
        if update.is_empty() {
            return Ok(None);
        }
        let (reply, commit) = oneshot::channel();
        let start = slot.enqueue(PendingUpdate {
            bytes,
            update,
            origin,
            reply,
        });
        if start {
            tokio::spawn(writer::run(self.clone(), slot.clone()));
        }
        Ok(Some(commit))
    }
}

/// The writer's answer for one queued update: the document's sequence number after its
/// commit, or why it was not committed. Closed if the writer stopped without answering.
pub(crate) type Commit = oneshot::Receiver<Result<u64, DocError>>;

async fn sweep(inner: Weak<Inner>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.evict(true);
    }
}
