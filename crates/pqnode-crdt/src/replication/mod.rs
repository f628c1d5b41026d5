//! Replication of documents between nodes, with no central server: every node holding a
//! document syncs it with the others that hold it.
//!
//! What it is for. A [`Replicator`] keeps the documents it [tracks](Replicator::track) in
//! step with their other replicas. Nodes find each other through a [`ReplicaDirectory`] (DHT
//! provider entries under [`replica_key`]) and talk through a [`SyncLink`] (the `SYNC`
//! protocol over PQ QUIC, messages in [`wire`], at most [`SYNC_MAX_MESSAGE`] bytes). For each
//! replica:
//!
//! - **Anti-entropy** ("exchange"): send our state vector, receive what we lack and their
//!   state vector, commit it, push what they lack. Run when tracking starts, every
//!   [`anti_entropy_interval`](ReplicationConfig::anti_entropy_interval) (jittered), when a
//!   replica that failed answers again (retries back off; [`Replicator::peer_reachable`]
//!   lets the node say "it is back" at once), and when a live queue overflowed.
//! - **Live updates**: updates committed here by clients or the API are pushed to every
//!   replica as they commit, several merged into one push while a push is in flight. Updates
//!   that came from replication are not forwarded again (no storms); a node hears another's
//!   edits from that node, or transitively through anti-entropy. A slow or unreachable
//!   replica gets no unbounded queue: past [`live_queue_updates`] or [`live_queue_bytes`] its
//!   queue is dropped and anti-entropy catches it up instead.
//!
//! Durability: an inbound push is answered only once the store committed it, and a diff is
//! committed before we push anything back, so an acknowledgement always means on disk. What
//! a node committed reaches the others by live push or, failing that, by the next exchange.
//!
//! Unknown documents. A request for a document this node neither tracks nor stores makes it
//! a replica (stored and tracked) when [`accept_new`](ReplicationConfig::accept_new) is on
//! (the default: any node may place a document here, so a client can open it on any node);
//! off, the request is answered `NotHeld` and the asker drops this node for that document.
//!
//! What it is not: access control (the binary decides which documents to track; the
//! transport proves which node is asking), deletion across nodes (a CRDT keeps no tombstone
//! for a whole document: deleting it here stops replicating it here; other replicas keep
//! it), nor awareness (presence is per connection and ephemeral; it stays on its node).
//! A tracked document stays loaded in memory while tracked ([`max_tracked_docs`] bounds it).
//!
//! # Wiring it
//!
//! ```no_run
//! # async fn demo(docs: pqnode_crdt::DocStore, from: pqnode_crypto::NodeId, body: bytes::Bytes)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use pqnode_crdt::replication::LocalOnly;
//! use pqnode_crdt::{DocName, ReplicationConfig, Replicator};
//!
//! // The node passes its DHT directory and its QUIC link; a standalone node, LocalOnly.
//! let replicator = Replicator::new(docs, Arc::new(LocalOnly), Arc::new(LocalOnly),
//!     ReplicationConfig::default())?;
//! replicator.track_stored().await?;                // at start: catch up on what we hold
//! replicator.track(&DocName::new("notes")?)?;      // a client opened a new document
//! // The SYNC handler: `from` as TLS proved it; an error answers BadRequest or Unavailable.
//! let reply = replicator.handle(from, body).await?;
//! // On shutdown, before the store closes:
//! replicator.shutdown().await;
//! # let _ = reply; Ok(()) }
//! ```
//!
//! [`live_queue_updates`]: ReplicationConfig::live_queue_updates
//! [`live_queue_bytes`]: ReplicationConfig::live_queue_bytes
//! [`max_tracked_docs`]: ReplicationConfig::max_tracked_docs

mod apply;
mod config;
mod error;
mod exchange;
mod inbound;
mod peer;
mod replicator;
mod seams;
mod stats;
mod tracked;
pub mod wire;

pub use config::ReplicationConfig;
pub use error::ReplicationError;
pub use replicator::{Replicator, SyncReport};
pub use seams::{
    BoxFuture, EntryError, LinkError, LocalOnly, REPLICA_ENTRY_PREFIX, ReplicaDirectory, SyncLink,
    check_replica_entry, replica_entry, replica_key,
};
pub use stats::ReplicationStats;
pub use wire::{MAX_REPLICATED_DOC_BYTES, SYNC_MAX_MESSAGE};

use std::hash::BuildHasher;
use std::time::Duration;

/// `base` scaled by a random factor in [0.75, 1.25), so nodes and documents started together
/// spread their rounds out.
pub(crate) fn jitter(base: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    let fraction = (random % 1000) as f64 / 1000.0;
    base.mul_f64(0.75 + fraction / 2.0)
}
