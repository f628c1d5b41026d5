//! How documents lie in the store's `documents` table.
//!
//! Every key starts with one tag byte and the document's name:
//!
//! | key | value |
//! |---|---|
//! | `m` name | the header, [`DocMeta`] as JSON |
//! | `l` name `\0` seq (u64 BE) | a log entry: commit time (u64 BE Unix ms), then the update (Yjs v1) |
//! | `s` name `\0` seq (u64 BE) | a snapshot of the whole document after entry `seq`, same framing |
//!
//! Names never contain a NUL byte, so `l name \0` selects exactly one document's log, and
//! sequence numbers in big-endian order make the log sort in the order it was written. The
//! header is written in the same transaction as the entries it counts, so it is never behind.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::DocName;

const META: u8 = b'm';
const LOG: u8 = b'l';
const SNAPSHOT: u8 = b's';
/// Bytes of the commit time in front of every log entry and snapshot.
pub(crate) const TIME_LEN: usize = 8;

/// The durable header of one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DocMeta {
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    /// Sequence number of the newest log entry (0: none yet). A document's version.
    pub(crate) last_seq: u64,
    /// The entry the newest snapshot covers (0: no snapshot).
    pub(crate) snapshot_seq: u64,
    pub(crate) snapshot_bytes: u64,
    /// The oldest readable version: the older kept snapshot's entry, or 0 (the empty document)
    /// when nothing was compacted away yet.
    pub(crate) base_seq: u64,
    /// Entries (and their bytes) after the newest snapshot: what a load replays.
    pub(crate) log_updates: u64,
    pub(crate) log_bytes: u64,
    /// Entries (and their bytes) between the oldest readable version and the newest snapshot,
    /// kept for history only.
    pub(crate) old_updates: u64,
    pub(crate) old_bytes: u64,
    pub(crate) compactions: u64,
}

impl DocMeta {
    /// Stored bytes a load reads: the newest snapshot and the updates after it.
    pub(crate) fn stored_bytes(&self) -> u64 {
        self.snapshot_bytes.saturating_add(self.log_bytes)
    }

    pub(crate) fn exists(&self) -> bool {
        self.created_ms != 0 || self.last_seq != 0
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|error| format!("header: {error}"))
    }
}

pub(crate) fn meta_key(name: &DocName) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.as_str().len());
    key.push(META);
    key.extend_from_slice(name.as_str().as_bytes());
    key
}

/// The prefix every header key starts with, for listing documents.
pub(crate) const META_PREFIX: &[u8] = &[META];

pub(crate) fn name_of_meta_key(key: &[u8]) -> Option<DocName> {
    let name = key.strip_prefix(META_PREFIX)?;
    DocName::new(std::str::from_utf8(name).ok()?).ok()
}

fn prefix(tag: u8, name: &DocName) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + name.as_str().len() + 8);
    key.push(tag);
    key.extend_from_slice(name.as_str().as_bytes());
    key.push(0);
    key
}

pub(crate) fn log_prefix(name: &DocName) -> Vec<u8> {
    prefix(LOG, name)
}

pub(crate) fn snapshot_prefix(name: &DocName) -> Vec<u8> {
    prefix(SNAPSHOT, name)
}

pub(crate) fn log_key(name: &DocName, seq: u64) -> Vec<u8> {
    with_seq(log_prefix(name), seq)
}

pub(crate) fn snapshot_key(name: &DocName, seq: u64) -> Vec<u8> {
    with_seq(snapshot_prefix(name), seq)
}

fn with_seq(mut key: Vec<u8>, seq: u64) -> Vec<u8> {
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The sequence number at the end of a log or snapshot key of `name`.
pub(crate) fn seq_of(key: &[u8], prefix: &[u8]) -> Option<u64> {
    let seq = key.strip_prefix(prefix)?;
    Some(u64::from_be_bytes(seq.try_into().ok()?))
}

/// Every key of one kind of `name`, as a half-open range for a deletion.
pub(crate) fn whole(prefix: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let mut end = prefix.clone();
    // The prefix ends in the NUL separator; 0x01 there is past every sequence number.
    if let Some(last) = end.last_mut() {
        *last = 1;
    }
    (prefix, end)
}

/// Keys of `prefix` with a sequence number below `seq`.
pub(crate) fn below(prefix: Vec<u8>, seq: u64) -> (Vec<u8>, Vec<u8>) {
    let end = with_seq(prefix.clone(), seq);
    (prefix, end)
}

/// A log entry or snapshot value: commit time, then the update.
pub(crate) fn frame_value(time_ms: u64, update: &[u8]) -> Bytes {
    let mut value = BytesMut::with_capacity(TIME_LEN + update.len());
    value.put_u64(time_ms);
    value.put_slice(update);
    value.freeze()
}

/// The commit time and update of a stored value.
pub(crate) fn split_value(value: &Bytes) -> Option<(u64, Bytes)> {
    let time: [u8; TIME_LEN] = value.get(..TIME_LEN)?.try_into().ok()?;
    Some((u64::from_be_bytes(time), value.slice(TIME_LEN..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_document_never_overlap_another() {
        let ab = DocName::new("ab").unwrap();
        let abc = DocName::new("abc").unwrap();
        assert!(!log_key(&abc, 1).starts_with(&log_prefix(&ab)));
        let (start, end) = whole(log_prefix(&ab));
        for seq in [0, 1, u64::MAX] {
            let key = log_key(&ab, seq);
            assert!(start <= key && key < end);
            assert_eq!(seq_of(&key, &log_prefix(&ab)), Some(seq));
        }
        assert!(!(start <= log_key(&abc, 1) && log_key(&abc, 1) < end));
        let (start, end) = below(snapshot_prefix(&ab), 5);
        assert!(start <= snapshot_key(&ab, 4) && snapshot_key(&ab, 4) < end);
        assert!(snapshot_key(&ab, 5) >= end);
        assert_eq!(name_of_meta_key(&meta_key(&abc)), Some(abc));
    }

    #[test]
    fn values_round_trip() {
        let value = frame_value(42, b"update");
        assert_eq!(
            split_value(&value),
            Some((42, Bytes::from_static(b"update")))
        );
        assert_eq!(split_value(&Bytes::from_static(b"short")), None);
    }
}
