//! What the store reports: counters shared with its thread, and the serializable snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::fault::{Fault, Recovery};
use crate::{CacheStats, SCHEMA_VERSION, StoreError, Table};

/// A snapshot of the store, for `/api/stats` and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStats {
    /// The database file.
    pub path: String,
    /// The schema version the file carries (this build's [`SCHEMA_VERSION`]).
    pub schema_version: u64,
    /// Its size on disk; `None` when it cannot be read (for example, the file is gone).
    pub file_size_bytes: Option<u64>,
    /// Entries per table; `None` when the store thread cannot answer (see `health`).
    pub entries: Option<BTreeMap<Table, u64>>,
    /// Records in [`Table::Records`] that carry an expiry.
    pub expiring_records: Option<u64>,
    /// Write transactions committed since open.
    pub commits: u64,
    /// Write operations committed since open; more than `commits` when writes were grouped.
    pub writes: u64,
    /// How long the latest commit took, including its `fsync`.
    pub last_commit_micros: Option<u64>,
    /// Failed operations since open.
    pub errors: u64,
    /// The latest failure, if any.
    pub last_error: Option<String>,
    /// Times the store thread reopened the database to recover from a fault.
    pub reopens: u64,
    /// Whether redb repaired the file when it was opened (after an unclean shutdown).
    pub repaired_on_open: bool,
    /// The store's read cache and every cache registered with it.
    pub caches: Vec<CacheStats>,
}

/// Table sizes, counted on the store thread.
#[derive(Debug)]
pub(crate) struct TableCounts {
    pub(crate) entries: BTreeMap<Table, u64>,
    pub(crate) expiring_records: u64,
}

/// Counters the store thread writes and any handle reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
    errors: AtomicU64,
    reopens: AtomicU64,
    repaired_on_open: std::sync::atomic::AtomicBool,
    status: Mutex<Status>,
}

#[derive(Debug, Default)]
struct Status {
    last_commit: Option<Duration>,
    last_error: Option<String>,
    fault: Option<Fault>,
}

impl Counters {
    pub(crate) fn committed(&self, writes: usize, took: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes
            .fetch_add(u64::try_from(writes).unwrap_or(u64::MAX), Ordering::Relaxed);
        let mut status = self.status();
        status.last_commit = Some(took);
        if status
            .fault
            .as_ref()
            .is_some_and(|f| f.recovery == Recovery::NextCommit)
        {
            clear(&mut status);
        }
    }

    /// An operation failed: counted, and raised as a fault.
    pub(crate) fn failed(&self, error: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.status().last_error = Some(error.to_string());
        self.raise(Fault::from_error(error));
    }

    /// The store thread caught a panic: counted like a failed operation.
    pub(crate) fn panicked(&self, fault: Fault) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.status().last_error = Some(fault.cause.clone());
        self.raise(fault);
    }

    /// Raises `fault` unless one at least as grave is already raised. Logged only when the
    /// store goes from healthy to faulty or the fault gets graver, never per request.
    pub(crate) fn raise(&self, fault: Fault) {
        let mut status = self.status();
        let graver = status
            .fault
            .as_ref()
            .is_none_or(|current| severity(fault.recovery) > severity(current.recovery));
        if graver {
            tracing::error!(cause = %fault.cause, recovery = ?fault.recovery, "the store is failing");
            status.fault = Some(fault);
        }
    }

    /// The fault was repaired (the store thread reopened and probed the database).
    pub(crate) fn recovered(&self) {
        self.reopens.fetch_add(1, Ordering::Relaxed);
        clear(&mut self.status());
    }

    #[cfg(test)]
    pub(crate) fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn errors(&self) -> (u64, Option<String>) {
        let last = self.status().last_error.clone();
        (self.errors.load(Ordering::Relaxed), last)
    }

    pub(crate) fn repaired_on_open(&self) {
        self.repaired_on_open.store(true, Ordering::Relaxed);
    }

    /// The fault in force, if any.
    pub(crate) fn fault(&self) -> Option<Fault> {
        self.status().fault.clone()
    }

    pub(crate) fn snapshot(
        &self,
        path: String,
        file_size_bytes: Option<u64>,
        counts: Option<TableCounts>,
        caches: Vec<CacheStats>,
    ) -> StoreStats {
        let status = self.status();
        let (entries, expiring_records) = match counts {
            Some(counts) => (Some(counts.entries), Some(counts.expiring_records)),
            None => (None, None),
        };
        StoreStats {
            path,
            schema_version: SCHEMA_VERSION,
            file_size_bytes,
            entries,
            expiring_records,
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            last_commit_micros: status
                .last_commit
                .map(|took| u64::try_from(took.as_micros()).unwrap_or(u64::MAX)),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: status.last_error.clone(),
            reopens: self.reopens.load(Ordering::Relaxed),
            repaired_on_open: self.repaired_on_open.load(Ordering::Relaxed),
            caches,
        }
    }

    // The lock guards plain data that every writer leaves consistent, so a panic elsewhere
    // while it was held does not make it unusable.
    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn severity(recovery: Recovery) -> u8 {
    match recovery {
        Recovery::NextCommit => 0,
        Recovery::Reopen => 1,
        Recovery::Restart => 2,
    }
}

fn clear(status: &mut Status) {
    if let Some(fault) = status.fault.take() {
        let lasted_ms = fault
            .since
            .elapsed()
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        tracing::info!(cause = %fault.cause, lasted_ms, "the store recovered");
    }
}
