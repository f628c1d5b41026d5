//! The receiving side: [`MessageHandler`] answers [`MESSAGE`](crate::MESSAGE) requests.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use pqnode_net::{Caller, Handler, HandlerError};
use prost::Message;

use crate::log::{MessageLog, StoredMessage};
use crate::stats::{Counters, bump};
use pqnode_clock::unix_ms;

use crate::{MAX_TEXT_LEN, pb};

/// Stores each message from an authenticated peer and acknowledges it only once the store
/// has committed it.
pub struct MessageHandler {
    log: MessageLog,
    counters: Arc<Counters>,
}

impl MessageHandler {
    pub(crate) fn new(log: MessageLog, counters: Arc<Counters>) -> Self {
        Self { log, counters }
    }

    fn decode(&self, caller: Caller, payload: &[u8]) -> Result<StoredMessage, HandlerError> {
        let malformed = |reason: String| {
            bump(&self.counters.refused_malformed);
            HandlerError::BadRequest(reason)
        };
        let message = pb::DirectMessage::decode(payload)
            .map_err(|e| malformed(format!("DirectMessage: {e}")))?;
        if message.body.len() > MAX_TEXT_LEN {
            return Err(malformed(format!("message text over {MAX_TEXT_LEN} bytes")));
        }
        let body = String::from_utf8(message.body.to_vec())
            .map_err(|_| malformed("message text must be UTF-8".into()))?;
        Ok(StoredMessage {
            id: String::new(),
            from: caller.node_id,
            body,
            sent_at: message.sent_at_unix_ms,
            received_at: unix_ms(SystemTime::now()),
        })
    }
}

impl Handler for MessageHandler {
    async fn handle(&self, caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        let message = self.decode(caller, &payload)?;
        // The acknowledgement is the promise: no reply before the commit.
        if let Err(error) = self.log.append(&message).await {
            bump(&self.counters.refused_store);
            return Err(HandlerError::Unavailable(format!(
                "the message was not stored ({error}); retry later"
            )));
        }
        bump(&self.counters.received);
        tracing::debug!(from = %message.from, bytes = message.body.len(), "message stored");
        let delivered = pb::Delivered {
            received_at_unix_ms: message.received_at,
        };
        Ok(delivered.encode_to_vec().into())
    }
}
