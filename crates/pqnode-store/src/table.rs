//! The tables a store holds: the public [`Table`] enum and the redb definitions behind it.

use redb::TableDefinition;
use serde::Serialize;

/// A table callers read and write. Keys and values are bytes: callers own their encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Table {
    /// Store-wide metadata. The schema version lives here under a reserved key.
    Meta,
    /// The DHT routing table, saved so a restarted node does not bootstrap from nothing.
    Routing,
    /// DHT records. Written with [`Store::put_record`](crate::Store::put_record) they carry an
    /// expiry and are removed by [`Store::sweep_expired_records`](crate::Store::sweep_expired_records).
    Records,
    /// Node-to-node messages this node received.
    Messages,
    /// CRDT documents (update logs and snapshots).
    Documents,
    /// The search index's source texts (`pqnode-search`), from which it rebuilds at open.
    Search,
}

impl Table {
    /// Every table, in a stable order.
    pub const ALL: [Table; 6] = [
        Table::Meta,
        Table::Routing,
        Table::Records,
        Table::Messages,
        Table::Documents,
        Table::Search,
    ];

    /// The table's name inside the database file (also its name in stats).
    pub const fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Routing => "routing",
            Table::Records => "records",
            Table::Messages => "messages",
            Table::Documents => "documents",
            Table::Search => "search",
        }
    }

    pub(crate) const fn definition(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Record key -> expiry (milliseconds since the Unix epoch). Lets a rewrite or delete find the
/// index entry it replaces.
pub(crate) const RECORD_EXPIRY: TableDefinition<'static, &'static [u8], u64> =
    TableDefinition::new("record_expiry");

/// (expiry, record key) -> (). Sorted by expiry, so a sweep reads only what has expired.
pub(crate) const EXPIRY_INDEX: TableDefinition<'static, (u64, &'static [u8]), ()> =
    TableDefinition::new("record_expiry_index");

/// The key in [`Table::Meta`] that holds the schema version; callers may not write it.
pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// The key in [`Table::Meta`] the store thread writes to prove the disk takes writes again
/// after a fault; callers may not write it.
pub(crate) const PROBE_KEY: &[u8] = b"store_probe";
