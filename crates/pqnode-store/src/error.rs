//! The store's error type.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file exists but is not a redb database. It was left untouched.
    #[error("{}: not a pqnode store (not a redb database); refusing to open or overwrite it", path.display())]
    NotADatabase {
        /// The database file.
        path: PathBuf,
    },

    /// The file is a redb database that some other program wrote. It was left untouched.
    #[error("{}: a redb database without a pqnode schema version; refusing to use it", path.display())]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
    },

    /// The file was written by a newer pqnode. It was left untouched.
    #[error(
        "{}: store schema version {found} is newer than this build supports ({supported}); run a newer pqnode",
        path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file.
        found: u64,
        /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION): the newest this build reads.
        supported: u64,
    },

    /// The file was written by an older pqnode and no migration from that version exists.
    #[error(
        "{}: store schema version {found} is older than this build supports ({supported}) and cannot be migrated",
        path.display()
    )]
    SchemaTooOld {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file.
        found: u64,
        /// The oldest version this build reads or migrates.
        supported: u64,
    },

    /// The schema version entry exists but cannot be decoded.
    #[error("{}: the schema version entry is malformed ({len} bytes, expected 8)", path.display())]
    MalformedSchemaVersion {
        /// The database file.
        path: PathBuf,
        /// The entry's length in bytes.
        len: usize,
    },

    /// The file does not exist and the store was opened without
    /// [`StoreOptions::create`](crate::StoreOptions::create).
    #[error("{}: the database file does not exist", path.display())]
    Missing {
        /// The database file.
        path: PathBuf,
    },

    /// Another process holds the database open.
    #[error("{}: already open in another process", path.display())]
    AlreadyOpen {
        /// The database file.
        path: PathBuf,
    },

    /// redb panicked while opening the file, which it does on some kinds of corruption.
    #[error(
        "{}: redb panicked while opening the file; it is probably corrupted (open with verify_on_open to check)",
        path.display()
    )]
    OpenPanicked {
        /// The database file.
        path: PathBuf,
    },

    /// Opening the file failed for another reason (missing folder, permissions, I/O, corruption).
    #[error("{}: cannot open the store: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        #[source]
        source: redb::Error,
    },

    /// A key longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN).
    #[error("key of {len} bytes exceeds the {max}-byte limit")]
    KeyTooLarge {
        /// Its length, in bytes.
        len: usize,
        /// [`MAX_KEY_LEN`](crate::MAX_KEY_LEN).
        max: usize,
    },

    /// A value longer than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN).
    #[error("value of {len} bytes exceeds the {max}-byte limit")]
    ValueTooLarge {
        /// Its length, in bytes.
        len: usize,
        /// [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN).
        max: usize,
    },

    /// A write to a key the store itself owns (the schema version).
    #[error("the key {key:?} in table {table} is reserved for the store")]
    ReservedKey {
        /// The table written to.
        table: crate::Table,
        /// The reserved key, as text.
        key: &'static str,
    },

    /// A read or write failed inside redb.
    #[error("database error: {0}")]
    Database(#[from] redb::Error),

    /// The store cannot serve requests until a fault clears: the disk failed or is full, redb
    /// panicked, or the database file was deleted or replaced while the node ran. See
    /// [`Store::health`](crate::Store::health) for the cause; nothing was written.
    #[error("the store is unavailable: {cause}")]
    Unavailable {
        /// The fault as it was first reported: a text, because one fault answers every
        /// caller of a batch and redb's errors cannot be cloned.
        cause: String,
    },

    /// The store was closed, or its thread stopped (see [`Store::health`](crate::Store::health)).
    #[error("the store is closed or its thread has stopped")]
    Closed,
}

impl StoreError {
    /// The same failure, told to every caller of a batch: redb's errors cannot be cloned.
    pub(crate) fn clone_unavailable(&self) -> StoreError {
        match self {
            StoreError::Unavailable { cause } => StoreError::Unavailable {
                cause: cause.clone(),
            },
            other => StoreError::Unavailable {
                cause: other.to_string(),
            },
        }
    }
}

// redb reports each stage with its own error type; all of them fold into `redb::Error`.
macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(error: $ty) -> Self {
                StoreError::Database(error.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
