//! Why the store cannot be trusted right now, and what would clear it.
//!
//! A fault is raised by whatever notices it (a failed commit, a failed read, a panic inside
//! redb, the database file vanishing) and is reported by [`Store::health`](crate::Store::health)
//! until it clears. It is logged once when it is raised and once when it clears, however many
//! requests fail meanwhile: a full disk must not also fill the log.

use std::time::SystemTime;

use redb::Error as RedbError;

use crate::StoreError;

/// A condition under which the store refuses to acknowledge writes as usual.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) cause: String,
    pub(crate) recovery: Recovery,
    pub(crate) since: SystemTime,
}

/// What clears a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// A logical failure of one operation (redb refused it): the next successful commit.
    NextCommit,
    /// The file or the disk failed (I/O error, full disk, a panic inside redb): redb refuses
    /// every later operation until the database is reopened, so the store thread reopens it,
    /// checks it, and proves it writable with a probe commit, retrying on its own.
    Reopen,
    /// The database file was deleted or replaced under the running node: what the store
    /// writes now would not be in the file the next start reads. Only a restart clears it.
    Restart,
}

impl Fault {
    pub(crate) fn new(cause: impl Into<String>, recovery: Recovery) -> Self {
        Self {
            cause: cause.into(),
            recovery,
            since: SystemTime::now(),
        }
    }

    /// The fault a failed operation reveals.
    pub(crate) fn from_error(error: &StoreError) -> Self {
        Self::new(error.to_string(), recovery_for(error))
    }
}

/// Errors of the file or the disk need a reopen; redb's other refusals do not.
fn recovery_for(error: &StoreError) -> Recovery {
    match error {
        StoreError::Database(
            RedbError::Io(_)
            | RedbError::PreviousIo
            | RedbError::Corrupted(_)
            | RedbError::Backend(_)
            | RedbError::DatabaseClosed
            | RedbError::TransactionPoisoned
            | RedbError::LockPoisoned(_),
        ) => Recovery::Reopen,
        StoreError::Unavailable { .. } | StoreError::Closed => Recovery::Reopen,
        _ => Recovery::NextCommit,
    }
}

/// The message of a panic payload, for the log and the health reason.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}
