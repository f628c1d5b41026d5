//! What callers may write: size limits, and the key the store keeps for itself. Checked on
//! the caller's side, so a bad request never reaches the store thread or counts as a fault.

use bytes::Bytes;

use crate::table::{PROBE_KEY, SCHEMA_VERSION_KEY};
use crate::{StoreError, Table};

/// Longest key accepted, in bytes. DHT keys are 20 bytes; this leaves room for composite keys.
pub const MAX_KEY_LEN: usize = 4 * 1024;
/// Longest value accepted, in bytes. Large enough for a CRDT snapshot, small enough that one
/// write cannot stall the store thread for long.
pub const MAX_VALUE_LEN: usize = 64 * 1024 * 1024;

pub(crate) fn checked_key(key: &[u8]) -> Result<Bytes, StoreError> {
    if key.len() > MAX_KEY_LEN {
        return Err(StoreError::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(Bytes::copy_from_slice(key))
}

/// A key a caller may write: within size, and not one the store reserves for itself.
pub(crate) fn writable_key(table: Table, key: &[u8]) -> Result<Bytes, StoreError> {
    if table == Table::Meta && (key == SCHEMA_VERSION_KEY || key == PROBE_KEY) {
        return Err(reserved_schema_key());
    }
    checked_key(key)
}

pub(crate) fn reserved_schema_key() -> StoreError {
    StoreError::ReservedKey {
        table: Table::Meta,
        key: "schema_version",
    }
}

pub(crate) fn checked_entries<K, V>(
    table: Table,
    entries: impl IntoIterator<Item = (K, V)>,
) -> Result<Vec<(Bytes, Bytes)>, StoreError>
where
    K: AsRef<[u8]>,
    V: Into<Bytes>,
{
    entries
        .into_iter()
        .map(|(key, value)| {
            Ok((
                writable_key(table, key.as_ref())?,
                checked_value(value.into())?,
            ))
        })
        .collect()
}

pub(crate) fn checked_value(value: Bytes) -> Result<Bytes, StoreError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(StoreError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(value)
}
