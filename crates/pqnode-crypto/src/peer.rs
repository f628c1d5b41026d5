//! Peer ids: 160 bits derived from a peer's public key and its algorithm, and the check of
//! a peer's signature.
//!
//! A peer is an application client (a browser with a WebCrypto Ed25519 key, or a program
//! with an ML-DSA-87 key), not a node: nodes have [`NodeId`](crate::NodeId)s. Every claim
//! a node accepts about a peer (its presence at a node, its right to open a document) is
//! signed by the peer's key, and the key is tied to the id by [`PeerId::derive`].

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes in a peer id.
pub const PEER_ID_LEN: usize = 20;

/// Separates peer-id hashing from every other use of SHA-256 over a key.
const PEER_ID_DOMAIN: &[u8] = b"pqnode/signaling/peer-id/v1";

/// The signature algorithms a peer may register with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// RFC 8032 Ed25519, what WebCrypto offers in browsers.
    #[serde(rename = "Ed25519")]
    Ed25519,
    /// FIPS 204 ML-DSA-87 with an empty context, what pqnode nodes use.
    #[serde(rename = "ML-DSA-87")]
    MlDsa87,
}

impl Algorithm {
    /// The name on the wire, which is also hashed into the peer id.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "Ed25519",
            Self::MlDsa87 => "ML-DSA-87",
        }
    }

    /// Length of a raw public key of this algorithm.
    pub const fn public_key_len(self) -> usize {
        match self {
            Self::Ed25519 => 32,
            Self::MlDsa87 => crate::DSA_PUBLIC_KEY_LEN,
        }
    }

    /// Length of a signature of this algorithm.
    pub const fn signature_len(self) -> usize {
        match self {
            Self::Ed25519 => 64,
            Self::MlDsa87 => crate::DSA_SIGNATURE_LEN,
        }
    }

    /// Whether `signature` is `public_key`'s signature over `domain || 0x00 || message`:
    /// for ML-DSA-87 exactly what [`Identity::sign`](crate::Identity::sign) makes; for
    /// Ed25519 the same bytes signed by WebCrypto.
    pub fn verify(self, public_key: &[u8], domain: &str, message: &[u8], signature: &[u8]) -> bool {
        if public_key.len() != self.public_key_len() || signature.len() != self.signature_len() {
            return false;
        }
        match self {
            Self::Ed25519 => UnparsedPublicKey::new(&ED25519, public_key)
                .verify(&crate::identity::labelled(domain, message), signature)
                .is_ok(),
            Self::MlDsa87 => crate::verify(public_key, domain, message, signature).is_ok(),
        }
    }
}

/// A signaling peer's id: the first 160 bits of
/// `SHA-256("pqnode/signaling/peer-id/v1" || 0 || algorithm || 0 || public key)`.
///
/// On the wire it is 40 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; PEER_ID_LEN]);

impl PeerId {
    /// The id bound to `public_key` under `algorithm`.
    pub fn derive(algorithm: Algorithm, public_key: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(PEER_ID_DOMAIN)
            .chain_update([0])
            .chain_update(algorithm.as_str().as_bytes())
            .chain_update([0])
            .chain_update(public_key)
            .finalize();
        let mut id = [0u8; PEER_ID_LEN];
        id.copy_from_slice(&digest[..PEER_ID_LEN]);
        Self(id)
    }

    /// The id whose 20 bytes are `bytes`; nothing is checked.
    pub const fn from_bytes(bytes: [u8; PEER_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 20 bytes.
    pub const fn as_bytes(&self) -> &[u8; PEER_ID_LEN] {
        &self.0
    }

    /// Lowercase hex, 40 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.to_hex())
    }
}

/// The text was not 40 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a peer id is 40 lowercase hex characters")]
pub struct ParsePeerIdError;

impl FromStr for PeerId {
    type Err = ParsePeerIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Lowercase only, so one peer has exactly one spelling (map keys, logs, signatures).
        if s.len() != PEER_ID_LEN * 2 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ParsePeerIdError);
        }
        let mut id = [0u8; PEER_ID_LEN];
        hex::decode_to_slice(s, &mut id).map_err(|_| ParsePeerIdError)?;
        Ok(Self(id))
    }
}

impl Serialize for PeerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; PEER_ID_LEN * 2];
        // Cannot fail: the buffer is exactly twice the input.
        hex::encode_to_slice(self.0, &mut buf).map_err(serde::ser::Error::custom)?;
        let text = std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(text)
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PeerId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a peer id (40 lowercase hex characters)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PeerId, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_binds_algorithm_and_key() {
        let key = [7u8; 32];
        let a = PeerId::derive(Algorithm::Ed25519, &key);
        assert_eq!(a, PeerId::derive(Algorithm::Ed25519, &key));
        assert_ne!(a, PeerId::derive(Algorithm::MlDsa87, &key));
        assert_ne!(a, PeerId::derive(Algorithm::Ed25519, &[8u8; 32]));
    }

    #[test]
    fn derivation_matches_the_documented_formula() {
        let key = [1u8, 2, 3];
        let mut input = b"pqnode/signaling/peer-id/v1\0Ed25519\0".to_vec();
        input.extend_from_slice(&key);
        let digest = Sha256::digest(&input);
        assert_eq!(
            PeerId::derive(Algorithm::Ed25519, &key).to_hex(),
            hex::encode(&digest[..20])
        );
    }

    #[test]
    fn parses_only_canonical_hex() {
        let id = PeerId::derive(Algorithm::Ed25519, b"k");
        assert_eq!(id.to_hex().parse::<PeerId>(), Ok(id));
        assert!(id.to_hex().to_uppercase().parse::<PeerId>().is_err());
        assert!("abc".parse::<PeerId>().is_err());
        assert!("g".repeat(40).parse::<PeerId>().is_err());
        assert!("é".repeat(20).parse::<PeerId>().is_err());
    }

    #[test]
    fn serde_round_trip() {
        let id = PeerId::derive(Algorithm::MlDsa87, b"k");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<PeerId>(&json).unwrap(), id);
        assert_eq!(
            serde_json::to_string(&Algorithm::MlDsa87).unwrap(),
            "\"ML-DSA-87\""
        );
    }
}
