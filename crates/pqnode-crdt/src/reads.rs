//! What [`DocStore`] answers about documents: state, content, history, and deletion.
//!
//! Reads of a document's content wait for any commit in progress, so they only ever show what
//! is durable.

use std::sync::Arc;

use bytes::Bytes;
use pqnode_store::Table;
use serde::Serialize;
use serde_json::Value;
use yrs::{Doc, StateVector};

use crate::hub::{DocChange, DocEvent};
use crate::keys::{self, DocMeta};
use crate::load::{self, LogEntry};
use crate::slot::Loaded;
use crate::stats::sub;
use crate::{DocError, DocName, DocStore, wire, ydoc};

/// What the store knows about one document, without loading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocInfo {
    /// The document.
    pub name: DocName,
    /// When its first update was committed, Unix milliseconds.
    pub created_at_ms: u64,
    /// When its last update was committed, Unix milliseconds.
    pub updated_at_ms: u64,
    /// The newest version: the sequence number of the last update committed.
    pub version: u64,
    /// The oldest version [`DocStore::at_version`] can still read.
    pub oldest_version: u64,
    /// Bytes a load reads: the newest snapshot plus the updates logged after it.
    pub stored_bytes: u64,
    /// Bytes of the newest snapshot.
    pub snapshot_bytes: u64,
    /// Updates logged since the newest snapshot.
    pub updates_since_snapshot: u64,
    /// Log entries kept for history (since `oldest_version`).
    pub history_updates: u64,
    /// Bytes of those entries.
    pub history_bytes: u64,
    /// Snapshots written for this document.
    pub compactions: u64,
}

impl DocInfo {
    fn new(name: DocName, meta: &DocMeta) -> Self {
        Self {
            name,
            created_at_ms: meta.created_ms,
            updated_at_ms: meta.updated_ms,
            version: meta.last_seq,
            oldest_version: meta.base_seq,
            stored_bytes: meta.stored_bytes(),
            snapshot_bytes: meta.snapshot_bytes,
            updates_since_snapshot: meta.log_updates,
            history_updates: meta.old_updates + meta.log_updates,
            history_bytes: meta.old_bytes + meta.log_bytes,
            compactions: meta.compactions,
        }
    }
}

/// A document as it was at one version, rebuilt from the store.
pub struct DocVersion {
    /// The document.
    pub name: DocName,
    /// The version it was rebuilt at: the sequence number of its last update.
    pub version: u64,
    doc: Doc,
}

impl DocVersion {
    /// Every root type as JSON, keyed by name (texts as strings, maps as objects, arrays as
    /// arrays, XML as its string form).
    pub fn json(&self) -> Result<Value, DocError> {
        ydoc::to_json(&self.doc).map_err(|reason| self.corrupt(reason))
    }

    /// The text of root `root`, if it is a text.
    pub fn text(&self, root: &str) -> Result<Option<String>, DocError> {
        ydoc::root_text(&self.doc, root).map_err(|reason| self.corrupt(reason))
    }

    /// The whole document at this version as one Yjs v1 update.
    pub fn update(&self) -> Result<Vec<u8>, DocError> {
        ydoc::encode_full(&self.doc).map_err(|reason| self.corrupt(reason))
    }

    fn corrupt(&self, reason: String) -> DocError {
        DocError::Corrupt {
            doc: self.name.clone(),
            reason,
        }
    }
}

impl DocStore {
    /// The document's state vector (Yjs v1 encoding); empty for a document never written.
    pub async fn state_vector(&self, name: &DocName) -> Result<Vec<u8>, DocError> {
        self.with_doc(name, |loaded| {
            Ok(yrs::updates::encoder::Encode::encode_v1(
                &ydoc::state_vector(&loaded.doc),
            ))
        })
        .await
    }

    /// What the document has beyond `state_vector` (Yjs v1 encodings), as one update: what
    /// a peer at that state is missing. An empty state vector gives the whole document.
    pub async fn diff(&self, name: &DocName, state_vector: &[u8]) -> Result<Vec<u8>, DocError> {
        let since = match state_vector.is_empty() {
            true => StateVector::default(),
            false => wire::state_vector(state_vector).map_err(|error| {
                DocError::MalformedStateVector {
                    reason: error.to_string(),
                }
            })?,
        };
        self.diff_since(name, &since).await
    }

    pub(crate) async fn diff_since(
        &self,
        name: &DocName,
        since: &StateVector,
    ) -> Result<Vec<u8>, DocError> {
        self.with_doc(name, |loaded| {
            ydoc::encode_diff(&loaded.doc, since).map_err(|reason| DocError::Corrupt {
                doc: name.clone(),
                reason,
            })
        })
        .await
    }

    /// Every root type of the document as JSON, keyed by name.
    pub async fn json(&self, name: &DocName) -> Result<Value, DocError> {
        self.with_existing(name, |loaded| ydoc::to_json(&loaded.doc))
            .await
    }

    /// The text of the document's root `root` (`ydoc.getText(root)` in Yjs), if it is a text.
    pub async fn text(&self, name: &DocName, root: &str) -> Result<Option<String>, DocError> {
        self.with_existing(name, |loaded| ydoc::root_text(&loaded.doc, root))
            .await
    }

    /// The document's header, or `None` if it does not exist.
    pub async fn info(&self, name: &DocName) -> Result<Option<DocInfo>, DocError> {
        let meta = load::read_meta(&self.inner.store, name).await?;
        Ok(meta.map(|meta| DocInfo::new(name.clone(), &meta)))
    }

    /// Every stored document, in name order.
    pub async fn list(&self) -> Result<Vec<DocInfo>, DocError> {
        let headers = self
            .inner
            .store
            .scan_prefix(Table::Documents, keys::META_PREFIX)
            .await?;
        let mut docs = Vec::with_capacity(headers.len());
        for (key, value) in headers {
            let parsed = keys::name_of_meta_key(&key).zip(DocMeta::decode(&value).ok());
            match parsed {
                Some((name, meta)) => docs.push(DocInfo::new(name, &meta)),
                None => tracing::warn!(key = ?key, "unreadable document header; skipped"),
            }
        }
        Ok(docs)
    }

    /// The log entries kept for history, oldest first. After compactions the log keeps the
    /// entries since the snapshot before the newest one (see the crate docs).
    pub async fn history(&self, name: &DocName) -> Result<Vec<LogEntry>, DocError> {
        self.require(name).await?;
        load::history(&self.inner.store, name).await
    }

    /// The document as it was once version `version` was committed (0: empty), rebuilt from
    /// the kept snapshot and log.
    pub async fn at_version(&self, name: &DocName, version: u64) -> Result<DocVersion, DocError> {
        let slot = self.inner.slot(name);
        let updates = {
            // Held while reading, so no compaction removes entries halfway through.
            let state = self.inner.loaded(&slot).await?;
            let meta = match state.as_ref() {
                Some(loaded) if loaded.meta.exists() => loaded.meta.clone(),
                _ => return Err(DocError::NotFound { doc: name.clone() }),
            };
            load::version(&self.inner.store, name, &meta, version).await?
        };
        let doc = load::replay(name, updates).await?;
        Ok(DocVersion {
            name: name.clone(),
            version,
            doc,
        })
    }

    /// Deletes the document (header, log, snapshots) in one commit; returns whether it
    /// existed. Subscribers hear [`DocEvent::Deleted`]. Clients still holding its content can
    /// write it again: a CRDT keeps no tombstone for a whole document.
    pub async fn delete(&self, name: &DocName) -> Result<bool, DocError> {
        let slot = self.inner.slot(name);
        let mut state = slot.state.lock().await;
        let existed = load::read_meta(&self.inner.store, name).await?.is_some();
        let meta_key = keys::meta_key(name);
        let mut meta_end = meta_key.clone();
        meta_end.push(0);
        let ranges = [
            keys::whole(keys::log_prefix(name)),
            keys::whole(keys::snapshot_prefix(name)),
            (meta_key, meta_end),
        ];
        self.inner
            .store
            .write_batch(Table::Documents, ranges, Vec::<(Vec<u8>, Bytes)>::new())
            .await?;
        *state = Some(Loaded::empty());
        slot.set_loaded(&state);
        if existed {
            sub(&self.inner.counters.documents, 1);
        }
        let _ = slot.events.send(Arc::new(DocEvent::Deleted));
        if existed {
            let _ = self
                .inner
                .changes
                .send(DocChange::Deleted { name: name.clone() });
        }
        Ok(existed)
    }

    async fn require(&self, name: &DocName) -> Result<DocMeta, DocError> {
        load::read_meta(&self.inner.store, name)
            .await?
            .ok_or_else(|| DocError::NotFound { doc: name.clone() })
    }

    async fn with_doc<T>(
        &self,
        name: &DocName,
        read: impl FnOnce(&Loaded) -> Result<T, DocError>,
    ) -> Result<T, DocError> {
        let slot = self.inner.slot(name);
        let state = self.inner.loaded(&slot).await?;
        match state.as_ref() {
            Some(loaded) => read(loaded),
            None => Err(DocError::Stopped),
        }
    }

    async fn with_existing<T>(
        &self,
        name: &DocName,
        read: impl FnOnce(&Loaded) -> Result<T, String>,
    ) -> Result<T, DocError> {
        self.with_doc(name, |loaded| {
            if !loaded.meta.exists() {
                return Err(DocError::NotFound { doc: name.clone() });
            }
            read(loaded).map_err(|reason| DocError::Corrupt {
                doc: name.clone(),
                reason,
            })
        })
        .await
    }
}
