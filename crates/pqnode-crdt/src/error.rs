//! Errors of the document engine ([`DocError`]) and of a sync session ([`SessionError`]).

use std::sync::Arc;

use pqnode_store::StoreError;

use crate::{ConfigError, DocName, NameError};

/// Why a document operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// The name is not a valid document name.
    #[error("invalid document name: {0}")]
    InvalidName(#[from] NameError),

    /// The engine's configuration is not usable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(#[from] ConfigError),

    /// The update is larger than [`DocConfig::max_update_bytes`](crate::DocConfig::max_update_bytes).
    #[error("update of {len} bytes exceeds the {max}-byte limit")]
    UpdateTooLarge {
        /// The update's length, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },

    /// Applying the update would take the document past
    /// [`DocConfig::max_doc_bytes`](crate::DocConfig::max_doc_bytes). Nothing was applied.
    #[error("document {doc} would grow to {size} bytes, over its {max}-byte limit")]
    DocumentTooLarge {
        /// The document.
        doc: DocName,
        /// Its stored size with the update, in bytes.
        size: u64,
        /// The limit, in bytes.
        max: u64,
    },

    /// The bytes are not a Yjs update (v1). Nothing was applied.
    #[error("malformed update: {reason}")]
    MalformedUpdate {
        /// What the Yjs decoder reported.
        reason: String,
    },

    /// The update decodes but yrs refused to integrate it. Nothing was applied: the document
    /// was rebuilt from its last committed state.
    #[error("update rejected by the CRDT: {reason}")]
    RejectedUpdate {
        /// What yrs reported.
        reason: String,
    },

    /// No document of that name is stored.
    #[error("no document named {doc}")]
    NotFound {
        /// The name asked for.
        doc: DocName,
    },

    /// The bytes are not a Yjs state vector.
    #[error("malformed state vector: {reason}")]
    MalformedStateVector {
        /// What the Yjs decoder reported.
        reason: String,
    },

    /// The version asked for is older than the history kept since the last compactions.
    #[error("version {version} of {doc} was compacted away; the oldest kept is {oldest}")]
    VersionCompacted {
        /// The document.
        doc: DocName,
        /// The version asked for.
        version: u64,
        /// The oldest version still readable.
        oldest: u64,
    },

    /// The version asked for does not exist yet.
    #[error("version {version} of {doc} does not exist; the latest is {latest}")]
    VersionAhead {
        /// The document.
        doc: DocName,
        /// The version asked for.
        version: u64,
        /// The newest version.
        latest: u64,
    },

    /// What the store holds for the document cannot be read back.
    #[error("stored data of document {doc} is unreadable: {reason}")]
    Corrupt {
        /// The document.
        doc: DocName,
        /// What could not be read, and why.
        reason: String,
    },

    /// The store failed; nothing was acknowledged.
    #[error("store: {0}")]
    Store(#[source] Arc<StoreError>),

    /// The engine's background writer stopped before answering (the runtime is shutting down).
    #[error("the document engine stopped before answering")]
    Stopped,
}

impl From<StoreError> for DocError {
    fn from(error: StoreError) -> Self {
        DocError::Store(Arc::new(error))
    }
}

impl DocError {
    /// Whether the caller sent something wrong (as opposed to the node failing).
    pub fn is_caller_fault(&self) -> bool {
        matches!(
            self,
            DocError::InvalidName(_)
                | DocError::NotFound { .. }
                | DocError::UpdateTooLarge { .. }
                | DocError::DocumentTooLarge { .. }
                | DocError::MalformedUpdate { .. }
                | DocError::RejectedUpdate { .. }
                | DocError::MalformedStateVector { .. }
                | DocError::VersionCompacted { .. }
                | DocError::VersionAhead { .. }
        )
    }
}

/// Why a sync session must end. The integrator closes the connection with
/// [`close_code`](Self::close_code) and the error's text as the reason.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A frame larger than [`DocConfig::max_frame_bytes`](crate::DocConfig::max_frame_bytes).
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The frame's length, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },

    /// The frame is not a well-formed y-protocols message.
    #[error("malformed message: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },

    /// An awareness update over
    /// [`DocConfig::max_awareness_bytes`](crate::DocConfig::max_awareness_bytes).
    #[error("awareness update of {len} bytes exceeds the {max}-byte limit")]
    AwarenessTooLarge {
        /// The update's length, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },

    /// An update the client sent was refused (too large, malformed, rejected) or could not be
    /// stored. Nothing of it was acknowledged or passed on.
    #[error("update refused: {0}")]
    Update(#[source] DocError),

    /// The session fell behind the document's live updates by `missed` events; the client
    /// should reconnect and resync (stock y-websocket clients do by themselves).
    #[error("fell behind by {missed} live events; reconnect to resync")]
    Lagged {
        /// Events the session missed.
        missed: u64,
    },

    /// The document was deleted while the session was open.
    #[error("the document was deleted")]
    DocumentDeleted,

    /// The session was closed.
    #[error("the session is closed")]
    Closed,
}

impl SessionError {
    /// The WebSocket close code that fits. Refusals that a reconnect would only repeat use
    /// 4400-4499, the range on which npm y-websocket stops reconnecting: 4413 (too large),
    /// 4400 (malformed or refused input), 4410 (the document was deleted: reconnecting would
    /// bring it back); the others ask the client to come back: 1011 (the node failed), 1013
    /// (lagged), 1000 (normal).
    pub fn close_code(&self) -> u16 {
        match self {
            SessionError::FrameTooLarge { .. } | SessionError::AwarenessTooLarge { .. } => 4413,
            SessionError::Update(DocError::UpdateTooLarge { .. })
            | SessionError::Update(DocError::DocumentTooLarge { .. }) => 4413,
            SessionError::Update(error) if !error.is_caller_fault() => 1011,
            SessionError::Malformed { .. } | SessionError::Update(_) => 4400,
            SessionError::Lagged { .. } => 1013,
            SessionError::DocumentDeleted => 4410,
            SessionError::Closed => 1000,
        }
    }
}
