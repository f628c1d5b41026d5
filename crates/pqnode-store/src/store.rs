//! [`Store`]: the async handle callers hold.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::SystemTime;

use bytes::Bytes;
use pqnode_health::Health;
use tokio::sync::{mpsc, oneshot};

use crate::cache::{CacheReport, TtlCache};
use crate::fault::{Fault, Recovery};
use crate::file_identity::FileIdentity;
use crate::limits::{
    checked_entries, checked_key, checked_value, reserved_schema_key, writable_key,
};
use crate::open::{Opened, StoreOptions, open_database};
use crate::ops::WriteOp;
use crate::record::{Record, to_unix_ms};
use crate::stats::{Counters, StoreStats};
use crate::worker::{Command, ReadCache, Reply, Worker, Write};
use crate::{StoreError, Table};

/// The file name the node uses inside its data folder.
pub const DEFAULT_FILE_NAME: &str = "pqnode.redb";
/// Commands that may wait for the store thread before senders are made to wait.
const QUEUE_DEPTH: usize = 1024;

/// A handle to the node's store. Cloning is cheap; every clone talks to the same thread.
///
/// Each method sends one command to the store thread and awaits its reply. A write's future
/// resolves once the write is committed (durably, redb's default). Dropping a future after it
/// was first polled does not cancel its command.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The file opened, to notice it being deleted or replaced under the running node.
    file: FileIdentity,
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    read_cache: ReadCache,
    caches: Mutex<Vec<Weak<dyn CacheReport>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store at `path`, creating it if the file does not exist (its folder must).
    pub async fn open(path: impl Into<PathBuf>) -> Result<Store, StoreError> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// Opens the store at `path` with explicit options.
    ///
    /// Refuses, without writing to it, a file that is not a redb database, a redb database
    /// without a pqnode schema version, and a store written by a newer pqnode.
    pub async fn open_with(
        path: impl Into<PathBuf>,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let path = path.into();
        let counters = Arc::new(Counters::default());
        let read_cache = ReadCache::weighted(
            "store-reads",
            options.read_cache_bytes,
            options.read_cache_ttl,
            |(_, key), value| {
                let len = key.len() + value.as_ref().map_or(0, Bytes::len) + 64;
                u32::try_from(len).unwrap_or(u32::MAX)
            },
        );
        let (commands, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (opened, opening) = oneshot::channel();

        let worker_path = path.clone();
        let worker_counters = Arc::clone(&counters);
        let worker_cache = read_cache.clone();
        let thread = std::thread::Builder::new()
            .name("pqnode-store".into())
            .spawn(move || match open_database(&worker_path, &options) {
                Ok(Opened { db, file, repaired }) => {
                    if repaired {
                        worker_counters.repaired_on_open();
                    }
                    // If whoever asked for the store is gone, nobody can send it commands.
                    if opened.send(Ok(file)).is_ok() {
                        let worker = Worker {
                            db: Some(db),
                            path: worker_path,
                            file,
                            options,
                            counters: worker_counters,
                            read_cache: worker_cache,
                            last_recovery: None,
                            committed_len: std::cell::Cell::new(0),
                        };
                        worker.run(receiver);
                    }
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                }
            })
            .map_err(|error| StoreError::Open {
                path: path.clone(),
                source: error.into(),
            })?;

        let file = match opening.await {
            Ok(result) => result?,
            // The thread ended without answering: it panicked outside the guarded open.
            Err(_) => return Err(StoreError::OpenPanicked { path }),
        };
        tracing::debug!(path = %path.display(), "store open");
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                file,
                commands,
                counters,
                read_cache,
                caches: Mutex::new(Vec::new()),
                thread: Mutex::new(Some(thread)),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The value under `key`, served from the read cache when it can be (absent keys are
    /// cached too, so repeated lookups of a missing key stay off the store thread).
    pub async fn get(
        &self,
        table: Table,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>, StoreError> {
        if self.inner.commands.is_closed() {
            return Err(StoreError::Closed);
        }
        let cache_key = (table, checked_key(key.as_ref())?);
        if let Some(cached) = self.inner.read_cache.get(&cache_key) {
            return Ok(cached);
        }
        let (table, key) = cache_key;
        self.request(|reply| Command::Get { table, key, reply })
            .await
    }

    /// Writes one entry, replacing any value under `key`.
    pub async fn put(
        &self,
        table: Table,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
    ) -> Result<(), StoreError> {
        self.put_many(table, [(key, value)]).await
    }

    /// Writes many entries in one transaction: all of them are committed, or none.
    pub async fn put_many<K, V>(
        &self,
        table: Table,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), StoreError>
    where
        K: AsRef<[u8]>,
        V: Into<Bytes>,
    {
        let entries = checked_entries(table, entries)?;
        if entries.is_empty() {
            return Ok(());
        }
        self.write(WriteOp::Put { table, entries }).await?;
        Ok(())
    }

    /// Replaces everything in `table` with `entries`, in one transaction: for state saved as a
    /// whole, such as the routing table. Not allowed on [`Table::Meta`], which holds the
    /// schema version.
    pub async fn replace_all<K, V>(
        &self,
        table: Table,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), StoreError>
    where
        K: AsRef<[u8]>,
        V: Into<Bytes>,
    {
        if table == Table::Meta {
            return Err(reserved_schema_key());
        }
        let entries = checked_entries(table, entries)?;
        self.write(WriteOp::Replace { table, entries }).await?;
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub async fn delete(&self, table: Table, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        let key = writable_key(table, key.as_ref())?;
        Ok(self.write(WriteOp::Delete { table, key }).await? > 0)
    }

    /// Removes every key in each half-open range `[start, end)` of `table`, then writes
    /// `entries`, all in one transaction: every change is committed, or none. For state kept
    /// as many keys that change together (a document's log, snapshot and header). A range
    /// whose start is not below its end removes nothing. Returns how many entries were
    /// removed plus how many were written. Not allowed on [`Table::Meta`], which holds the
    /// schema version.
    pub async fn write_batch<K, V, R>(
        &self,
        table: Table,
        delete_ranges: impl IntoIterator<Item = (R, R)>,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<u64, StoreError>
    where
        K: AsRef<[u8]>,
        V: Into<Bytes>,
        R: AsRef<[u8]>,
    {
        if table == Table::Meta {
            return Err(reserved_schema_key());
        }
        let delete_ranges = delete_ranges
            .into_iter()
            .map(|(start, end)| Ok((checked_key(start.as_ref())?, checked_key(end.as_ref())?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let entries = checked_entries(table, entries)?;
        if delete_ranges.is_empty() && entries.is_empty() {
            return Ok(0);
        }
        self.write(WriteOp::Batch {
            table,
            delete_ranges,
            entries,
        })
        .await
    }

    /// Every entry of `table`, in key order. The whole result is held in memory: meant for
    /// tables the node keeps small (routing) or for prefixes that select a bounded part.
    pub async fn scan(&self, table: Table) -> Result<Vec<(Bytes, Bytes)>, StoreError> {
        self.scan_prefix(table, []).await
    }

    /// Every entry of `table` whose key starts with `prefix`, in key order.
    pub async fn scan_prefix(
        &self,
        table: Table,
        prefix: impl AsRef<[u8]>,
    ) -> Result<Vec<(Bytes, Bytes)>, StoreError> {
        let prefix = checked_key(prefix.as_ref())?;
        self.request(|reply| Command::Scan {
            table,
            prefix,
            reply,
        })
        .await
    }

    /// The `limit` entries with the greatest keys, greatest first: with time-ordered keys,
    /// the newest entries, without reading the rest of the table.
    pub async fn last_entries(
        &self,
        table: Table,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, StoreError> {
        self.request(|reply| Command::Last {
            table,
            before: None,
            limit,
            reply,
        })
        .await
    }

    /// The `limit` greatest entries with keys below `before`, greatest first: the next page
    /// after [`last_entries`](Self::last_entries) when `before` is the last key seen.
    pub async fn last_entries_before(
        &self,
        table: Table,
        before: impl AsRef<[u8]>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>, StoreError> {
        let before = Some(checked_key(before.as_ref())?);
        self.request(|reply| Command::Last {
            table,
            before,
            limit,
            reply,
        })
        .await
    }

    /// How many entries `table` holds (redb keeps the count: this does not scan).
    pub async fn len(&self, table: Table) -> Result<u64, StoreError> {
        self.request(|reply| Command::Len { table, reply }).await
    }

    /// Writes a DHT record into [`Table::Records`] that expires at `expires_at`, replacing any
    /// record (and expiry) under `key`.
    pub async fn put_record(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let op = WriteOp::PutRecord {
            key: checked_key(key.as_ref())?,
            value: checked_value(value.into())?,
            expires_at_ms: to_unix_ms(expires_at),
        };
        self.write(op).await?;
        Ok(())
    }

    /// The record under `key`, unless it has expired by `now`. Expiries have millisecond
    /// precision; a record is expired from its expiry instant on.
    pub async fn get_record(
        &self,
        key: impl AsRef<[u8]>,
        now: SystemTime,
    ) -> Result<Option<Record>, StoreError> {
        let key = checked_key(key.as_ref())?;
        let now_ms = to_unix_ms(now);
        self.request(|reply| Command::GetRecord { key, now_ms, reply })
            .await
    }

    /// Every record not expired by `now`, in key order (for republishing).
    pub async fn scan_records(&self, now: SystemTime) -> Result<Vec<(Bytes, Record)>, StoreError> {
        let now_ms = to_unix_ms(now);
        self.request(|reply| Command::ScanRecords { now_ms, reply })
            .await
    }

    /// Deletes every record expired by `now`, in one transaction; returns how many.
    pub async fn sweep_expired_records(&self, now: SystemTime) -> Result<u64, StoreError> {
        let now_ms = to_unix_ms(now);
        self.write(WriteOp::SweepExpired { now_ms }).await
    }

    /// Adds `cache` to the caches [`stats`](Self::stats) reports, for as long as it lives.
    pub fn register_cache<K, V>(&self, cache: &TtlCache<K, V>)
    where
        K: std::hash::Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.caches().push(cache.reporter());
    }

    /// A snapshot of the store. Fields the store thread must answer are `None` when it cannot.
    pub async fn stats(&self) -> StoreStats {
        let counts = self.request(|reply| Command::Count { reply }).await.ok();
        let file_size_bytes = std::fs::metadata(&self.inner.path)
            .map(|metadata| metadata.len())
            .ok();
        let mut caches = vec![self.inner.read_cache.stats()];
        {
            let mut registered = self.caches();
            registered.retain(|cache| cache.strong_count() > 0);
            caches.extend(
                registered
                    .iter()
                    .filter_map(Weak::upgrade)
                    .map(|cache| cache.report()),
            );
        }
        self.inner.counters.snapshot(
            self.inner.path.display().to_string(),
            file_size_bytes,
            counts,
            caches,
        )
    }

    /// Fails when the store is closed, its thread has stopped, the database file is gone or
    /// was replaced since open, or a fault is in force (a failed write or read, an I/O error
    /// or full disk, a panic inside redb), with the cause; passes otherwise. Live: every call
    /// looks at the file and the store thread's latest outcome.
    pub fn health(&self) -> Health {
        if self.inner.closed.load(Ordering::Acquire) {
            return Health::fail("the store is closed");
        }
        if self.inner.commands.is_closed() {
            return Health::fail("the store thread has stopped");
        }
        // Raised here too, so a deleted file stops acknowledgements before the next commit.
        if let Some(cause) = crate::file_identity::changed(&self.inner.path, self.inner.file) {
            self.inner
                .counters
                .raise(Fault::new(cause, Recovery::Restart));
        }
        match self.inner.counters.fault() {
            Some(fault) => Health::fail(match fault.recovery {
                Recovery::NextCommit => format!("the last operation failed: {}", fault.cause),
                Recovery::Reopen => format!("{} (retrying by itself)", fault.cause),
                Recovery::Restart => fault.cause,
            }),
            None => Health::pass(),
        }
    }

    /// Commits what is queued, closes the database and joins the store thread. The last step
    /// of a graceful shutdown: afterwards every handle answers [`StoreError::Closed`].
    /// Closing again does nothing.
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let closed = self.request(|reply| Command::Close { reply }).await;
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && let Ok(Err(_panic)) = tokio::task::spawn_blocking(move || thread.join()).await
        {
            tracing::error!("the store thread had panicked");
        }
        closed
    }

    async fn write(&self, op: WriteOp) -> Result<u64, StoreError> {
        self.request(|reply| Command::Write(Write { op, reply }))
            .await
    }

    async fn request<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, response) = oneshot::channel();
        self.inner
            .commands
            .send(command(reply))
            .await
            .map_err(|_| self.gone())?;
        response.await.map_err(|_| self.gone())?
    }

    /// Why a command got no answer: the store thread dropped it in a panic, or stopped.
    fn gone(&self) -> StoreError {
        match self.inner.counters.fault() {
            Some(fault) => StoreError::Unavailable { cause: fault.cause },
            None => StoreError::Closed,
        }
    }

    fn caches(&self) -> std::sync::MutexGuard<'_, Vec<Weak<dyn CacheReport>>> {
        self.inner
            .caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
