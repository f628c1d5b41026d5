//! The pqnode store: one [redb](https://docs.rs/redb) file in the node's data folder, driven
//! from a dedicated thread behind an async, cheaply cloneable [`Store`] handle, plus moka TTL
//! caches that count their hits and misses.
//!
//! It keeps the DHT routing table, DHT records (with an expiry index and a sweep), received
//! messages and CRDT documents, each in its own [`Table`]. Values are bytes: callers own their
//! encodings, and the store never interprets them. The file carries a schema version; a file
//! this build cannot read is refused, never overwritten.
//!
//! How it works, in three sentences. One thread owns the redb `Database` and serves commands
//! in arrival order; consecutive writes from any number of callers are committed in one
//! transaction, and each caller is answered only after that commit (durable, redb's default).
//! [`Store::get`] is served from a byte-bounded TTL read cache that only the store thread
//! fills and invalidates, so a caller never reads a value older than a write it has seen
//! acknowledged. Faults are live: a failed write or read, a full disk, a panic inside redb,
//! or the database file deleted or replaced under the running node turns [`Store::health`]
//! to fail at once, is logged once with its cause, and makes writes fail fast instead of being
//! acknowledged; a fault a reopen can clear is retried by the store thread itself.
//!
//! It is not a general database layer: there are no queries, secondary indexes (beyond record
//! expiry) or migrations yet, and nothing here knows what a DHT record or a document means.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pqnode_store::StoreError> {
//! use pqnode_store::{Store, Table};
//!
//! let store = Store::open("/var/lib/pqnode/pqnode.redb").await?;
//! store.put(Table::Routing, b"peer-1", b"addr".to_vec()).await?;
//! assert!(store.get(Table::Routing, b"peer-1").await?.is_some());
//! assert!(store.health().is_ok());
//! store.close().await?;
//! # Ok(()) }
//! ```

mod cache;
mod error;
mod fault;
mod file_identity;
mod limits;
mod maintenance;
mod open;
mod ops;
mod record;
mod schema;
mod stats;
mod store;
mod table;
mod worker;

pub use cache::{CacheStats, TtlCache};
pub use error::StoreError;
pub use limits::{MAX_KEY_LEN, MAX_VALUE_LEN};
pub use maintenance::{CheckReport, check, compact};
pub use open::StoreOptions;
pub use record::Record;
pub use schema::SCHEMA_VERSION;
pub use stats::StoreStats;
pub use store::{DEFAULT_FILE_NAME, Store};
pub use table::{SCHEMA_VERSION_KEY, Table};
