//! Presence entries in the DHT: where they live, and the check every storer runs.

use pqnode_crypto::NodeId;
use sha2::{Digest, Sha256};

use super::wire::{self, PresenceEntry, WireError};
use crate::presence::ProofError;
use pqnode_crypto::PeerId;

const PRESENCE_KEY_DOMAIN: &[u8] = b"pqnode/signaling-presence/v1\0";

/// The DHT key of `peer`'s presence: `SHA-256("pqnode/signaling-presence/v1" 0x00 hex(peer))[..20]`.
/// Every node that serves the peer publishes its entry there.
pub fn presence_key(peer: PeerId) -> NodeId {
    let digest = Sha256::new()
        .chain_update(PRESENCE_KEY_DOMAIN)
        .chain_update(peer.to_hex().as_bytes())
        .finalize();
    let mut key = [0u8; 20];
    key.copy_from_slice(&digest[..20]);
    NodeId::from_bytes(key)
}

/// Why a presence entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not a well-formed presence entry.
    #[error("malformed presence entry: {0}")]
    Malformed(#[from] WireError),
    /// A valid entry, but under another peer's key: it could crowd out that peer's entries.
    #[error("the entry is stored under another peer's presence key")]
    WrongKey,
    /// The proof is not the peer's signature naming the publishing node.
    #[error("the presence proof does not hold for the publishing node: {0}")]
    Proof(#[from] ProofError),
}

/// Checks the DHT provider entry `value` that `publisher` signed under `key`.
///
/// `None` if it is not a presence entry. A presence entry must sit under its peer's
/// [`presence_key`]; if it says the peer is present, its proof must be the peer's own
/// signature naming `publisher`. A withdrawal needs no more: it replaces only the
/// publisher's own entry.
pub fn check_presence_entry(
    key: &NodeId,
    publisher: NodeId,
    value: &[u8],
) -> Option<Result<PresenceEntry, EntryError>> {
    let entry = match wire::decode_presence_entry(value)? {
        Ok(entry) => entry,
        Err(e) => return Some(Err(e.into())),
    };
    let peer = match &entry {
        PresenceEntry::Present(proof) => proof.peer_id,
        PresenceEntry::Withdrawn(withdrawal) => withdrawal.peer,
    };
    if presence_key(peer) != *key {
        return Some(Err(EntryError::WrongKey));
    }
    if let PresenceEntry::Present(proof) = &entry
        && let Err(e) = proof.verify(peer, publisher)
    {
        return Some(Err(e.into()));
    }
    Some(Ok(entry))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    use super::*;
    use crate::auth::registration_message;
    use crate::federation::Withdrawal;
    use crate::presence::PresenceProof;
    use pqnode_crypto::Algorithm;

    fn proof_at(node: NodeId) -> PresenceProof {
        let key = Ed25519KeyPair::generate().unwrap();
        let public_key = key.public_key().as_ref().to_vec();
        let peer_id = PeerId::derive(Algorithm::Ed25519, &public_key);
        let nonce = "cd".repeat(32);
        let signature = key
            .sign(&registration_message(&node, &nonce, &peer_id, 5))
            .as_ref()
            .to_vec();
        PresenceProof {
            algorithm: Algorithm::Ed25519,
            public_key,
            peer_id,
            node_id: node,
            nonce,
            ts_ms: 5,
            signature,
        }
    }

    #[test]
    fn only_the_node_a_peer_signed_for_may_publish_its_presence() {
        let [served_by, liar] = [[1u8; 20], [2u8; 20]].map(NodeId::from_bytes);
        let proof = proof_at(served_by);
        let key = presence_key(proof.peer_id);
        let value = wire::encode_presence_entry(&PresenceEntry::Present(proof.clone()));
        assert!(matches!(
            check_presence_entry(&key, served_by, &value),
            Some(Ok(PresenceEntry::Present(_)))
        ));
        // Replayed by another node, or under another key.
        assert_eq!(
            check_presence_entry(&key, liar, &value),
            Some(Err(EntryError::Proof(ProofError::OtherNode)))
        );
        let elsewhere = presence_key(PeerId::from_bytes([9; 20]));
        assert_eq!(
            check_presence_entry(&elsewhere, served_by, &value),
            Some(Err(EntryError::WrongKey))
        );
        // Any node may withdraw its own entry, under the right key only.
        let withdrawn = wire::encode_presence_entry(&PresenceEntry::Withdrawn(Withdrawal {
            peer: proof.peer_id,
            ts_ms: 5,
        }));
        assert!(matches!(
            check_presence_entry(&key, liar, &withdrawn),
            Some(Ok(_))
        ));
        assert_eq!(
            check_presence_entry(&elsewhere, liar, &withdrawn),
            Some(Err(EntryError::WrongKey))
        );
        // Not a presence entry at all.
        assert_eq!(check_presence_entry(&key, liar, b"members"), None);
    }
}
