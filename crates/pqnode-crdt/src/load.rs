//! Reading documents back from the store: the current state (newest snapshot plus the log
//! after it), a past version, and the list of log entries.

use bytes::Bytes;
use pqnode_store::{Store, Table};
use serde::Serialize;
use yrs::Doc;

use crate::keys::{self, DocMeta};
use crate::slot::Loaded;
use crate::ydoc;
use crate::{DocError, DocName};

/// One entry of a document's update log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// The document's version once this entry was applied.
    pub seq: u64,
    /// When it was committed, Unix milliseconds.
    pub time_ms: u64,
    /// Size of the update, bytes.
    pub bytes: u64,
}

pub(crate) async fn read_meta(store: &Store, name: &DocName) -> Result<Option<DocMeta>, DocError> {
    match store.get(Table::Documents, keys::meta_key(name)).await? {
        Some(bytes) => DocMeta::decode(&bytes)
            .map(Some)
            .map_err(|reason| corrupt(name, reason)),
        None => Ok(None),
    }
}

/// The document as last committed: a fresh empty one when it was never written.
pub(crate) async fn load(store: &Store, name: &DocName) -> Result<Loaded, DocError> {
    let Some(meta) = read_meta(store, name).await? else {
        return Ok(Loaded::empty());
    };
    let mut updates = Vec::new();
    if meta.snapshot_seq > 0 {
        updates.push(snapshot(store, name, meta.snapshot_seq).await?);
    }
    if meta.log_updates > 0 {
        let prefix = keys::log_prefix(name);
        let before = keys::whole(prefix.clone()).1;
        let limit = usize::try_from(meta.log_updates).unwrap_or(usize::MAX);
        let mut entries = store
            .last_entries_before(Table::Documents, before, limit)
            .await?;
        entries.reverse();
        let mut expected = meta.snapshot_seq;
        for (key, value) in entries {
            expected += 1;
            if keys::seq_of(&key, &prefix) != Some(expected) {
                return Err(corrupt(name, format!("log entry {expected} is missing")));
            }
            updates.push(update_of(name, &value)?);
        }
        if expected != meta.last_seq {
            return Err(corrupt(
                name,
                format!("log ends at {expected}, header says {}", meta.last_seq),
            ));
        }
    }
    let doc = replay(name, updates).await?;
    Ok(Loaded { doc, meta })
}

/// The document as it was once entry `version` was applied (0: empty).
pub(crate) async fn version(
    store: &Store,
    name: &DocName,
    meta: &DocMeta,
    version: u64,
) -> Result<Vec<Bytes>, DocError> {
    if version > meta.last_seq {
        return Err(DocError::VersionAhead {
            doc: name.clone(),
            version,
            latest: meta.last_seq,
        });
    }
    if version < meta.base_seq {
        return Err(DocError::VersionCompacted {
            doc: name.clone(),
            version,
            oldest: meta.base_seq,
        });
    }
    let start = match meta.snapshot_seq {
        latest if latest > 0 && version >= latest => latest,
        _ => meta.base_seq,
    };
    let mut updates = Vec::new();
    if start > 0 {
        updates.push(snapshot(store, name, start).await?);
    }
    let prefix = keys::log_prefix(name);
    for (key, value) in store.scan_prefix(Table::Documents, &prefix).await? {
        match keys::seq_of(&key, &prefix) {
            Some(seq) if seq > start && seq <= version => updates.push(update_of(name, &value)?),
            _ => {}
        }
    }
    Ok(updates)
}

/// Every kept log entry, oldest first.
pub(crate) async fn history(store: &Store, name: &DocName) -> Result<Vec<LogEntry>, DocError> {
    let prefix = keys::log_prefix(name);
    let entries = store.scan_prefix(Table::Documents, &prefix).await?;
    entries
        .iter()
        .map(|(key, value)| {
            let seq = keys::seq_of(key, &prefix)
                .ok_or_else(|| corrupt(name, "a log key without a sequence number".into()))?;
            let (time_ms, update) = keys::split_value(value)
                .ok_or_else(|| corrupt(name, format!("log entry {seq} is cut short")))?;
            Ok(LogEntry {
                seq,
                time_ms,
                bytes: update.len() as u64,
            })
        })
        .collect()
}

/// Applies stored updates to a fresh document, off the async workers (a large document takes
/// a while).
pub(crate) async fn replay(name: &DocName, updates: Vec<Bytes>) -> Result<Doc, DocError> {
    let replayed =
        tokio::task::spawn_blocking(move || ydoc::replay(updates.iter().map(|u| u.as_ref())))
            .await
            .map_err(|_| DocError::Stopped)?;
    replayed.map_err(|reason| corrupt(name, reason))
}

async fn snapshot(store: &Store, name: &DocName, seq: u64) -> Result<Bytes, DocError> {
    let key = keys::snapshot_key(name, seq);
    let before = keys::snapshot_key(name, seq.saturating_add(1));
    let found = store
        .last_entries_before(Table::Documents, before, 1)
        .await?;
    match found.first() {
        Some((found_key, value)) if found_key.as_ref() == key.as_slice() => update_of(name, value),
        _ => Err(corrupt(name, format!("snapshot {seq} is missing"))),
    }
}

fn update_of(name: &DocName, value: &Bytes) -> Result<Bytes, DocError> {
    keys::split_value(value)
        .map(|(_, update)| update)
        .ok_or_else(|| corrupt(name, "a stored value is cut short".into()))
}

fn corrupt(name: &DocName, reason: String) -> DocError {
    tracing::error!(doc = %name, %reason, "stored document is unreadable");
    DocError::Corrupt {
        doc: name.clone(),
        reason,
    }
}
