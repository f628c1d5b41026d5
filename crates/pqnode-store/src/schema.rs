//! The schema version: stamped on creation, checked on every open.
//!
//! The check runs in a read transaction first, so a file this build must refuse (newer,
//! foreign) is never written to.

use std::path::Path;

use redb::{Database, ReadableDatabase, TableError, TableHandle};

use crate::StoreError;
use crate::table::{EXPIRY_INDEX, RECORD_EXPIRY, SCHEMA_VERSION_KEY, Table};

/// The layout this build reads and writes. Bump it (and add a migration) whenever an on-disk
/// encoding changes. A new table needs no bump: a file of this version that lacks one gets it
/// (empty) when it is opened, and older builds never open tables they do not know.
pub const SCHEMA_VERSION: u64 = 1;

/// Checks the file's schema version, or stamps a new file with ours and creates every table.
pub(crate) fn check_or_init(db: &Database, path: &Path) -> Result<(), StoreError> {
    match stored_version(db, path)? {
        Some(found) if found == SCHEMA_VERSION => add_missing_tables(db),
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        Some(found) => Err(StoreError::SchemaTooOld {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        }),
        None => init(db),
    }
}

fn stored_version(db: &Database, path: &Path) -> Result<Option<u64>, StoreError> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(Table::Meta.definition()) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => {
            // No meta table: a brand-new file, unless another program put tables in it.
            return match txn.list_tables()?.next() {
                None => Ok(None),
                Some(_) => Err(StoreError::ForeignDatabase {
                    path: path.to_owned(),
                }),
            };
        }
        Err(error) => return Err(error.into()),
    };
    let Some(raw) = meta.get(SCHEMA_VERSION_KEY)? else {
        return Err(StoreError::ForeignDatabase {
            path: path.to_owned(),
        });
    };
    let bytes: [u8; 8] =
        raw.value()
            .try_into()
            .map_err(|_| StoreError::MalformedSchemaVersion {
                path: path.to_owned(),
                len: raw.value().len(),
            })?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

/// Creates the tables this build added since the file was made, in one write transaction
/// (none when nothing is missing).
fn add_missing_tables(db: &Database) -> Result<(), StoreError> {
    let missing: Vec<String> = {
        let txn = db.begin_read()?;
        let present: Vec<String> = txn.list_tables()?.map(|t| t.name().to_owned()).collect();
        let wanted = Table::ALL.iter().map(|t| t.name().to_owned()).chain([
            RECORD_EXPIRY.name().to_owned(),
            EXPIRY_INDEX.name().to_owned(),
        ]);
        wanted.filter(|name| !present.contains(name)).collect()
    };
    if missing.is_empty() {
        return Ok(());
    }
    let txn = db.begin_write()?;
    create_tables(&txn)?;
    txn.commit()?;
    tracing::info!(tables = ?missing, "added tables this build uses to the store");
    Ok(())
}

/// Opens (so creates) every table this build uses.
fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    for table in Table::ALL {
        txn.open_table(table.definition())?;
    }
    txn.open_table(RECORD_EXPIRY)?;
    txn.open_table(EXPIRY_INDEX)?;
    Ok(())
}

fn init(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    create_tables(&txn)?;
    {
        let mut meta = txn.open_table(Table::Meta.definition())?;
        meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION.to_be_bytes().as_slice())?;
    }
    txn.commit()?;
    tracing::info!(version = SCHEMA_VERSION, "created a new store");
    Ok(())
}
