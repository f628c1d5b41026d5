//! What the store reports: counters shared with its thread, and the serializable snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

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
    status: Mutex<Status>,
}

#[derive(Debug, Default)]
struct Status {
    last_commit: Option<Duration>,
    last_error: Option<String>,
    /// Set by a failed write, cleared by the next successful one.
    last_write_failed: bool,
}

impl Counters {
    pub(crate) fn committed(&self, writes: usize, took: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes
            .fetch_add(u64::try_from(writes).unwrap_or(u64::MAX), Ordering::Relaxed);
        let mut status = self.status();
        status.last_commit = Some(took);
        status.last_write_failed = false;
    }

    pub(crate) fn write_failed(&self, error: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut status = self.status();
        status.last_error = Some(error.to_string());
        status.last_write_failed = true;
    }

    pub(crate) fn read_failed(&self, error: &StoreError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.status().last_error = Some(error.to_string());
    }

    /// The error of the latest write, if that write failed.
    pub(crate) fn failed_write(&self) -> Option<String> {
        let status = self.status();
        if status.last_write_failed {
            status.last_error.clone()
        } else {
            None
        }
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
            caches,
        }
    }

    // The lock guards plain data that every writer leaves consistent, so a panic elsewhere
    // while it was held does not make it unusable.
    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
