//! The routing table in the node's store, so a restarted node rejoins through the contacts it
//! had rather than through its bootstrap nodes (BEP 5 asks for the same).

use pqnode_store::{Store, StoreError, Table};

/// The one key the table is saved under in [`Table::Routing`]: the core exports the whole
/// table as one versioned blob.
const TABLE_KEY: &[u8] = b"dht/table/v1";

/// The saved table, if there is one.
pub(crate) async fn load_table(store: &Store) -> Result<Option<bytes::Bytes>, StoreError> {
    store.get(Table::Routing, TABLE_KEY).await
}

/// Replaces the saved table with `encoded` (from `Node::export_table`).
pub(crate) async fn save_table(store: &Store, encoded: Vec<u8>) -> Result<(), StoreError> {
    store.put(Table::Routing, TABLE_KEY, encoded).await
}
