//! Opening the database file: options, the guarded open, and errors a person can act on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redb::{Database, DatabaseError, StorageError};

use crate::file_identity::FileIdentity;
use crate::{StoreError, schema};

/// Tuning for [`Store::open_with`](crate::Store::open_with). The defaults suit a node.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Memory redb may use to cache pages (redb's own default is 1 GiB).
    pub page_cache_bytes: usize,
    /// Memory the read cache in front of [`Store::get`](crate::Store::get) may use.
    pub read_cache_bytes: u64,
    /// How long an entry stays in the read cache.
    pub read_cache_ttl: Duration,
    /// Verify every page checksum on open. Reads the whole file, so it is off by default;
    /// without it a file damaged outside redb can make the open fail with
    /// [`StoreError::OpenPanicked`]. redb checks and repairs the file by itself after an
    /// unclean shutdown either way.
    pub verify_on_open: bool,
    /// Create the file if it does not exist. A node that has run before turns this off, so a
    /// lost database is an error to act on, not a silent fresh start.
    pub create: bool,
    /// Most writes committed together under one `fsync` (group commit). 1 commits every write
    /// on its own: only for measuring what grouping buys.
    pub max_group: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            page_cache_bytes: 64 * 1024 * 1024,
            read_cache_bytes: 16 * 1024 * 1024,
            read_cache_ttl: Duration::from_secs(300),
            verify_on_open: false,
            create: true,
            max_group: 256,
        }
    }
}

/// A database just opened: the handle, which file it is, and whether redb had to repair it.
pub(crate) struct Opened {
    pub(crate) db: Database,
    pub(crate) file: FileIdentity,
    pub(crate) repaired: bool,
}

/// Opens (or, if `options.create`, creates) the database, checks its schema and notes which
/// file it is. redb may panic on a file damaged outside it; that is reported as an error
/// instead of taking the node down.
pub(crate) fn open_database(path: &Path, options: &StoreOptions) -> Result<Opened, StoreError> {
    let repaired = Arc::new(AtomicBool::new(false));
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let mut builder = redb::Builder::new();
        let noticed = Arc::clone(&repaired);
        let verifying = options.verify_on_open;
        builder
            .set_cache_size(options.page_cache_bytes)
            .set_check_integrity_on_open(options.verify_on_open)
            .set_repair_callback(move |_| {
                // A check on open runs through the repair path on every open: not a repair.
                if verifying {
                    return;
                }
                if !noticed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the store was not closed cleanly; redb is checking and repairing it"
                    );
                }
            });
        let db = if options.create {
            builder.create(path)
        } else {
            builder.open(path)
        }
        .map_err(|error| open_error(path, options.create, error))?;
        schema::check_or_init(&db, path).map_err(|error| match error {
            StoreError::Database(source) => StoreError::Open {
                path: path.to_owned(),
                source,
            },
            other => other,
        })?;
        Ok(db)
    }));
    let db = opened.unwrap_or_else(|_| {
        Err(StoreError::OpenPanicked {
            path: path.to_owned(),
        })
    })?;
    let file = FileIdentity::of(path).map_err(|error| StoreError::Open {
        path: path.to_owned(),
        source: error.into(),
    })?;
    Ok(Opened {
        db,
        file,
        repaired: repaired.load(Ordering::Relaxed),
    })
}

fn open_error(path: &Path, create: bool, error: DatabaseError) -> StoreError {
    let path = path.to_owned();
    match error {
        DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen { path },
        // With `create`, only a missing folder gives NotFound: an `Open` error says so.
        DatabaseError::Storage(StorageError::Io(io))
            if !create && io.kind() == std::io::ErrorKind::NotFound =>
        {
            StoreError::Missing { path }
        }
        // How redb reports a file without its magic number.
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::NotADatabase { path }
        }
        other => StoreError::Open {
            path,
            source: other.into(),
        },
    }
}
