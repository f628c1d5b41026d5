//! [`ReplicationError`]: why a replication request or operation failed.

use crate::{ConfigError, DocError, DocName};

use super::seams::LinkError;
use super::wire::WireError;

/// Why a replication operation failed. For an inbound request, the binary answers
/// `BadRequest` when [`is_caller_fault`](Self::is_caller_fault), `Unavailable` otherwise.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// The request or response is not a well-formed sync message. Nothing was applied.
    #[error("sync message refused: {0}")]
    Wire(#[from] WireError),

    /// The document engine refused or failed (a malformed update or state vector, a
    /// document over its cap, a store failure). A refused update changed nothing.
    #[error("document: {0}")]
    Doc(#[from] DocError),

    /// The other node could not be reached or failed to answer.
    #[error("link: {0}")]
    Link(#[from] LinkError),

    /// The other node answered with a response that does not fit the request.
    #[error("unexpected response from the other node")]
    UnexpectedResponse,

    /// The other node does not hold the document and does not take new replicas.
    #[error("the other node does not hold {doc}")]
    NotHeld {
        /// The document.
        doc: DocName,
    },

    /// A document's diff is larger than one sync message can carry.
    #[error("the diff of {doc} is {len} bytes, over the {max}-byte sync limit")]
    DiffTooLarge {
        /// The document.
        doc: DocName,
        /// The diff's length, in bytes.
        len: usize,
        /// [`MAX_SYNC_UPDATE`](super::wire::MAX_SYNC_UPDATE).
        max: usize,
    },

    /// [`ReplicationConfig::max_tracked_docs`](super::ReplicationConfig::max_tracked_docs)
    /// documents are tracked already.
    #[error("already tracking {max} documents")]
    TooManyDocs {
        /// [`ReplicationConfig::max_tracked_docs`](super::ReplicationConfig::max_tracked_docs).
        max: usize,
    },

    /// The replication settings are not usable.
    #[error("invalid replication configuration: {0}")]
    InvalidConfig(#[from] ConfigError),

    /// The replicator was shut down.
    #[error("replication is shut down")]
    Stopped,
}

impl ReplicationError {
    /// Whether the caller sent something wrong (as opposed to this node failing or being
    /// full).
    pub fn is_caller_fault(&self) -> bool {
        match self {
            ReplicationError::Wire(_) => true,
            ReplicationError::Doc(error) => error.is_caller_fault(),
            _ => false,
        }
    }
}
