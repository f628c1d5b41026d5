//! Direct messages between nodes, kept in the store's `messages` table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pqnode_crypto::NodeId;
use pqnode_net::{HandlerError, InboundMessage, MessageSink};
use pqnode_store::{Store, Table};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

/// Received messages waiting for the store; beyond this the sender is told to retry.
const WRITE_QUEUE: usize = 1024;

/// A received message as stored and as `GET /api/messages` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    /// Authenticated by the QUIC handshake: the sender's key hashes to this id.
    pub from: NodeId,
    pub body: String,
    /// The sender's clock (informative), Unix milliseconds.
    pub sent_at: u64,
    /// Our clock, Unix milliseconds.
    pub received_at: u64,
}

/// The message table.
#[derive(Clone)]
pub struct MessageLog {
    store: Store,
}

impl MessageLog {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Keys sort by arrival time, then by sender, so a scan is chronological.
    async fn append(&self, message: &StoredMessage) -> anyhow::Result<()> {
        let mut key = Vec::with_capacity(8 + 20 + 8);
        key.extend_from_slice(&message.received_at.to_be_bytes());
        key.extend_from_slice(message.from.as_bytes());
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("random: {e}"))?;
        key.extend_from_slice(&nonce);
        let value = serde_json::to_vec(message)?;
        self.store.put(Table::Messages, key, value).await?;
        Ok(())
    }

    /// The newest `limit` messages, newest first, and how many there are in all.
    pub async fn newest(&self, limit: usize) -> anyhow::Result<(Vec<StoredMessage>, u64)> {
        let entries = self.store.last_entries(Table::Messages, limit).await?;
        let total = self.store.len(Table::Messages).await?;
        let messages = entries
            .iter()
            .filter_map(|(_, value)| serde_json::from_slice(value).ok())
            .collect();
        Ok((messages, total))
    }
}

/// Hands received messages to a writer task, so the QUIC connection task never waits on disk.
pub struct StoreSink {
    queue: mpsc::Sender<StoredMessage>,
}

impl StoreSink {
    pub fn spawn(log: MessageLog, tracker: &TaskTracker, cancel: CancellationToken) -> Self {
        let (queue, mut rx) = mpsc::channel::<StoredMessage>(WRITE_QUEUE);
        tracker.spawn(async move {
            loop {
                let message = tokio::select! {
                    m = rx.recv() => m,
                    () = cancel.cancelled() => { rx.close(); rx.recv().await }
                };
                let Some(message) = message else { return };
                match log.append(&message).await {
                    Ok(()) => info!(from = %message.from, bytes = message.body.len(), "message received"),
                    Err(e) => error!(from = %message.from, error = format!("{e:#}"), "could not store a received message"),
                }
            }
        });
        Self { queue }
    }
}

impl MessageSink for StoreSink {
    fn deliver(&self, message: InboundMessage) -> Result<(), HandlerError> {
        let body = String::from_utf8(message.body.to_vec())
            .map_err(|_| HandlerError::BadRequest("message bodies are UTF-8 text".into()))?;
        let stored = StoredMessage {
            from: message.from,
            body,
            sent_at: unix_ms(message.sent_at),
            received_at: unix_ms(message.received_at),
        };
        self.queue
            .try_send(stored)
            .map_err(|_| HandlerError::Unavailable("message queue full, retry later".into()))
    }
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// The body as the transport carries it.
pub fn body_bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}
