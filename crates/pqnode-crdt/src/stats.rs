//! Counters of the document engine, and their snapshot [`CrdtStats`].

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) documents: AtomicU64,
    pub(crate) updates_applied: AtomicU64,
    pub(crate) update_bytes: AtomicU64,
    pub(crate) updates_rejected: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) commit_failures: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) sessions_open: AtomicU64,
    pub(crate) sessions_total: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) awareness_updates: AtomicU64,
    pub(crate) ignored_messages: AtomicU64,
}

/// A snapshot of the engine since start (`documents`, `loaded*` and `syncSessions` are
/// current values; the rest count up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrdtStats {
    /// Documents in the store.
    pub documents: u64,
    /// Documents in memory.
    pub loaded_docs: u64,
    /// The stored size of the documents in memory, in bytes.
    pub loaded_bytes: u64,
    /// Updates committed and acknowledged.
    pub updates_applied: u64,
    /// Bytes of those updates.
    pub update_bytes: u64,
    /// Updates refused (too large, malformed, rejected by the CRDT, store failure).
    pub updates_rejected: u64,
    /// Store commits of updates (each may carry a batch of updates).
    pub commits: u64,
    /// Commits the store refused; their updates were not acknowledged.
    pub commit_failures: u64,
    /// Snapshots written (each folds the updates logged before it).
    pub compactions: u64,
    /// Documents read from the store into memory.
    pub loads: u64,
    /// Documents dropped from memory after idling.
    pub evictions: u64,
    /// Sync sessions open now.
    pub sync_sessions: u64,
    /// Sync sessions opened since start.
    pub sessions_total: u64,
    /// Protocol frames received from sessions.
    pub frames_in: u64,
    /// Bytes of those frames.
    pub bytes_in: u64,
    /// Protocol frames sent to sessions.
    pub frames_out: u64,
    /// Bytes of those frames.
    pub bytes_out: u64,
    /// Awareness updates relayed (not stored).
    pub awareness_updates: u64,
    /// Auth and unknown messages, which sessions ignore.
    pub ignored_messages: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self, loaded_docs: u64, loaded_bytes: u64) -> CrdtStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CrdtStats {
            documents: load(&self.documents),
            loaded_docs,
            loaded_bytes,
            updates_applied: load(&self.updates_applied),
            update_bytes: load(&self.update_bytes),
            updates_rejected: load(&self.updates_rejected),
            commits: load(&self.commits),
            commit_failures: load(&self.commit_failures),
            compactions: load(&self.compactions),
            loads: load(&self.loads),
            evictions: load(&self.evictions),
            sync_sessions: load(&self.sessions_open),
            sessions_total: load(&self.sessions_total),
            frames_in: load(&self.frames_in),
            bytes_in: load(&self.bytes_in),
            frames_out: load(&self.frames_out),
            bytes_out: load(&self.bytes_out),
            awareness_updates: load(&self.awareness_updates),
            ignored_messages: load(&self.ignored_messages),
        }
    }
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    // Never below zero, even if a decrement races an initial count.
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}
