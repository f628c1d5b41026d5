//! What the store does inside one redb transaction: the reads and writes the store thread
//! runs, and how DHT records keep their expiry index in step.

use std::collections::BTreeMap;

use bytes::Bytes;
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};

use crate::record::{Record, from_unix_ms};
use crate::stats::TableCounts;
use crate::table::{EXPIRY_INDEX, RECORD_EXPIRY};
use crate::{StoreError, Table};

/// Most expired records held in memory at once while sweeping.
const SWEEP_CHUNK: usize = 1024;

/// A change to the store; each one yields the number of entries it wrote or removed.
pub(crate) enum WriteOp {
    Put {
        table: Table,
        entries: Vec<(Bytes, Bytes)>,
    },
    /// Empties `table`, then writes `entries`.
    Replace {
        table: Table,
        entries: Vec<(Bytes, Bytes)>,
    },
    Delete {
        table: Table,
        key: Bytes,
    },
    PutRecord {
        key: Bytes,
        value: Bytes,
        expires_at_ms: u64,
    },
    SweepExpired {
        now_ms: u64,
    },
    /// Removes every key in each half-open range `[start, end)`, then writes `entries`.
    Batch {
        table: Table,
        delete_ranges: Vec<(Bytes, Bytes)>,
        entries: Vec<(Bytes, Bytes)>,
    },
}

pub(crate) fn get(
    txn: &ReadTransaction,
    table: Table,
    key: &[u8],
) -> Result<Option<Bytes>, StoreError> {
    let table = txn.open_table(table.definition())?;
    Ok(table.get(key)?.map(|value| copy(value.value())))
}

pub(crate) fn scan(
    txn: &ReadTransaction,
    table: Table,
    prefix: &[u8],
) -> Result<Vec<(Bytes, Bytes)>, StoreError> {
    let table = txn.open_table(table.definition())?;
    let mut entries = Vec::new();
    for entry in table.range::<&[u8]>(prefix..)? {
        let (key, value) = entry?;
        if !key.value().starts_with(prefix) {
            break;
        }
        entries.push((copy(key.value()), copy(value.value())));
    }
    Ok(entries)
}

/// The `limit` greatest entries below `before` (or overall), greatest first.
pub(crate) fn last(
    txn: &ReadTransaction,
    table: Table,
    before: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Bytes, Bytes)>, StoreError> {
    let table = txn.open_table(table.definition())?;
    let mut entries = Vec::with_capacity(limit.min(1024));
    let range = match before {
        Some(before) => table.range::<&[u8]>(..before)?,
        None => table.range::<&[u8]>(..)?,
    };
    for entry in range.rev().take(limit) {
        let (key, value) = entry?;
        entries.push((copy(key.value()), copy(value.value())));
    }
    Ok(entries)
}

pub(crate) fn len(txn: &ReadTransaction, table: Table) -> Result<u64, StoreError> {
    Ok(txn.open_table(table.definition())?.len()?)
}

pub(crate) fn get_record(
    txn: &ReadTransaction,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<Record>, StoreError> {
    let records = txn.open_table(Table::Records.definition())?;
    let expiry = txn.open_table(RECORD_EXPIRY)?;
    let Some(value) = records.get(key)? else {
        return Ok(None);
    };
    let expires_at_ms = expiry.get(key)?.map(|ms| ms.value());
    Ok(live_record(value.value(), expires_at_ms, now_ms))
}

pub(crate) fn scan_records(
    txn: &ReadTransaction,
    now_ms: u64,
) -> Result<Vec<(Bytes, Record)>, StoreError> {
    let records = txn.open_table(Table::Records.definition())?;
    let expiry = txn.open_table(RECORD_EXPIRY)?;
    let mut live = Vec::new();
    for entry in records.iter()? {
        let (key, value) = entry?;
        let expires_at_ms = expiry.get(key.value())?.map(|ms| ms.value());
        if let Some(record) = live_record(value.value(), expires_at_ms, now_ms) {
            live.push((copy(key.value()), record));
        }
    }
    Ok(live)
}

pub(crate) fn count(txn: &ReadTransaction) -> Result<TableCounts, StoreError> {
    let mut entries = BTreeMap::new();
    for table in Table::ALL {
        entries.insert(table, txn.open_table(table.definition())?.len()?);
    }
    let expiring_records = txn.open_table(RECORD_EXPIRY)?.len()?;
    Ok(TableCounts {
        entries,
        expiring_records,
    })
}

/// Applies one write inside `txn`, noting every key it changed in `touched`.
pub(crate) fn apply(
    txn: &WriteTransaction,
    op: &WriteOp,
    touched: &mut Vec<(Table, Bytes)>,
) -> Result<u64, StoreError> {
    match op {
        WriteOp::Put { table, entries } => put(txn, *table, entries, touched),
        WriteOp::Replace { table, entries } => {
            txn.open_table(table.definition())?.retain(|key, _| {
                touched.push((*table, copy(key)));
                false
            })?;
            if *table == Table::Records {
                txn.open_table(RECORD_EXPIRY)?.retain(|_, _| false)?;
                txn.open_table(EXPIRY_INDEX)?.retain(|_, _| false)?;
            }
            put(txn, *table, entries, touched)
        }
        WriteOp::Delete { table, key } => {
            let removed = txn
                .open_table(table.definition())?
                .remove(key.as_ref())?
                .is_some();
            if *table == Table::Records {
                forget_expiry(txn, key)?;
            }
            touched.push((*table, key.clone()));
            Ok(u64::from(removed))
        }
        WriteOp::PutRecord {
            key,
            value,
            expires_at_ms,
        } => {
            txn.open_table(Table::Records.definition())?
                .insert(key.as_ref(), value.as_ref())?;
            forget_expiry(txn, key)?;
            txn.open_table(RECORD_EXPIRY)?
                .insert(key.as_ref(), *expires_at_ms)?;
            txn.open_table(EXPIRY_INDEX)?
                .insert((*expires_at_ms, key.as_ref()), ())?;
            touched.push((Table::Records, key.clone()));
            Ok(1)
        }
        WriteOp::SweepExpired { now_ms } => sweep(txn, *now_ms, touched),
        WriteOp::Batch {
            table,
            delete_ranges,
            entries,
        } => {
            let mut removed = Vec::new();
            {
                let mut rows = txn.open_table(table.definition())?;
                for (start, end) in delete_ranges {
                    if start >= end {
                        continue;
                    }
                    rows.retain_in::<&[u8], _>(start.as_ref()..end.as_ref(), |key, _| {
                        removed.push(copy(key));
                        false
                    })?;
                }
            }
            if *table == Table::Records {
                for key in &removed {
                    forget_expiry(txn, key)?;
                }
            }
            let count = u64::try_from(removed.len()).unwrap_or(u64::MAX);
            touched.extend(removed.into_iter().map(|key| (*table, key)));
            Ok(count.saturating_add(put(txn, *table, entries, touched)?))
        }
    }
}

fn put(
    txn: &WriteTransaction,
    table: Table,
    entries: &[(Bytes, Bytes)],
    touched: &mut Vec<(Table, Bytes)>,
) -> Result<u64, StoreError> {
    let mut rows = txn.open_table(table.definition())?;
    for (key, value) in entries {
        rows.insert(key.as_ref(), value.as_ref())?;
        touched.push((table, key.clone()));
    }
    if table == Table::Records {
        // A plain put makes a record that never expires.
        for (key, _) in entries {
            forget_expiry(txn, key)?;
        }
    }
    Ok(u64::try_from(entries.len()).unwrap_or(u64::MAX))
}

/// Removes a record's expiry and its index entry, if it has one.
fn forget_expiry(txn: &WriteTransaction, key: &[u8]) -> Result<(), StoreError> {
    let old = txn
        .open_table(RECORD_EXPIRY)?
        .remove(key)?
        .map(|ms| ms.value());
    if let Some(old) = old {
        txn.open_table(EXPIRY_INDEX)?.remove((old, key))?;
    }
    Ok(())
}

/// Removes every record whose expiry is at or before `now_ms`, oldest first.
fn sweep(
    txn: &WriteTransaction,
    now_ms: u64,
    touched: &mut Vec<(Table, Bytes)>,
) -> Result<u64, StoreError> {
    let mut records = txn.open_table(Table::Records.definition())?;
    let mut expiry = txn.open_table(RECORD_EXPIRY)?;
    let mut index = txn.open_table(EXPIRY_INDEX)?;
    let mut removed = 0;
    loop {
        let mut due = Vec::new();
        for entry in index.iter()? {
            let (key, _) = entry?;
            let (expires_at_ms, record_key) = key.value();
            if expires_at_ms > now_ms || due.len() == SWEEP_CHUNK {
                break;
            }
            due.push((expires_at_ms, copy(record_key)));
        }
        if due.is_empty() {
            return Ok(removed);
        }
        for (expires_at_ms, key) in due {
            index.remove((expires_at_ms, key.as_ref()))?;
            expiry.remove(key.as_ref())?;
            records.remove(key.as_ref())?;
            touched.push((Table::Records, key));
            removed += 1;
        }
    }
}

fn live_record(value: &[u8], expires_at_ms: Option<u64>, now_ms: u64) -> Option<Record> {
    match expires_at_ms {
        Some(ms) if ms <= now_ms => None,
        _ => Some(Record {
            value: copy(value),
            expires_at: expires_at_ms.map(from_unix_ms),
        }),
    }
}

fn copy(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}
