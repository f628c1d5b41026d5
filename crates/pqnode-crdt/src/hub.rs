//! The live side of a document: who changed it ([`OriginId`]), what subscribers hear
//! ([`DocEvent`]) and how they listen ([`DocSubscription`]).
//!
//! Every loaded document has one broadcast channel. An update reaches it only after its
//! commit, carrying the y-protocols frame already encoded, so a thousand sessions share one
//! encoding. Sessions, and later replication links from other nodes, subscribe to it.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::slot::DocSlot;
use crate::{DocName, SessionError};

/// Who made a change: a session, a replication link, or the node itself
/// ([`OriginId::LOCAL`], for updates through [`DocStore::apply_update`](crate::DocStore::apply_update)).
/// Subscribers skip events of their own origin, so nobody hears its own changes echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OriginId(pub(crate) u64);

impl OriginId {
    /// Changes made through the engine's API rather than by a session.
    pub const LOCAL: OriginId = OriginId(0);

    /// The number behind it, for logs.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What a document's subscribers hear.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DocEvent {
    /// Committed (durable) updates from one origin, merged into one: the updates of one
    /// commit that came in a row from the same origin, up to log entry `seq`.
    Update {
        /// The sequence number of the last of them: the document's version once committed.
        seq: u64,
        /// The updates as applied, merged (Yjs v1).
        update: Bytes,
        /// The same as a y-protocols sync-update message, ready to send.
        frame: Bytes,
        /// Who made it.
        origin: OriginId,
    },
    /// An awareness update (not stored), as a y-protocols awareness message.
    Awareness {
        /// The y-protocols awareness message, ready to send.
        frame: Bytes,
        /// Who sent it.
        origin: OriginId,
    },
    /// The document was deleted; sessions on it should close.
    Deleted,
}

impl DocEvent {
    /// Who caused it (`None` for a deletion).
    pub fn origin(&self) -> Option<OriginId> {
        match self {
            DocEvent::Update { origin, .. } | DocEvent::Awareness { origin, .. } => Some(*origin),
            DocEvent::Deleted => None,
        }
    }
}

/// A change to some document, on the engine-wide feed ([`DocStore::changes`](crate::DocStore::changes)):
/// for what follows every document without holding any in memory (a search index, a
/// webhook, a change feed for applications).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocChange {
    /// Updates were committed: the document is at `version` now.
    Updated {
        /// The document.
        name: DocName,
        /// Its version after the commit.
        version: u64,
    },
    /// The document was deleted.
    Deleted {
        /// The document.
        name: DocName,
    },
}

impl DocChange {
    /// The document changed.
    pub fn name(&self) -> &DocName {
        match self {
            DocChange::Updated { name, .. } | DocChange::Deleted { name } => name,
        }
    }
}

/// How many changes the engine-wide feed holds for a slow listener before it lags.
pub(crate) const CHANGES_CAPACITY: usize = 4096;

/// A live feed of one document's events. While it exists the document stays in memory.
pub struct DocSubscription {
    slot: Arc<DocSlot>,
    receiver: broadcast::Receiver<Arc<DocEvent>>,
}

impl DocSubscription {
    pub(crate) fn new(slot: Arc<DocSlot>) -> Self {
        let receiver = slot.events.subscribe();
        Self { slot, receiver }
    }

    /// The document it follows.
    pub fn name(&self) -> &DocName {
        &self.slot.name
    }

    /// The next event. Cancel-safe (use it in `select!`). A subscriber that fell more than
    /// [`DocConfig::broadcast_capacity`](crate::DocConfig::broadcast_capacity) events behind
    /// gets [`SessionError::Lagged`] once, then the events after the gap.
    pub async fn recv(&mut self) -> Result<DocEvent, SessionError> {
        match self.receiver.recv().await {
            Ok(event) => Ok(Arc::unwrap_or_clone(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Err(SessionError::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => Err(SessionError::Closed),
        }
    }

    /// The next event if one is waiting, without waiting; `None` when there is none now.
    pub fn try_recv(&mut self) -> Option<Result<DocEvent, SessionError>> {
        match self.receiver.try_recv() {
            Ok(event) => Some(Ok(Arc::unwrap_or_clone(event))),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(Err(SessionError::Lagged { missed }))
            }
            Err(broadcast::error::TryRecvError::Closed) => Some(Err(SessionError::Closed)),
        }
    }
}

impl std::fmt::Debug for DocSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocSubscription")
            .field("doc", &self.slot.name)
            .finish_non_exhaustive()
    }
}
