//! The seam between replication and the network: [`ReplicaDirectory`] (who holds a document:
//! DHT provider entries in the node) and [`SyncLink`] (one request to another node: the
//! `SYNC` protocol over PQ QUIC in the node). Both are object-safe, so the binary hands in
//! `Arc<dyn ...>` and tests an in-memory mesh.
//!
//! Also the DHT key and entry value the binary publishes under, so every node derives the
//! same key for a document and DHT storers can check an entry against its key.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use pqnode_crypto::{NODE_ID_LEN, NodeId};
use sha2::{Digest, Sha256};

use crate::DocName;

/// A boxed, sendable future: keeps both traits object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A directory or link failure. The implementation's error types stay on its side of the
/// seam: this carries the error value itself, shared, and reads as it does. Replication
/// treats every one as "that node is unreachable for now".
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct LinkError(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl LinkError {
    /// A failure known only as text. Prefer [`from_error`](Self::from_error) when there is
    /// an error value: it stays reachable for downcasting.
    pub fn new(reason: impl fmt::Display) -> Self {
        let text: Box<dyn std::error::Error + Send + Sync> = reason.to_string().into();
        Self(Arc::from(text))
    }

    /// Wraps the implementation's own error (a DHT or QUIC failure).
    pub fn from_error(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// The wrapped error, to downcast; for a failure made with [`new`](Self::new), an
    /// opaque error whose message is the text.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// Who holds which document: in the node, provider entries in the DHT under
/// [`replica_key`] with the value [`replica_entry`].
pub trait ReplicaDirectory: Send + Sync + 'static {
    /// This node holds `doc`. Called once when replication of `doc` starts; the
    /// implementation keeps the entry alive (republishes it) until [`retire`](Self::retire).
    fn announce(&self, doc: DocName) -> BoxFuture<'_, Result<(), LinkError>>;

    /// Other nodes that announced `doc` (this node excluded, or it is ignored). Unverified:
    /// a node listed that does not hold the document answers `NotHeld` and is dropped.
    fn replicas(&self, doc: DocName) -> BoxFuture<'_, Result<Vec<NodeId>, LinkError>>;

    /// This node stopped replicating `doc`: stop republishing its entry.
    fn retire(&self, doc: DocName) -> BoxFuture<'_, Result<(), LinkError>>;
}

/// One request and its response to another node. In the node: `Network::request(node,
/// SYNC, payload)`, whose frames the transport caps at [`SYNC_MAX_MESSAGE`] both ways.
///
/// [`SYNC_MAX_MESSAGE`]: super::SYNC_MAX_MESSAGE
pub trait SyncLink: Send + Sync + 'static {
    /// Sends `payload` (an encoded sync request) to `node` and returns its response body, or
    /// an error if the node could not be reached or answered with a failure.
    fn request(&self, node: NodeId, payload: Bytes) -> BoxFuture<'_, Result<Bytes, LinkError>>;
}

/// A standalone node: nothing announced, no replica found, no other node to reach.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalOnly;

impl ReplicaDirectory for LocalOnly {
    fn announce(&self, _doc: DocName) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async { Ok(()) })
    }

    fn replicas(&self, _doc: DocName) -> BoxFuture<'_, Result<Vec<NodeId>, LinkError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn retire(&self, _doc: DocName) -> BoxFuture<'_, Result<(), LinkError>> {
        Box::pin(async { Ok(()) })
    }
}

impl SyncLink for LocalOnly {
    fn request(&self, _node: NodeId, _payload: Bytes) -> BoxFuture<'_, Result<Bytes, LinkError>> {
        Box::pin(async { Err(LinkError::new("standalone node: no other nodes")) })
    }
}

const REPLICA_KEY_DOMAIN: &[u8] = b"pqnode/crdt-replica/v1\0";

/// The first bytes of a replica entry's value in the DHT: they tell it from other provider
/// entries before anything is parsed. The document's name follows.
pub const REPLICA_ENTRY_PREFIX: &[u8] = b"pqnode-crdt-replica/v1\0";

/// The DHT key under which nodes holding `doc` publish their provider entries:
/// the first 160 bits of SHA-256 over a domain label and the name.
pub fn replica_key(doc: &DocName) -> NodeId {
    let digest = Sha256::new()
        .chain_update(REPLICA_KEY_DOMAIN)
        .chain_update(doc.as_str().as_bytes())
        .finalize();
    let mut key = [0u8; NODE_ID_LEN];
    key.copy_from_slice(&digest[..NODE_ID_LEN]);
    NodeId::from_bytes(key)
}

/// The value of this node's provider entry under [`replica_key`]`(doc)`: the prefix and the
/// name, so a DHT storer can check that the entry belongs under its key
/// ([`check_replica_entry`]). At most 223 bytes, well within a provider entry.
pub fn replica_entry(doc: &DocName) -> Vec<u8> {
    [REPLICA_ENTRY_PREFIX, doc.as_str().as_bytes()].concat()
}

/// Why a replica entry is refused by a DHT storer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The name in the entry is not UTF-8.
    #[error("not a document name: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    /// The name in the entry is not a valid document name.
    #[error("not a document name: {0}")]
    BadName(#[from] crate::NameError),
    /// A valid entry under another document's key: it could crowd out that document's entries.
    #[error("the entry names a document whose key is not the one it is stored under")]
    WrongKey,
}

/// For a DHT provider validator: `None` if `value` is not a replica entry (another kind of
/// provider entry), otherwise whether it belongs under `key`, and the document it names.
pub fn check_replica_entry(key: &NodeId, value: &[u8]) -> Option<Result<DocName, EntryError>> {
    let name = value.strip_prefix(REPLICA_ENTRY_PREFIX)?;
    let checked = std::str::from_utf8(name)
        .map_err(EntryError::NotUtf8)
        .and_then(|name| DocName::new(name).map_err(EntryError::BadName))
        .and_then(|doc| match replica_key(&doc) == *key {
            true => Ok(doc),
            false => Err(EntryError::WrongKey),
        });
    Some(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_check_against_their_key() {
        let doc = DocName::new("notes/a").expect("name");
        let key = replica_key(&doc);
        assert_ne!(key, replica_key(&DocName::new("notes/b").expect("name")));
        let entry = replica_entry(&doc);
        assert_eq!(check_replica_entry(&key, &entry), Some(Ok(doc)));
        let other = replica_key(&DocName::new("x").expect("name"));
        assert_eq!(
            check_replica_entry(&other, &entry),
            Some(Err(EntryError::WrongKey))
        );
        let bad = [REPLICA_ENTRY_PREFIX, b"..\xff"].concat();
        assert!(matches!(
            check_replica_entry(&key, &bad),
            Some(Err(EntryError::NotUtf8(_)))
        ));
        let bad = [REPLICA_ENTRY_PREFIX, b"../x"].concat();
        assert!(matches!(
            check_replica_entry(&key, &bad),
            Some(Err(EntryError::BadName(_)))
        ));
        assert_eq!(check_replica_entry(&key, b"pqnode-presence/v1\0"), None);
    }
}
