//! [`MessageLog`]: received messages in the store's `messages` table.

use pqnode_crypto::NodeId;
use pqnode_store::{Store, StoreError, Table};
use serde::{Deserialize, Serialize};

/// Key layout: arrival time (8 bytes, big-endian ms), sender (20), random nonce (8). Keys sort
/// by arrival, so the newest messages are the greatest keys.
const KEY_LEN: usize = 8 + 20 + 8;

/// A received message as stored and as `GET /api/messages` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    /// Its key in the log (hex): a cursor for the next page. Not stored in the value.
    #[serde(default, skip_deserializing, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Authenticated by the QUIC handshake: the sender's key hashes to this id.
    pub from: NodeId,
    /// The text, UTF-8, at most [`MAX_TEXT_LEN`](crate::MAX_TEXT_LEN) bytes.
    pub body: String,
    /// The sender's clock (informative), Unix milliseconds.
    pub sent_at: u64,
    /// Our clock, Unix milliseconds.
    pub received_at: u64,
}

/// One page of the log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// At most the `limit` asked for, newest first.
    pub messages: Vec<StoredMessage>,
    /// Messages in the whole log.
    pub total: u64,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next: Option<String>,
}

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// `before` is not an id this log handed out (not hex, or not a key's length).
    #[error("`before` is not a message id")]
    BadCursor,
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The received-message table.
#[derive(Clone, Debug)]
pub struct MessageLog {
    store: Store,
}

impl MessageLog {
    /// The log kept in `store`'s `messages` table.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Stores `message`; returns once it is committed (durable), with the id it got.
    pub async fn append(&self, message: &StoredMessage) -> Result<String, StoreError> {
        let mut key = Vec::with_capacity(KEY_LEN);
        key.extend_from_slice(&message.received_at.to_be_bytes());
        key.extend_from_slice(message.from.as_bytes());
        let mut nonce = [0u8; 8];
        // Only tells apart two messages of one sender in one millisecond: a weak source would do.
        if getrandom::fill(&mut nonce).is_err() {
            nonce = message.sent_at.to_le_bytes();
        }
        key.extend_from_slice(&nonce);
        let value = serde_json::to_vec(message).unwrap_or_default();
        self.store.put(Table::Messages, &key, value).await?;
        Ok(hex::encode(key))
    }

    /// The newest `limit` messages older than `before` (an id from an earlier page), or the
    /// newest overall, newest first.
    pub async fn page(&self, limit: usize, before: Option<&str>) -> Result<MessagePage, ReadError> {
        let entries = match before {
            Some(cursor) => {
                let key = hex::decode(cursor).map_err(|_| ReadError::BadCursor)?;
                if key.len() != KEY_LEN {
                    return Err(ReadError::BadCursor);
                }
                self.store
                    .last_entries_before(Table::Messages, key, limit)
                    .await?
            }
            None => self.store.last_entries(Table::Messages, limit).await?,
        };
        let total = self.store.len(Table::Messages).await?;
        let full = entries.len() == limit && limit > 0;
        let next = entries
            .last()
            .filter(|_| full)
            .map(|(key, _)| hex::encode(key));
        let messages = entries
            .iter()
            .filter_map(|(key, value)| {
                let decoded = serde_json::from_slice::<StoredMessage>(value);
                if decoded.is_err() {
                    tracing::warn!(
                        id = hex::encode(key),
                        "unreadable message in the store; skipped"
                    );
                }
                decoded.ok().map(|m| StoredMessage {
                    id: hex::encode(key),
                    ..m
                })
            })
            .collect();
        Ok(MessagePage {
            messages,
            total,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: u64) -> StoredMessage {
        StoredMessage {
            id: String::new(),
            from: NodeId::from_bytes([7; 20]),
            body: format!("m{n}"),
            sent_at: n,
            received_at: 1_000 + n,
        }
    }

    #[tokio::test]
    async fn pages_walk_the_whole_log_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = MessageLog::new(Store::open(dir.path().join("s.redb")).await.unwrap());
        for n in 0..25 {
            log.append(&message(n)).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = log.page(10, before.as_deref()).await.unwrap();
            assert_eq!(page.total, 25);
            seen.extend(page.messages.iter().map(|m| m.body.clone()));
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        let expected: Vec<_> = (0..25).rev().map(|n| format!("m{n}")).collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_bad_cursor_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = MessageLog::new(Store::open(dir.path().join("s.redb")).await.unwrap());
        assert!(matches!(
            log.page(10, Some("zz")).await,
            Err(ReadError::BadCursor)
        ));
        assert!(matches!(
            log.page(10, Some("00")).await,
            Err(ReadError::BadCursor)
        ));
    }
}
