//! Direct messages between pqnode nodes.
//!
//! What it is for: one node sends a short UTF-8 text to another by node id, over the
//! post-quantum QUIC transport ([`pqnode_net`]), and the receiver keeps it in its store.
//! The protocol is [`MESSAGE`], registered with the transport like any other feature's.
//!
//! The promise: a sender that gets [`Delivered`] knows the message is committed to the
//! receiver's disk. The receiving [`MessageHandler`] answers only after the store's commit
//! (group-committed, so concurrent messages share one `fsync`); when the store cannot take the
//! message (full disk, failed or missing database) the sender gets
//! [`SendError::Unavailable`], never a delivery. A sender that gets neither (a timeout, a lost
//! connection) does not know, and may retry: delivery is at least once.
//!
//! What it is not: a mailbox for offline nodes (the receiver must be reachable), nor
//! end-to-end encryption beyond the transport's (each hop is its own TLS 1.3 session; there
//! is only one hop).
//!
//! ```no_run
//! # async fn demo(network: pqnode_net::Network, store: pqnode_store::Store, to: pqnode_crypto::NodeId)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use pqnode_messaging::{MessageLog, Messenger};
//!
//! // Receive: store what arrives, acknowledge once it is durable.
//! let messenger = Messenger::start(network, MessageLog::new(store))?;
//! // Send: returns once the other node has the message on disk.
//! let delivered = messenger.send(to, "hello over ML-KEM-1024").await?;
//! println!("stored by {to} at {} ms", delivered.received_at_unix_ms);
//! # Ok(()) }
//! ```

mod handler;
mod log;
mod messenger;
mod stats;

/// Messages generated from `proto/message.proto`.
mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/pqnode.message.v1.rs"));
}

pub use handler::MessageHandler;
pub use log::{MessageLog, MessagePage, ReadError, StoredMessage};
pub use messenger::{Delivered, Messenger, SendError};
pub use stats::MessagingStats;

use pqnode_net::Protocol;

/// Longest message text, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// The direct-message protocol: wire id 4 (see `pqnode-net`'s `proto/wire.proto`).
pub const MESSAGE: Protocol = Protocol::new(4, "MESSAGE", MAX_TEXT_LEN + 16 * 1024);
