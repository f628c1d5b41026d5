//! [`PresenceProof`]: a peer's own signature that it is attached to a node.
//!
//! The proof is the registration the peer signed for that node (`docs/signaling-protocol.md`
//! §2): its key, the node id, the node's nonce, the time, and the signature over them. Only
//! the holder of the peer's key can make one, and it names exactly one node, so a node can
//! prove that it serves a peer but never claim a peer it does not serve. Other nodes learn a
//! route to a peer only from a proof that verifies, and a newer proof (a later registration,
//! anywhere) wins over an older one.
//!
//! What it is not: proof that the peer is *still* attached. The node that holds it answers
//! for that (a relay to a peer that left is answered "not found", and the route is dropped).
//! A node that once served a peer keeps an old proof; it loses to any newer registration.

use pqnode_crypto::NodeId;

use crate::auth::{REGISTER_DOMAIN, registration_body};
use pqnode_crypto::{Algorithm, PeerId};

/// A peer's registration at a node, as it signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceProof {
    /// The peer's signature algorithm.
    pub algorithm: Algorithm,
    /// The peer's public key, raw.
    pub public_key: Vec<u8>,
    /// The peer, derived from `algorithm` and `public_key`.
    pub peer_id: PeerId,
    /// The node the peer registered at.
    pub node_id: NodeId,
    /// That node's registration nonce (hex).
    pub nonce: String,
    /// The peer's clock at registration, Unix milliseconds: newer proofs win.
    pub ts_ms: u64,
    /// The peer's signature over the registration (see [`registration_body`]).
    pub signature: Vec<u8>,
}

/// Why a presence proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// It proves another peer than the one it is offered for.
    #[error("the proof is for another peer")]
    OtherPeer,
    /// It names another node than the one it is offered for.
    #[error("the proof names another node")]
    OtherNode,
    /// The peer id is not the one its key and algorithm give.
    #[error("the peer id is not derived from the proof's algorithm and public key")]
    BadPeerId,
    /// The signature over the registration does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

impl PresenceProof {
    /// Checks that this proves `peer` is attached to `node`: the peer id is its key's, and the
    /// signature over the registration verifies.
    pub fn verify(&self, peer: PeerId, node: NodeId) -> Result<(), ProofError> {
        self.check_claims(peer, node)?;
        if !key_matches(self.algorithm, &self.public_key, &self.peer_id) {
            return Err(ProofError::BadPeerId);
        }
        let signed = Registration {
            algorithm: self.algorithm,
            public_key: &self.public_key,
            peer_id: self.peer_id,
            node_id: self.node_id,
            nonce_hex: &self.nonce,
            ts_ms: self.ts_ms,
        };
        match signed.verifies(&self.signature) {
            true => Ok(()),
            false => Err(ProofError::BadSignature),
        }
    }
}

impl PresenceProof {
    /// The cheap half of [`PresenceProof::verify`]: that it speaks of `peer` at `node`.
    pub(crate) fn check_claims(&self, peer: PeerId, node: NodeId) -> Result<(), ProofError> {
        if self.peer_id != peer {
            return Err(ProofError::OtherPeer);
        }
        if self.node_id != node {
            return Err(ProofError::OtherNode);
        }
        Ok(())
    }
}

/// Whether `public_key` is a key of `algorithm` whose peer id is `peer`.
pub(crate) fn key_matches(algorithm: Algorithm, public_key: &[u8], peer: &PeerId) -> bool {
    public_key.len() == algorithm.public_key_len() && PeerId::derive(algorithm, public_key) == *peer
}

/// The signed part of a registration.
pub(crate) struct Registration<'a> {
    pub algorithm: Algorithm,
    pub public_key: &'a [u8],
    pub peer_id: PeerId,
    pub node_id: NodeId,
    pub nonce_hex: &'a str,
    pub ts_ms: u64,
}

impl Registration<'_> {
    /// Whether `signature` is the peer's signature over this registration.
    pub(crate) fn verifies(&self, signature: &[u8]) -> bool {
        let body = registration_body(&self.node_id, self.nonce_hex, &self.peer_id, self.ts_ms);
        self.algorithm
            .verify(self.public_key, REGISTER_DOMAIN, body.as_bytes(), signature)
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use pqnode_crypto::Identity;

    use crate::auth::registration_message;

    use super::*;

    const TS: u64 = 1_800_000_000_000;
    const NONCE: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn node(n: u8) -> NodeId {
        NodeId::from_bytes([n; 20])
    }

    fn ed25519_proof(at: NodeId) -> PresenceProof {
        let key = Ed25519KeyPair::generate().unwrap();
        let public_key = key.public_key().as_ref().to_vec();
        let peer_id = PeerId::derive(Algorithm::Ed25519, &public_key);
        let signature = key
            .sign(&registration_message(&at, NONCE, &peer_id, TS))
            .as_ref()
            .to_vec();
        PresenceProof {
            algorithm: Algorithm::Ed25519,
            public_key,
            peer_id,
            node_id: at,
            nonce: NONCE.into(),
            ts_ms: TS,
            signature,
        }
    }

    #[test]
    fn a_proof_verifies_for_its_peer_and_node_only() {
        let proof = ed25519_proof(node(1));
        assert_eq!(proof.verify(proof.peer_id, node(1)), Ok(()));
        assert_eq!(
            proof.verify(proof.peer_id, node(2)),
            Err(ProofError::OtherNode)
        );
        let other = PeerId::from_bytes([7; 20]);
        assert_eq!(proof.verify(other, node(1)), Err(ProofError::OtherPeer));

        // Re-pointed at another node: the node id is inside the signature.
        let moved = PresenceProof {
            node_id: node(2),
            ..proof.clone()
        };
        assert_eq!(
            moved.verify(moved.peer_id, node(2)),
            Err(ProofError::BadSignature)
        );
        let newer = PresenceProof {
            ts_ms: TS + 1,
            ..proof.clone()
        };
        assert_eq!(
            newer.verify(newer.peer_id, node(1)),
            Err(ProofError::BadSignature)
        );
        let stolen_id = PresenceProof {
            peer_id: other,
            ..proof.clone()
        };
        assert_eq!(stolen_id.verify(other, node(1)), Err(ProofError::BadPeerId));
    }

    #[test]
    fn ml_dsa_proofs_verify_and_fit_a_dht_entry() {
        let identity = Identity::generate().unwrap();
        let public_key = identity.public_key().as_bytes().to_vec();
        let peer_id = PeerId::derive(Algorithm::MlDsa87, &public_key);
        let body = registration_body(&node(3), NONCE, &peer_id, TS);
        let signature = identity
            .sign(REGISTER_DOMAIN, body.as_bytes())
            .unwrap()
            .as_bytes()
            .to_vec();
        let proof = PresenceProof {
            algorithm: Algorithm::MlDsa87,
            public_key,
            peer_id,
            node_id: node(3),
            nonce: NONCE.into(),
            ts_ms: TS,
            signature,
        };
        assert_eq!(proof.verify(peer_id, node(3)), Ok(()));
        // What storers accept as a validated provider value (pqnode-dht's
        // MAX_VALIDATED_PROVIDER_VALUE_LEN).
        use crate::federation::wire::{PresenceEntry, encode_presence_entry};
        let entry = encode_presence_entry(&PresenceEntry::Present(proof));
        assert!(entry.len() <= 8 * 1024, "{} bytes", entry.len());
    }
}
