//! [`DocSlot`]: one document's place in memory: its state (loaded lazily), the updates
//! waiting to be applied, its broadcast channel and its awareness.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::{broadcast, oneshot};
use yrs::{Doc, Update};

use crate::hub::{DocEvent, OriginId};
use crate::keys::DocMeta;
use crate::{DocError, DocName};

/// A document in memory and the header it was committed with.
pub(crate) struct Loaded {
    pub(crate) doc: Doc,
    pub(crate) meta: DocMeta,
}

impl Loaded {
    pub(crate) fn empty() -> Self {
        Self {
            doc: Doc::new(),
            meta: DocMeta::default(),
        }
    }
}

/// An update waiting for the document's writer.
pub(crate) struct PendingUpdate {
    pub(crate) bytes: Bytes,
    pub(crate) update: Update,
    pub(crate) origin: OriginId,
    pub(crate) reply: oneshot::Sender<Result<u64, DocError>>,
}

#[derive(Default)]
struct Pending {
    queue: VecDeque<PendingUpdate>,
    /// A writer task is draining the queue.
    running: bool,
}

pub(crate) struct DocSlot {
    pub(crate) name: DocName,
    /// `None` until loaded, and again after a failure left memory behind the store. Held while
    /// a batch is applied and committed, so whoever reads under it sees only durable state.
    pub(crate) state: tokio::sync::Mutex<Option<Loaded>>,
    pending: Mutex<Pending>,
    /// Boxed so that the slots the channel preallocates stay small: 40 bytes each instead
    /// of 120, which is most of what an idle loaded document costs.
    pub(crate) events: broadcast::Sender<Arc<DocEvent>>,
    pub(crate) awareness: Mutex<yrs::sync::Awareness>,
    /// Milliseconds since the engine started, at the last use.
    last_used: AtomicU64,
    /// Stored bytes of the loaded document (0 while not loaded), for the memory budget.
    pub(crate) stored_bytes: AtomicU64,
}

impl DocSlot {
    pub(crate) fn new(name: DocName, capacity: usize, now_ms: u64) -> Self {
        Self {
            name,
            state: tokio::sync::Mutex::new(None),
            pending: Mutex::new(Pending::default()),
            events: broadcast::channel(capacity).0,
            awareness: Mutex::new(yrs::sync::Awareness::new(Doc::new())),
            last_used: AtomicU64::new(now_ms),
            stored_bytes: AtomicU64::new(0),
        }
    }

    pub(crate) fn touch(&self, now_ms: u64) {
        self.last_used.fetch_max(now_ms, Ordering::Relaxed);
    }

    pub(crate) fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    pub(crate) fn set_loaded(&self, state: &Option<Loaded>) {
        let bytes = state
            .as_ref()
            .map_or(0, |loaded| loaded.meta.stored_bytes());
        self.stored_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Queues `update`; true when no writer is running, so the caller must start one.
    pub(crate) fn enqueue(&self, update: PendingUpdate) -> bool {
        let mut pending = self.pending();
        pending.queue.push_back(update);
        !std::mem::replace(&mut pending.running, true)
    }

    /// Up to `max` queued updates; none when the queue is empty, and then the writer must stop
    /// (it is marked stopped here, under the same lock `enqueue` takes).
    pub(crate) fn take_batch(&self, max: usize) -> Vec<PendingUpdate> {
        let mut pending = self.pending();
        let take = pending.queue.len().min(max);
        if take == 0 {
            pending.running = false;
        }
        pending.queue.drain(..take).collect()
    }

    pub(crate) fn awareness(&self) -> MutexGuard<'_, yrs::sync::Awareness> {
        self.awareness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Held by a writer task: if the task unwinds, the queue is failed (its callers get
/// [`DocError::Stopped`]) and the next update starts a new writer instead of waiting forever.
pub(crate) struct WriterGuard<'a>(pub(crate) &'a DocSlot);

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut pending = self.0.pending();
            pending.queue.clear();
            pending.running = false;
        }
    }
}
