//! Proof of key possession at registration.
//!
//! The server hands every connection a fresh nonce; the client signs a
//! canonical byte string naming this server, that nonce, its peer id and the
//! time. A signature is therefore useless on another server, on another
//! connection and a minute later. The exact bytes are specified in
//! `docs/signaling-protocol.md` §2 so browsers can build them.

use std::fmt;

use pqnode_crypto::NodeId;

use crate::presence::{PresenceProof, Registration, key_matches};
use pqnode_crypto::{Algorithm, PeerId};

/// Domain label in front of every registration signature.
pub const REGISTER_DOMAIN: &str = "pqnode/signaling/register/v1";

/// Bytes of randomness in a registration nonce.
pub const NONCE_LEN: usize = 32;

/// A per-connection registration challenge.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    /// A fresh nonce from the operating system's randomness.
    pub(crate) fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut bytes = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Lowercase hex, 64 characters: the form that is sent and signed.
    pub(crate) fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nonce(..)")
    }
}

/// The part of the signed bytes after `REGISTER_DOMAIN || 0x00`:
/// `node_id \n nonce \n peer_id \n ts`.
///
/// ML-DSA-87 clients using `pqnode_crypto::Identity::sign(REGISTER_DOMAIN, body)`
/// sign exactly [`registration_message`], because that call prepends the domain.
pub fn registration_body(
    node_id: &NodeId,
    nonce_hex: &str,
    peer_id: &PeerId,
    ts_ms: u64,
) -> String {
    format!("{}\n{nonce_hex}\n{peer_id}\n{ts_ms}", node_id.to_hex())
}

/// The complete bytes a client signs to register.
pub fn registration_message(
    node_id: &NodeId,
    nonce_hex: &str,
    peer_id: &PeerId,
    ts_ms: u64,
) -> Vec<u8> {
    let body = registration_body(node_id, nonce_hex, peer_id, ts_ms);
    let mut out = Vec::with_capacity(REGISTER_DOMAIN.len() + 1 + body.len());
    out.extend_from_slice(REGISTER_DOMAIN.as_bytes());
    out.push(0);
    out.extend_from_slice(body.as_bytes());
    out
}

/// What a `register` request claims, decoded.
pub(crate) struct Claim<'a> {
    pub algorithm: Algorithm,
    pub public_key: &'a [u8],
    pub peer_id: PeerId,
    pub nonce_hex: &'a str,
    pub ts_ms: u64,
    pub signature: &'a [u8],
}

/// Why a registration was refused, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("the nonce is not the one this connection was given")]
    NonceMismatch,
    #[error("the timestamp is too far from the server's clock")]
    StaleTimestamp,
    #[error("the peer id is not derived from this algorithm and public key")]
    BadPeerId,
    #[error("the signature does not verify")]
    BadSignature,
}

/// Checks a registration claim against this connection's challenge.
pub(crate) fn verify_registration(
    node_id: &NodeId,
    nonce: &Nonce,
    claim: &Claim<'_>,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<(), AuthError> {
    if claim.nonce_hex != nonce.to_hex() {
        return Err(AuthError::NonceMismatch);
    }
    if now_ms.abs_diff(claim.ts_ms) > max_skew_ms {
        return Err(AuthError::StaleTimestamp);
    }
    if !key_matches(claim.algorithm, claim.public_key, &claim.peer_id) {
        return Err(AuthError::BadPeerId);
    }
    let registration = Registration {
        algorithm: claim.algorithm,
        public_key: claim.public_key,
        peer_id: claim.peer_id,
        node_id: *node_id,
        nonce_hex: claim.nonce_hex,
        ts_ms: claim.ts_ms,
    };
    match registration.verifies(claim.signature) {
        true => Ok(()),
        false => Err(AuthError::BadSignature),
    }
}

impl Claim<'_> {
    /// What the peer signed, kept to prove its presence here to other nodes.
    pub(crate) fn proof(&self, node_id: NodeId) -> PresenceProof {
        PresenceProof {
            algorithm: self.algorithm,
            public_key: self.public_key.to_vec(),
            peer_id: self.peer_id,
            node_id,
            nonce: self.nonce_hex.to_owned(),
            ts_ms: self.ts_ms,
            signature: self.signature.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use pqnode_crypto::Identity;

    const NOW: u64 = 1_800_000_000_000;

    fn node() -> NodeId {
        NodeId::from_bytes([9; 20])
    }

    #[test]
    fn ed25519_and_ml_dsa_sign_the_same_bytes() {
        let nonce = Nonce::generate().unwrap();
        let nonce_hex = nonce.to_hex();

        let ed = Ed25519KeyPair::generate().unwrap();
        let ed_pk = ed.public_key().as_ref().to_vec();
        let ed_id = PeerId::derive(Algorithm::Ed25519, &ed_pk);
        let ed_sig = ed.sign(&registration_message(&node(), &nonce_hex, &ed_id, NOW));
        let claim = Claim {
            algorithm: Algorithm::Ed25519,
            public_key: &ed_pk,
            peer_id: ed_id,
            nonce_hex: &nonce_hex,
            ts_ms: NOW,
            signature: ed_sig.as_ref(),
        };
        assert_eq!(
            verify_registration(&node(), &nonce, &claim, NOW, 60_000),
            Ok(())
        );

        let pq = Identity::generate().unwrap();
        let pq_pk = pq.public_key().as_bytes();
        let pq_id = PeerId::derive(Algorithm::MlDsa87, pq_pk);
        let body = registration_body(&node(), &nonce_hex, &pq_id, NOW);
        let pq_sig = pq.sign(REGISTER_DOMAIN, body.as_bytes()).unwrap();
        let claim = Claim {
            algorithm: Algorithm::MlDsa87,
            public_key: pq_pk,
            peer_id: pq_id,
            nonce_hex: &nonce_hex,
            ts_ms: NOW,
            signature: pq_sig.as_bytes(),
        };
        assert_eq!(
            verify_registration(&node(), &nonce, &claim, NOW, 60_000),
            Ok(())
        );
        // The ML-DSA signature is over exactly `registration_message`.
        let message = registration_message(&node(), &nonce_hex, &pq_id, NOW);
        let (domain, rest) = message.split_at(REGISTER_DOMAIN.len() + 1);
        assert_eq!(&domain[..REGISTER_DOMAIN.len()], REGISTER_DOMAIN.as_bytes());
        assert_eq!(rest, body.as_bytes());
    }

    #[test]
    fn each_check_fails_on_its_own() {
        let nonce = Nonce::generate().unwrap();
        let nonce_hex = nonce.to_hex();
        let ed = Ed25519KeyPair::generate().unwrap();
        let pk = ed.public_key().as_ref().to_vec();
        let id = PeerId::derive(Algorithm::Ed25519, &pk);
        let sig = ed.sign(&registration_message(&node(), &nonce_hex, &id, NOW));
        let good = || Claim {
            algorithm: Algorithm::Ed25519,
            public_key: &pk,
            peer_id: id,
            nonce_hex: &nonce_hex,
            ts_ms: NOW,
            signature: sig.as_ref(),
        };
        let check = |c: Claim<'_>, now| verify_registration(&node(), &nonce, &c, now, 60_000);

        let other_nonce = Nonce::generate().unwrap().to_hex();
        let c = Claim {
            nonce_hex: &other_nonce,
            ..good()
        };
        assert_eq!(check(c, NOW), Err(AuthError::NonceMismatch));
        assert_eq!(check(good(), NOW + 60_001), Err(AuthError::StaleTimestamp));
        assert_eq!(check(good(), NOW - 60_001), Err(AuthError::StaleTimestamp));
        assert_eq!(check(good(), NOW + 60_000), Ok(()));
        let c = Claim {
            peer_id: PeerId::from_bytes([0; 20]),
            ..good()
        };
        assert_eq!(check(c, NOW), Err(AuthError::BadPeerId));
        let c = Claim {
            algorithm: Algorithm::MlDsa87,
            ..good()
        };
        assert_eq!(check(c, NOW), Err(AuthError::BadPeerId));
        let mut bad = sig.as_ref().to_vec();
        bad[0] ^= 1;
        let c = Claim {
            signature: &bad,
            ..good()
        };
        assert_eq!(check(c, NOW), Err(AuthError::BadSignature));
        let c = Claim {
            signature: &bad[..10],
            ..good()
        };
        assert_eq!(check(c, NOW), Err(AuthError::BadSignature));
        // Signed for another server: the node id is part of the signed bytes.
        let elsewhere =
            verify_registration(&NodeId::from_bytes([1; 20]), &nonce, &good(), NOW, 60_000);
        assert_eq!(elsewhere, Err(AuthError::BadSignature));
    }
}
