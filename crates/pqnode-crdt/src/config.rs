//! [`DocConfig`]: limits and tuning of the document engine.

use std::time::Duration;

/// Limits and tuning for [`DocStore`](crate::DocStore). The defaults suit a node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DocConfig {
    /// Largest update accepted, in bytes (encoded, Yjs update v1).
    pub max_update_bytes: usize,
    /// Largest document, in stored bytes: the latest snapshot plus the updates logged after it.
    /// An update that would take a document past it is refused. A store that replicates may
    /// not set it above [`MAX_REPLICATED_DOC_BYTES`](crate::replication::MAX_REPLICATED_DOC_BYTES),
    /// so that every document it acknowledges can reach its replicas.
    pub max_doc_bytes: u64,
    /// Compact (write a snapshot) once this many updates were logged since the last one.
    pub compact_every_updates: u64,
    /// Compact once the updates logged since the last snapshot add up to this many bytes.
    pub compact_every_bytes: u64,
    /// Most documents kept in memory; the least recently used ones without sessions go first.
    pub max_loaded_docs: usize,
    /// Most stored bytes of the documents kept in memory (their memory is a small multiple).
    pub max_loaded_bytes: u64,
    /// A document nobody has used for this long, and that no session holds, leaves memory.
    pub idle_evict_after: Duration,
    /// Most updates to one document applied in one yrs transaction and one commit.
    pub max_batch_updates: usize,
    /// Largest protocol frame a session accepts.
    pub max_frame_bytes: usize,
    /// Largest awareness update a session accepts.
    pub max_awareness_bytes: usize,
    /// Events a subscriber may fall behind before it is told it lagged.
    pub broadcast_capacity: usize,
}

impl Default for DocConfig {
    fn default() -> Self {
        Self {
            max_update_bytes: 4 * 1024 * 1024,
            max_doc_bytes: crate::replication::MAX_REPLICATED_DOC_BYTES,
            compact_every_updates: 500,
            compact_every_bytes: 4 * 1024 * 1024,
            max_loaded_docs: 1024,
            max_loaded_bytes: 256 * 1024 * 1024,
            idle_evict_after: Duration::from_secs(30),
            max_batch_updates: 256,
            max_frame_bytes: 4 * 1024 * 1024 + 64 * 1024,
            max_awareness_bytes: 64 * 1024,
            // Each loaded document preallocates this many slots (40 bytes each); a
            // session this far behind is told to resync, which y-websocket does by itself.
            broadcast_capacity: 256,
        }
    }
}

/// Why a [`DocConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit below its smallest workable value.
    #[error("{field} must be at least {min}")]
    TooSmall {
        /// The setting, as [`DocConfig`] names it.
        field: &'static str,
        /// Its smallest workable value.
        min: u64,
    },
    /// `max_doc_bytes` over what one replication message can carry, for a store that
    /// replicates.
    #[error("max_doc_bytes ({value}) exceeds what replication can carry ({max})")]
    DocTooLargeToReplicate {
        /// The configured `max_doc_bytes`.
        value: u64,
        /// The largest it may be, in bytes.
        max: u64,
    },
    /// `max_doc_bytes` over what a snapshot in one store value can hold.
    #[error("max_doc_bytes ({value}) exceeds what one store value can hold ({max})")]
    DocTooLargeForStore {
        /// The configured `max_doc_bytes`.
        value: u64,
        /// The largest it may be, in bytes.
        max: u64,
    },
}

impl DocConfig {
    /// Checks that the limits make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least = |field, value: u64, min: u64| match value >= min {
            true => Ok(()),
            false => Err(ConfigError::TooSmall { field, min }),
        };
        at_least("max_update_bytes", self.max_update_bytes as u64, 64)?;
        at_least(
            "max_doc_bytes",
            self.max_doc_bytes,
            self.max_update_bytes as u64,
        )?;
        at_least("compact_every_updates", self.compact_every_updates, 1)?;
        at_least("compact_every_bytes", self.compact_every_bytes, 1)?;
        at_least("max_loaded_docs", self.max_loaded_docs as u64, 1)?;
        at_least("max_batch_updates", self.max_batch_updates as u64, 1)?;
        at_least("max_frame_bytes", self.max_frame_bytes as u64, 64)?;
        at_least("max_awareness_bytes", self.max_awareness_bytes as u64, 64)?;
        at_least("broadcast_capacity", self.broadcast_capacity as u64, 1)?;
        // A snapshot carries an 8-byte header and must fit in one store value.
        let max = (pqnode_store::MAX_VALUE_LEN - 64) as u64;
        if self.max_doc_bytes > max {
            return Err(ConfigError::DocTooLargeForStore {
                value: self.max_doc_bytes,
                max,
            });
        }
        Ok(())
    }
}
