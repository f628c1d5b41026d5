//! CRDT documents for pqnode: durable [yrs](https://docs.rs/yrs) (Yjs) documents on the
//! node's store, and the Yjs sync and awareness protocol for one connection at a time.
//!
//! What it is for. [`DocStore`] keeps documents in the store's `documents` table as an
//! append-only log of updates plus a snapshot written every N updates or M bytes, loads them
//! on first use, and drops idle ones from memory. [`DocStore::apply_update`] validates an
//! update (size caps, decodes with yrs, refuses corrupted ones leaving the document intact),
//! applies it and returns only once the store has committed it: the rule direct messages
//! follow, an acknowledgement means durable. Updates to one document arriving together, from
//! many connections or in a burst from one (a [`Session`] queues a client's next update
//! without waiting for the last one's commit), share one yrs transaction and one commit (yrs
//! pays per transaction, the store per `fsync`).
//! [`Session`] speaks the protocol of npm `y-websocket` (sync step 1 / step 2 / update,
//! awareness, query-awareness) for one connection without doing I/O, and every session of a
//! document hears the others' committed updates and awareness through the document's
//! broadcast ([`DocSubscription`]). [`Replicator`] ([`replication`]) keeps documents in step
//! with the other nodes holding them: it finds them through a [`replication::ReplicaDirectory`]
//! and talks to them through a [`replication::SyncLink`], two seams the binary implements over
//! the DHT and PQ QUIC (protocol `SYNC`, messages in `proto/sync.proto`).
//!
//! What it is not: a WebSocket server, an HTTP API, a network transport or access control
//! (the binary and later crates build those on this one); nor a CRDT of its own: the merge
//! semantics are Yjs's, via yrs.
//!
//! # Storage and history
//!
//! Keys in `documents` (all of one document's keys share its name after a tag byte):
//! `m<name>` the header (JSON), `l<name>\0<seq>` log entries, `s<name>\0<seq>` snapshots,
//! `seq` a big-endian u64; log and snapshot values carry their commit time (u64 BE Unix ms)
//! before the Yjs v1 update. One batch of updates, its header, and a snapshot when one is due
//! are written in one transaction. Loading reads the newest snapshot and the log after it.
//!
//! History kept after compaction: the newest snapshot, the one before it, and every log entry
//! after the one before it. So every version since the previous snapshot can be read
//! ([`DocStore::at_version`], [`DocStore::history`]): at least the last N updates, at most 2N.
//! Before the first compaction nothing was removed and every version since 0 (empty) is
//! readable.
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo(store: pqnode_store::Store, frame: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! use pqnode_crdt::{DocConfig, DocName, DocStore, Session, SessionOptions};
//!
//! let docs = DocStore::open(store, DocConfig::default()).await?;
//! let name = DocName::new("notes")?;
//!
//! // One WebSocket connection on /sync/notes:
//! let (mut session, mut events, greeting) = Session::open(&docs, &name, SessionOptions::default()).await?;
//! for out in greeting { /* send out.frame as one binary frame */ }
//! // loop { select! {
//! //     frame = socket.next() => for out in session.on_message(&frame).await? { send(out.frame) },
//! //     event = events.recv() => for out in session.on_event(event?)? { send(out.frame) },
//! //     committed = session.committed() => committed?,
//! // } }  and on an error `e`: close with e.close_code() and e.to_string().
//! # let _ = session.on_message(&frame).await?; let _ = events.recv().await?;
//! # session.flush().await?;
//!
//! println!("{:?}", docs.json(&name).await?);
//! # Ok(()) }
//! ```

mod awareness;
mod cache;
mod config;
mod docstore;
mod error;
mod hub;
mod keys;
mod load;
mod name;
mod reads;
pub mod replication;

/// Entry points for the fuzz targets in `fuzz/`: not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Parses one client frame as a session does (every message in it, state vectors and
    /// awareness decoded; update payloads are left to yrs); must never panic.
    pub fn parse_frame(frame: &[u8]) {
        let mut reader = crate::wire::Reader::new(frame);
        while !reader.is_empty() {
            if crate::wire::next_message(&mut reader).is_err() {
                break;
            }
        }
    }

    /// Decodes a replication request and response from another node; must never panic.
    pub fn decode_sync(bytes: &[u8]) {
        let _ = crate::replication::wire::SyncRequest::decode(bytes);
        let _ = crate::replication::wire::SyncResponse::decode(bytes);
    }
}
mod session;
mod slot;
mod stats;
mod wire;
mod writer;
mod ydoc;

pub use config::{ConfigError, DocConfig};
pub use docstore::DocStore;
pub use error::{DocError, SessionError};
pub use hub::{DocChange, DocEvent, DocSubscription, OriginId};
pub use load::LogEntry;
pub use name::{DocName, MAX_NAME_LEN, NameError};
pub use reads::{DocInfo, DocVersion};
pub use replication::{ReplicationConfig, ReplicationError, ReplicationStats, Replicator};
pub use session::{MessageKind, Outgoing, Session, SessionOptions};
pub use stats::CrdtStats;
