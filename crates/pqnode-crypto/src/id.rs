//! Node ids: 160 bits, bound to an ML-DSA-87 public key.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Bytes in a node id (160 bits, the Kademlia id space).
pub const NODE_ID_LEN: usize = 20;

/// Separates node-id hashing from every other use of SHA-256 over a key.
const NODE_ID_DOMAIN: &[u8] = b"pqnode/node-id/v1\0";

/// A node's id: the first 160 bits of `SHA-256(domain || ML-DSA-87 public key)`.
///
/// Because the id is derived from the key, a peer proves its id by proving
/// possession of the key; nobody can claim an id they do not hold the key for.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; NODE_ID_LEN]);

impl NodeId {
    /// The id bound to an ML-DSA-87 public key (the raw 2592-byte encoding).
    pub fn from_public_key(public_key: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(NODE_ID_DOMAIN)
            .chain_update(public_key)
            .finalize();
        let mut id = [0u8; NODE_ID_LEN];
        id.copy_from_slice(&digest[..NODE_ID_LEN]);
        Self(id)
    }

    /// The id whose 20 bytes are `bytes`, as read from the wire or disk; nothing is checked.
    pub const fn from_bytes(bytes: [u8; NODE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 20 bytes, as the wire and the DHT's XOR metric take them.
    pub const fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }

    /// Lowercase hex, 40 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form: ids show up in many log lines.
        write!(f, "NodeId({}…)", &self.to_hex()[..12])
    }
}

/// A string that is not 40 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a node id is 40 hex characters (160 bits)")]
pub struct ParseNodeIdError;

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; NODE_ID_LEN];
        hex::decode_to_slice(s, &mut id).map_err(|_| ParseNodeIdError)?;
        Ok(Self(id))
    }
}

impl TryFrom<&[u8]> for NodeId {
    type Error = ParseNodeIdError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        <[u8; NODE_ID_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| ParseNodeIdError)
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = NodeId::from_public_key(b"some key");
        let parsed: NodeId = id.to_hex().parse().unwrap();
        assert_eq!(id, parsed);
        assert_eq!(id.to_hex().len(), 40);
    }

    #[test]
    fn rejects_bad_strings() {
        assert!("abc".parse::<NodeId>().is_err());
        assert!("zz".repeat(20).parse::<NodeId>().is_err());
        assert!("00".repeat(21).parse::<NodeId>().is_err());
    }

    #[test]
    fn different_keys_give_different_ids() {
        assert_ne!(NodeId::from_public_key(b"a"), NodeId::from_public_key(b"b"));
    }
}
