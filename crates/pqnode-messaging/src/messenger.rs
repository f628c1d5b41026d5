//! [`Messenger`]: registers the receiving side on a network and sends messages.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use pqnode_crypto::NodeId;
use pqnode_net::{FailureCode, Network, RegisterError, RequestError};
use prost::Message;

use crate::handler::MessageHandler;
use crate::log::MessageLog;
use crate::stats::{Counters, MessagingStats, bump};
use pqnode_clock::unix_ms;

use crate::{MAX_TEXT_LEN, MESSAGE, pb};

/// The other node's acknowledgement: the message is committed to its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The receiver's clock when it took the message, Unix milliseconds.
    pub received_at_unix_ms: u64,
}

/// Why a message was not delivered.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The text is longer than the protocol carries; nothing was sent.
    #[error("message text of {len} bytes exceeds the {cap}-byte limit")]
    TooLarge {
        /// The text's length, in bytes.
        len: usize,
        /// [`MAX_TEXT_LEN`].
        cap: usize,
    },
    /// The addressee is this node: there is no connection to carry it.
    #[error("a node cannot send a message to itself")]
    ToSelf,
    /// The receiver is up but cannot store the message now (its disk or database failed,
    /// or it is overloaded); nothing was stored. Retry later.
    #[error("the receiving node could not store the message: {0}")]
    Unavailable(String),
    /// The receiver refused the message as malformed.
    #[error("the receiving node refused the message: {0}")]
    Refused(String),
    /// The receiver could not be reached or did not answer in time: the message may or may
    /// not have been stored.
    #[error(transparent)]
    Transport(RequestError),
}

/// Direct messages on one node: the handler that receives them, and sending.
#[derive(Clone)]
pub struct Messenger {
    network: Network,
    log: MessageLog,
    counters: Arc<Counters>,
}

impl Messenger {
    /// Registers [`MESSAGE`] on `network`, storing what arrives in `log`.
    pub fn start(network: Network, log: MessageLog) -> Result<Self, RegisterError> {
        let counters = Arc::new(Counters::default());
        network.register(MESSAGE, MessageHandler::new(log.clone(), counters.clone()))?;
        Ok(Self {
            network,
            log,
            counters,
        })
    }

    /// The log of received messages.
    pub fn log(&self) -> &MessageLog {
        &self.log
    }

    /// Counters since start, for `/api/health`.
    pub fn stats(&self) -> MessagingStats {
        self.counters.snapshot()
    }

    /// Sends `text` to `to` and returns once `to` has stored it. The transport finds `to`
    /// by itself (a live connection, a known address, or a DHT lookup).
    pub async fn send(&self, to: NodeId, text: &str) -> Result<Delivered, SendError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(SendError::TooLarge {
                len: text.len(),
                cap: MAX_TEXT_LEN,
            });
        }
        if to == self.network.node_id() {
            return Err(SendError::ToSelf);
        }
        let request = pb::DirectMessage {
            body: Bytes::copy_from_slice(text.as_bytes()),
            sent_at_unix_ms: unix_ms(SystemTime::now()),
        };
        let result = self
            .network
            .request(to, MESSAGE, request.encode_to_vec().into())
            .await;
        let outcome = match result {
            Ok(reply) => pb::Delivered::decode(reply)
                .map(|d| Delivered {
                    received_at_unix_ms: d.received_at_unix_ms,
                })
                .map_err(|e| {
                    SendError::Transport(RequestError::Malformed {
                        protocol: MESSAGE,
                        reason: e.to_string(),
                    })
                }),
            Err(RequestError::Remote { code, detail }) => Err(match code {
                FailureCode::BadRequest => SendError::Refused(detail),
                FailureCode::Unavailable => SendError::Unavailable(detail),
                _ => SendError::Transport(RequestError::Remote { code, detail }),
            }),
            Err(other) => Err(SendError::Transport(other)),
        };
        bump(match outcome {
            Ok(_) => &self.counters.sent,
            Err(_) => &self.counters.send_failed,
        });
        outcome
    }
}
