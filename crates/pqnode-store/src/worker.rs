//! The store thread. It owns the redb [`Database`], serves commands in the order they arrive,
//! and commits runs of consecutive writes in one transaction (group commit): under load many
//! callers share one `fsync`, and each still gets its reply only once its write is durable.
//!
//! The read cache is filled and invalidated only here, after each commit and before any reply,
//! so it never holds a value older than the last write a caller has seen acknowledged.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use crate::cache::TtlCache;
use crate::ops::{WriteOp, apply, count, get, get_record, last, len, scan, scan_records};
use crate::record::Record;
use crate::stats::{Counters, TableCounts};
use crate::{StoreError, Table};

/// Most commands taken off the queue at once: bounds a group commit.
const MAX_GROUP: usize = 256;

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
}

/// A write and where its outcome goes: the number of entries it wrote or removed.
pub(crate) struct Write {
    pub(crate) op: WriteOp,
    pub(crate) reply: Reply<u64>,
}

pub(crate) struct Worker {
    pub(crate) db: Database,
    pub(crate) counters: Arc<Counters>,
    pub(crate) read_cache: ReadCache,
}

impl Worker {
    /// Serves until every handle is dropped or a [`Command::Close`] arrives.
    pub(crate) fn run(self, mut commands: mpsc::Receiver<Command>) {
        let mut queue = Vec::with_capacity(MAX_GROUP);
        let mut writes = Vec::new();
        // Reads between two writes share one snapshot: it sees exactly what a fresh one would,
        // since every write goes through this thread.
        let mut snapshot = None;
        while let Some(first) = commands.blocking_recv() {
            queue.push(first);
            while queue.len() < MAX_GROUP {
                match commands.try_recv() {
                    Ok(command) => queue.push(command),
                    Err(_) => break,
                }
            }
            for command in queue.drain(..) {
                match command {
                    Command::Write(write) => writes.push(write),
                    Command::Close { reply } => {
                        self.flush(&mut writes);
                        drop(snapshot);
                        // Whatever is still queued is dropped, and its callers see `Closed`.
                        commands.close();
                        let _ = reply.send(self.db.close().map_err(StoreError::from));
                        return;
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
            snapshot = None;
        }
    }

    fn flush(&self, writes: &mut Vec<Write>) {
        if writes.len() > 1 {
            let mut touched = Vec::new();
            let grouped = self.commit(writes.len(), |txn| {
                writes
                    .iter()
                    .map(|write| apply(txn, &write.op, &mut touched))
                    .collect::<Result<Vec<u64>, StoreError>>()
            });
            self.invalidate(&touched);
            if let Ok(counts) = grouped {
                for (write, count) in writes.drain(..).zip(counts) {
                    let _ = write.reply.send(Ok(count));
                }
                return;
            }
            // One bad write must not fail its neighbours: retry each alone, so every caller
            // gets its own outcome.
        }
        for write in writes.drain(..) {
            let mut touched = Vec::new();
            let result = self.commit(1, |txn| apply(txn, &write.op, &mut touched));
            self.invalidate(&touched);
            if let Err(error) = &result {
                tracing::warn!(%error, "store write failed");
                self.counters.write_failed(error);
            }
            let _ = write.reply.send(result);
        }
    }

    fn commit<T>(
        &self,
        writes: usize,
        body: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let txn = self.db.begin_write()?;
        let value = match body(&txn) {
            Ok(value) => value,
            Err(error) => {
                if let Err(abort) = txn.abort() {
                    tracing::warn!(error = %abort, "aborting a store transaction failed");
                }
                return Err(error);
            }
        };
        txn.commit()?;
        self.counters.committed(writes, started.elapsed());
        Ok(value)
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
        if snapshot.is_none() {
            match self.db.begin_read() {
                Ok(txn) => *snapshot = Some(txn),
                Err(error) => return self.fail(command, error.into()),
            }
        }
        let Some(txn) = snapshot.as_ref() else {
            return self.fail(command, StoreError::Closed);
        };
        match command {
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
                limit,
                reply,
            } => self.answer(reply, last(txn, table, limit)),
            Command::Len { table, reply } => self.answer(reply, len(txn, table)),
            Command::GetRecord { key, now_ms, reply } => {
                self.answer(reply, get_record(txn, &key, now_ms))
            }
            Command::ScanRecords { now_ms, reply } => self.answer(reply, scan_records(txn, now_ms)),
            Command::Count { reply } => self.answer(reply, count(txn)),
            // `run` handles both itself; answering keeps a caller from waiting forever should
            // that ever change.
            command @ (Command::Write(_) | Command::Close { .. }) => {
                self.fail(command, StoreError::Closed)
            }
        }
    }

    fn fail(&self, command: Command, error: StoreError) {
        match command {
            Command::Get { reply, .. } => self.answer(reply, Err(error)),
            Command::Scan { reply, .. } => self.answer(reply, Err(error)),
            Command::Last { reply, .. } => self.answer(reply, Err(error)),
            Command::Len { reply, .. } => self.answer(reply, Err(error)),
            Command::GetRecord { reply, .. } => self.answer(reply, Err(error)),
            Command::ScanRecords { reply, .. } => self.answer(reply, Err(error)),
            Command::Count { reply } => self.answer(reply, Err(error)),
            Command::Write(write) => {
                let _ = write.reply.send(Err(error));
            }
            Command::Close { reply } => {
                let _ = reply.send(Err(error));
            }
        }
    }

    fn answer<T>(&self, reply: Reply<T>, result: Result<T, StoreError>) {
        if let Err(error) = &result {
            tracing::warn!(%error, "store read failed");
            self.counters.read_failed(error);
        }
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        Worker {
            db,
            counters: Arc::new(Counters::default()),
            read_cache: ReadCache::new("reads", 100, Duration::from_secs(60)),
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
        let txn = worker.db.begin_read().expect("begin");
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
        assert!(worker.counters.failed_write().is_none());
    }

    #[test]
    fn a_failed_write_is_reported_until_a_write_succeeds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let worker = worker_with_a_broken_table(&dir);
        let (bad, _) = put(Table::Routing, b"b");
        worker.flush(&mut vec![bad]);
        assert!(worker.counters.failed_write().is_some());

        let (good, _) = put(Table::Messages, b"a");
        worker.flush(&mut vec![good]);
        assert!(worker.counters.failed_write().is_none());
    }
}
