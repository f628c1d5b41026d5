//! Offline work on a store file, for an operator (`pqnode store ...`) while no node runs:
//! a full integrity check, and compaction.

use std::collections::BTreeMap;
use std::path::Path;

use redb::ReadableDatabase;
use serde::Serialize;

use crate::open::{StoreOptions, open_database};
use crate::ops::count;
use crate::{StoreError, Table};

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Entries per table.
    pub entries: BTreeMap<Table, u64>,
    /// File size in bytes.
    pub file_size_bytes: u64,
    /// Whether redb had to repair the file (it was not closed cleanly).
    pub repaired: bool,
}

/// Opens the existing store at `path`, verifies every page checksum and the schema, and
/// counts its tables. Refuses a missing file, and leaves a file it cannot trust unchanged.
pub fn check(path: &Path) -> Result<CheckReport, StoreError> {
    // A plain open first: only it tells whether the file needed redb's repair.
    let plain = StoreOptions {
        verify_on_open: false,
        ..offline_options()
    };
    let repaired = {
        let opened = open_database(path, &plain)?;
        opened.db.close()?;
        opened.repaired
    };
    let opened = open_database(path, &offline_options())?;
    let txn = opened.db.begin_read()?;
    let counts = count(&txn)?;
    drop(txn);
    opened.db.close()?;
    Ok(CheckReport {
        entries: counts.entries,
        file_size_bytes: file_size(path)?,
        repaired,
    })
}

/// Compacts the existing store at `path` (after checking it); returns the file size before
/// and after.
pub fn compact(path: &Path) -> Result<(u64, u64), StoreError> {
    let before = file_size(path)?;
    let mut opened = open_database(path, &offline_options())?;
    while opened.db.compact().map_err(redb::Error::from)? {}
    opened.db.close()?;
    Ok((before, file_size(path)?))
}

fn offline_options() -> StoreOptions {
    StoreOptions {
        verify_on_open: true,
        create: false,
        ..StoreOptions::default()
    }
}

fn file_size(path: &Path) -> Result<u64, StoreError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|error| StoreError::Open {
            path: path.to_owned(),
            source: error.into(),
        })
}
