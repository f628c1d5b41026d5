//! The store thread. It owns the redb [`Database`], serves commands in the order they arrive,
//! and commits runs of consecutive writes in one transaction (group commit): under load many
//! callers share one `fsync`, and each still gets its reply only once its write is durable.
//!
//! The read cache is filled and invalidated only here, after each commit and before any reply,
//! so it never holds a value older than the last write a caller has seen acknowledged.
//!
//! It is also where faults are met. After every commit the thread checks that the database
//! file is still the one it opened, since a write into a deleted file is acknowledged by redb
//! but lost at the next start. A panic inside redb is caught per batch, so the callers of that
//! batch get an error instead of waiting forever. A fault that a reopen can clear (I/O error,
//! full disk, panic) is retried by the thread itself about once a second: reopen, let redb
//! check the file, commit a probe; until then every request fails fast with the cause.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use crate::cache::TtlCache;
use crate::fault::{Fault, Recovery, panic_message};
use crate::file_identity::FileIdentity;
use crate::open::{StoreOptions, open_database};
use crate::ops::{WriteOp, apply, count, get, get_record, last, len, scan, scan_records};
use crate::record::Record;
use crate::stats::{Counters, TableCounts};
use crate::table::PROBE_KEY;
use crate::{StoreError, Table};

/// How often a fault that a reopen may clear is retried.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);
/// How long the thread waits for a command between recovery attempts.
const FAULT_POLL: Duration = Duration::from_millis(50);

pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Cached results of [`Command::Get`], absent keys included.
pub(crate) type ReadCache = TtlCache<(Table, Bytes), Option<Bytes>>;

pub(crate) enum Command {
    Get {
        table: Table,
        key: Bytes,
        reply: Reply<Option<Bytes>>,
    },
    Scan {
        table: Table,
        prefix: Bytes,
        reply: Reply<Vec<(Bytes, Bytes)>>,
    },
    Last {
        table: Table,
        before: Option<Bytes>,
        limit: usize,
        reply: Reply<Vec<(Bytes, Bytes)>>,
    },
    Len {
        table: Table,
        reply: Reply<u64>,
    },
    GetRecord {
        key: Bytes,
        now_ms: u64,
        reply: Reply<Option<Record>>,
    },
    ScanRecords {
        now_ms: u64,
        reply: Reply<Vec<(Bytes, Record)>>,
    },
    Count {
        reply: Reply<TableCounts>,
    },
    Write(Write),
    Close {
        reply: Reply<()>,
    },
    /// Panics inside the batch, as redb may on a damaged file.
    #[cfg(test)]
    Panic {
        reply: Reply<()>,
    },
}

/// A write and where its outcome goes: the number of entries it wrote or removed.
pub(crate) struct Write {
    pub(crate) op: WriteOp,
    pub(crate) reply: Reply<u64>,
}

pub(crate) struct Worker {
    /// `None` while a fault has closed it and no reopen has succeeded yet.
    pub(crate) db: Option<Database>,
    pub(crate) path: PathBuf,
    /// The file opened; a reopen must find the same one.
    pub(crate) file: FileIdentity,
    pub(crate) options: StoreOptions,
    pub(crate) counters: Arc<Counters>,
    pub(crate) read_cache: ReadCache,
    pub(crate) last_recovery: Option<Instant>,
    /// The file's length after the last commit: it must not shrink before the next one.
    pub(crate) committed_len: Cell<u64>,
}

/// What ends the serving loop.
enum Flow {
    Continue,
    Closed,
}

impl Worker {
    /// Serves until every handle is dropped or a [`Command::Close`] arrives.
    pub(crate) fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let max_group = self.options.max_group.max(1);
        let mut queue = Vec::with_capacity(max_group);
        loop {
            let first = if self.recovering() {
                self.try_recover();
                match commands.try_recv() {
                    Ok(command) => command,
                    Err(TryRecvError::Empty) => {
                        std::thread::sleep(FAULT_POLL);
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match commands.blocking_recv() {
                    Some(command) => command,
                    None => break,
                }
            };
            queue.push(first);
            while queue.len() < max_group {
                match commands.try_recv() {
                    Ok(command) => queue.push(command),
                    Err(_) => break,
                }
            }
            let batch = std::mem::take(&mut queue);
            // A panic inside redb drops this batch's reply senders, so its callers get an
            // error, not a hang; the database is closed and the thread recovers as above.
            match catch_unwind(AssertUnwindSafe(|| self.serve_batch(batch, &mut commands))) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Closed) => return,
                Err(payload) => {
                    let cause = format!("redb panicked: {}", panic_message(payload.as_ref()));
                    self.counters.panicked(Fault::new(cause, Recovery::Reopen));
                    self.close_db();
                }
            }
        }
        self.close_db();
    }

    fn serve_batch(&mut self, batch: Vec<Command>, commands: &mut mpsc::Receiver<Command>) -> Flow {
        let mut writes = Vec::new();
        // Reads between two writes share one snapshot: it sees exactly what a fresh one would,
        // since every write goes through this thread.
        let mut snapshot = None;
        for command in batch {
            match command {
                Command::Write(write) => writes.push(write),
                Command::Close { reply } => {
                    self.flush(&mut writes);
                    drop(snapshot);
                    // Whatever is still queued is dropped, and its callers see `Closed`.
                    commands.close();
                    let closed = match self.db.take() {
                        Some(db) => db.close().map_err(StoreError::from),
                        None => Ok(()),
                    };
                    let _ = reply.send(closed);
                    return Flow::Closed;
                }
                read => {
                    if !writes.is_empty() {
                        self.flush(&mut writes);
                        snapshot = None;
                    }
                    self.serve(read, &mut snapshot);
                }
            }
        }
        self.flush(&mut writes);
        // An open read transaction keeps old pages from being reused: never hold one idle.
        Flow::Continue
    }

    fn flush(&self, writes: &mut Vec<Write>) {
        if writes.is_empty() {
            return;
        }
        if let Some(error) = self.refusal() {
            for write in writes.drain(..) {
                let _ = write.reply.send(Err(error.clone_unavailable()));
            }
            return;
        }
        if writes.len() > 1 {
            let mut touched = Vec::new();
            let grouped = self.commit(writes.len(), |txn| {
                writes
                    .iter()
                    .map(|write| apply(txn, &write.op, &mut touched))
                    .collect::<Result<Vec<u64>, StoreError>>()
            });
            self.invalidate(&touched);
            match grouped {
                Ok(counts) => {
                    for (write, count) in writes.drain(..).zip(counts) {
                        let _ = write.reply.send(Ok(count));
                    }
                    return;
                }
                // The disk or the file failed: retrying each alone would fail the same way.
                Err(error)
                    if self
                        .counters
                        .fault()
                        .is_some_and(|f| f.recovery != Recovery::NextCommit) =>
                {
                    for write in writes.drain(..) {
                        let _ = write.reply.send(Err(error.clone_unavailable()));
                    }
                    return;
                }
                // One bad write must not fail its neighbours: retry each alone, so every
                // caller gets its own outcome.
                Err(_) => {}
            }
        }
        for write in writes.drain(..) {
            let mut touched = Vec::new();
            let result = self.commit(1, |txn| apply(txn, &write.op, &mut touched));
            self.invalidate(&touched);
            let _ = write.reply.send(result);
        }
    }

    /// Commits `body` in one write transaction. Failures are raised as faults here, and a
    /// commit into a file that is no longer at the store's path is reported as a failure.
    fn commit<T>(
        &self,
        writes: usize,
        body: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = self
            .check_file(true)
            .and_then(|()| self.try_commit(body))
            .and_then(|value| {
                // The commit itself may have shrunk the file (redb trims free pages at its end).
                self.check_file(false)?;
                Ok(value)
            });
        match &result {
            Ok(_) => self.counters.committed(writes, started.elapsed()),
            Err(error) => self.counters.failed(error),
        }
        result
    }

    fn try_commit<T>(
        &self,
        body: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.db.as_ref().ok_or(StoreError::Closed)?;
        let txn = db.begin_write()?;
        let value = match body(&txn) {
            Ok(value) => value,
            Err(error) => {
                if let Err(abort) = txn.abort() {
                    tracing::debug!(error = %abort, "aborting a store transaction failed");
                }
                return Err(error);
            }
        };
        txn.commit()?;
        Ok(value)
    }

    /// Fails when the path no longer names the file this store writes to or, with
    /// `since_commit`, when something cut the file short since the store's last commit.
    /// Checked before (with) and after (without) every commit.
    fn check_file(&self, since_commit: bool) -> Result<(), StoreError> {
        let committed = match since_commit {
            true => self.committed_len.get(),
            false => 0,
        };
        match crate::file_identity::check(&self.path, self.file, committed) {
            Ok(len) => {
                self.committed_len.set(len);
                Ok(())
            }
            Err(cause) => {
                self.counters
                    .raise(Fault::new(cause.clone(), Recovery::Restart));
                Err(StoreError::Unavailable { cause })
            }
        }
    }

    /// The error every request gets while a fault keeps the database closed or untrusted.
    fn refusal(&self) -> Option<StoreError> {
        let fault = self.counters.fault()?;
        match fault.recovery {
            Recovery::NextCommit => None,
            Recovery::Reopen | Recovery::Restart => {
                Some(StoreError::Unavailable { cause: fault.cause })
            }
        }
    }

    fn recovering(&self) -> bool {
        self.counters
            .fault()
            .is_some_and(|f| f.recovery == Recovery::Reopen)
    }

    /// Reopens the database, lets redb check it, and proves it writable with a probe commit.
    /// At most once per [`RECOVERY_INTERVAL`]; a failure leaves the fault in force.
    fn try_recover(&mut self) {
        if self
            .last_recovery
            .is_some_and(|at| at.elapsed() < RECOVERY_INTERVAL)
        {
            return;
        }
        self.last_recovery = Some(Instant::now());
        if self.check_file(true).is_err() {
            return;
        }
        self.close_db();
        let options = StoreOptions {
            create: false,
            verify_on_open: true,
            ..self.options.clone()
        };
        let opened = match open_database(&self.path, &options) {
            Ok(opened) if opened.file == self.file => opened,
            Ok(_) => {
                self.counters.raise(Fault::new(
                    format!("database file {} was replaced", self.path.display()),
                    Recovery::Restart,
                ));
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "reopening the store failed; will retry");
                return;
            }
        };
        self.db = Some(opened.db);
        // redb may have repaired (and trimmed) the file on the way: its length starts over.
        self.committed_len.set(0);
        // Cached reads may predate the fault; the file is the truth now.
        self.read_cache.invalidate_all();
        let probe = catch_unwind(AssertUnwindSafe(|| self.probe()));
        match probe {
            Ok(Ok(())) => self.counters.recovered(),
            Ok(Err(error)) => {
                tracing::debug!(%error, "the store's probe write failed; will retry");
                self.close_db();
            }
            Err(_) => self.close_db(),
        }
    }

    /// One small durable commit, to prove the disk takes writes again.
    fn probe(&self) -> Result<(), StoreError> {
        let now_ms = crate::record::to_unix_ms(SystemTime::now());
        self.try_commit(|txn| {
            txn.open_table(Table::Meta.definition())?
                .insert(PROBE_KEY, now_ms.to_be_bytes().as_slice())?;
            Ok(())
        })?;
        self.check_file(false)
    }

    /// Drops the database; redb's own drop may panic on a broken file, which is contained.
    fn close_db(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(db)));
        }
    }

    fn invalidate(&self, touched: &[(Table, Bytes)]) {
        // Only this thread inserts, so a key absent now cannot appear before the next insert
        // here; skipping moka's costlier invalidate for it keeps large batches fast.
        for key in touched {
            if self.read_cache.contains(key) {
                self.read_cache.invalidate(key);
            }
        }
    }

    fn serve(&self, command: Command, snapshot: &mut Option<ReadTransaction>) {
        if let Some(error) = self.refusal() {
            return self.fail(command, error);
        }
        if snapshot.is_none() {
            let Some(db) = self.db.as_ref() else {
                return self.fail(command, StoreError::Closed);
            };
            match db.begin_read() {
                Ok(txn) => *snapshot = Some(txn),
                Err(error) => {
                    let error = StoreError::from(error);
                    self.counters.failed(&error);
                    return self.fail(command, error);
                }
            }
        }
        let Some(txn) = snapshot.as_ref() else {
            return self.fail(command, StoreError::Closed);
        };
        match command {
            #[cfg(test)]
            Command::Panic { .. } => panic!("injected by a test"),
            Command::Get { table, key, reply } => {
                let result = get(txn, table, &key);
                if let Ok(value) = &result {
                    self.read_cache.insert((table, key), value.clone());
                }
                self.answer(reply, result);
            }
            Command::Scan {
                table,
                prefix,
                reply,
            } => self.answer(reply, scan(txn, table, &prefix)),
            Command::Last {
                table,
                before,
                limit,
                reply,
            } => self.answer(reply, last(txn, table, before.as_deref(), limit)),
            Command::Len { table, reply } => self.answer(reply, len(txn, table)),
            Command::GetRecord { key, now_ms, reply } => {
                self.answer(reply, get_record(txn, &key, now_ms))
            }
            Command::ScanRecords { now_ms, reply } => self.answer(reply, scan_records(txn, now_ms)),
            Command::Count { reply } => self.answer(reply, count(txn)),
            // `serve_batch` handles both itself; answering keeps a caller from waiting
            // forever should that ever change.
            command @ (Command::Write(_) | Command::Close { .. }) => {
                self.fail(command, StoreError::Closed)
            }
        }
    }

    fn fail(&self, command: Command, error: StoreError) {
        match command {
            Command::Get { reply, .. } => self.send(reply, Err(error)),
            Command::Scan { reply, .. } => self.send(reply, Err(error)),
            Command::Last { reply, .. } => self.send(reply, Err(error)),
            Command::Len { reply, .. } => self.send(reply, Err(error)),
            Command::GetRecord { reply, .. } => self.send(reply, Err(error)),
            Command::ScanRecords { reply, .. } => self.send(reply, Err(error)),
            Command::Count { reply } => self.send(reply, Err(error)),
            Command::Write(write) => self.send(write.reply, Err(error)),
            Command::Close { reply } => self.send(reply, Err(error)),
            #[cfg(test)]
            Command::Panic { reply } => self.send(reply, Err(error)),
        }
    }

    /// Replies with the result of a read; a failed read is a fault like a failed write.
    fn answer<T>(&self, reply: Reply<T>, result: Result<T, StoreError>) {
        if let Err(error) = &result {
            self.counters.failed(error);
        }
        self.send(reply, result);
    }

    fn send<T>(&self, reply: Reply<T>, result: Result<T, StoreError>) {
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker over a file whose `routing` table has the wrong types, so every write to
    /// [`Table::Routing`] fails inside redb while writes to other tables succeed.
    fn worker_with_a_broken_table(dir: &tempfile::TempDir) -> Worker {
        let db = Database::create(dir.path().join("broken.redb")).expect("create");
        let txn = db.begin_write().expect("begin");
        txn.open_table(redb::TableDefinition::<u64, u64>::new("routing"))
            .expect("open");
        for table in [Table::Messages, Table::Documents] {
            txn.open_table(table.definition()).expect("open");
        }
        txn.commit().expect("commit");
        let path = dir.path().join("broken.redb");
        Worker {
            db: Some(db),
            file: FileIdentity::of(&path).expect("stat"),
            path,
            options: StoreOptions::default(),
            counters: Arc::new(Counters::default()),
            read_cache: ReadCache::new("reads", 100, Duration::from_secs(60)),
            last_recovery: None,
            committed_len: Cell::new(0),
        }
    }

    fn put(
        table: Table,
        key: &'static [u8],
    ) -> (Write, oneshot::Receiver<Result<u64, StoreError>>) {
        let (reply, outcome) = oneshot::channel();
        let op = WriteOp::Put {
            table,
            entries: vec![(Bytes::from_static(key), Bytes::from_static(b"v"))],
        };
        (Write { op, reply }, outcome)
    }

    fn read(worker: &Worker, table: Table, key: &[u8]) -> Option<Bytes> {
        let txn = worker
            .db
            .as_ref()
            .expect("open")
            .begin_read()
            .expect("begin");
        get(&txn, table, key).expect("read")
    }

    #[test]
    fn a_failing_write_in_a_group_fails_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let worker = worker_with_a_broken_table(&dir);
        let (first, first_outcome) = put(Table::Messages, b"a");
        let (bad, bad_outcome) = put(Table::Routing, b"b");
        let (last, last_outcome) = put(Table::Documents, b"c");

        worker.flush(&mut vec![first, bad, last]);

        assert_eq!(
            first_outcome
                .blocking_recv()
                .expect("reply")
                .expect("write"),
            1
        );
        assert!(bad_outcome.blocking_recv().expect("reply").is_err());
        assert_eq!(
            last_outcome.blocking_recv().expect("reply").expect("write"),
            1
        );
        assert_eq!(read(&worker, Table::Messages, b"a"), Some(Bytes::from("v")));
        assert_eq!(
            read(&worker, Table::Documents, b"c"),
            Some(Bytes::from("v"))
        );
        // Health reports the latest write, and the last one retried succeeded.
        assert!(worker.counters.fault().is_none());
    }

    #[test]
    fn a_panic_fails_its_batch_and_the_thread_reopens_the_file_by_itself() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.redb");
        let opened = open_database(&path, &StoreOptions::default()).expect("open");
        let counters = Arc::new(Counters::default());
        let worker = Worker {
            db: Some(opened.db),
            file: opened.file,
            path,
            options: StoreOptions::default(),
            counters: counters.clone(),
            read_cache: ReadCache::new("reads", 100, Duration::from_secs(60)),
            last_recovery: None,
            committed_len: Cell::new(0),
        };
        let (commands, receiver) = mpsc::channel(16);
        let thread = std::thread::spawn(move || worker.run(receiver));

        let (reply, panicked) = oneshot::channel();
        commands
            .blocking_send(Command::Panic { reply })
            .expect("send");
        assert!(panicked.blocking_recv().is_err(), "the caller is released");

        // The fault may clear again before a poll sees it: the counters tell that it was raised.
        let deadline = Instant::now() + Duration::from_secs(5);
        while counters.reopens() == 0 || counters.fault().is_some() {
            assert!(Instant::now() < deadline, "never recovered");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (errors, last_error) = counters.errors();
        assert_eq!(errors, 1);
        assert!(last_error.is_some_and(|e| e.contains("panicked")));
        let (write, written) = put(Table::Messages, b"after");
        commands.blocking_send(Command::Write(write)).expect("send");
        assert_eq!(written.blocking_recv().expect("reply").expect("write"), 1);
        assert_eq!(counters.reopens(), 1);

        drop(commands);
        thread
            .join()
            .expect("the thread ends when the handles are gone");
    }

    #[test]
    fn a_failed_write_is_reported_until_a_write_succeeds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let worker = worker_with_a_broken_table(&dir);
        let (bad, _) = put(Table::Routing, b"b");
        worker.flush(&mut vec![bad]);
        assert!(worker.counters.fault().is_some());

        let (good, _) = put(Table::Messages, b"a");
        worker.flush(&mut vec![good]);
        assert!(worker.counters.fault().is_none());
    }
}
