//! DHT records as the store keeps them: a value and, usually, an expiry.

use std::time::SystemTime;

use bytes::Bytes;

/// A stored DHT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The bytes as written; the store does not interpret them.
    pub value: Bytes,
    /// When the record stops being served; `None` for a record written with a plain
    /// [`Store::put`](crate::Store::put), which never expires.
    pub expires_at: Option<SystemTime>,
}

// Expiries are kept on disk as Unix milliseconds (`pqnode_clock`): a value no `SystemTime`
// can hold, only possible in a damaged file, reads as long expired rather than as immortal.
pub(crate) use pqnode_clock::{from_unix_ms, unix_ms as to_unix_ms};
