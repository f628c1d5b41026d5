//! A listed peer's own proof that it may open a document: `?peer=` on `/sync/{doc}`.
//!
//! A restricted document may name the peers allowed to open it, by [`PeerId`] (the id bound
//! to the peer's Ed25519 or ML-DSA-87 key, as on the signaling server). The peer proves it
//! holds the key by signing, itself, "open `doc` at node `n` until `t`"; no node issues
//! anything, so an operator grants access by listing an id the peer gave them, and takes it
//! back by removing the id (the peer's open sessions close at once).
//!
//! Text form, in a URL query (y-websocket's `params`):
//!
//! ```text
//! <algorithm>.<base64url public key>.<expires_ms>.<base64url signature>
//! ```
//!
//! `algorithm` is `Ed25519` or `ML-DSA-87`; the signature is over
//! `"pqnode/doc-open/v1" || 0x00 || <node id hex> "\n" <doc> "\n" <expires_ms>`
//! (WebCrypto Ed25519 signs those bytes as they are; an ML-DSA-87 peer signs the part after
//! the domain with `Identity::sign(PEER_PROOF_DOMAIN, ..)`).
//!
//! Naming the node means a proof shown to one node is worth nothing at another; the expiry
//! may be at most [`MAX_PEER_PROOF_VALIDITY_MS`] away, so a leaked URL is worth something for
//! a day at most. Within that time the proof can be replayed at that node for that
//! document, like a capability token: y-websocket reconnects with the same URL, so a
//! one-time proof would lock out the peer's own reconnects.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pqnode_crypto::{Algorithm, Identity, NodeId, PeerId};

/// Signature domain of peer proofs.
pub const PEER_PROOF_DOMAIN: &str = "pqnode/doc-open/v1";
/// Longest proof accepted, as text (an ML-DSA-87 key and signature take about 9.6 KB).
pub const MAX_PEER_PROOF_LEN: usize = 12 * 1024;
/// How far in the future a proof's expiry may lie.
pub const MAX_PEER_PROOF_VALIDITY_MS: u64 = 24 * 3600 * 1000;

/// Why a peer proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerProofError {
    /// Longer than [`MAX_PEER_PROOF_LEN`]: refused before decoding.
    #[error("the peer proof is longer than {MAX_PEER_PROOF_LEN} characters")]
    TooLong,
    /// Not the four dot-separated parts, an unknown algorithm or bad base64url; says which.
    #[error("the peer proof is malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not match this node, this document and the expiry.
    #[error("the peer proof's signature does not verify")]
    BadSignature,
    /// Its expiry has passed.
    #[error("the peer proof has expired")]
    Expired,
    /// Its expiry is more than [`MAX_PEER_PROOF_VALIDITY_MS`] away.
    #[error("the peer proof expires more than a day from now")]
    TooLongLived,
    /// Signing a proof failed.
    #[error("signing failed")]
    Sign,
}

/// A peer proof as sent, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerProof {
    algorithm: Algorithm,
    public_key: Vec<u8>,
    expires_ms: u64,
    signature: Vec<u8>,
}

impl PeerProof {
    /// Decodes the text form; checks nothing but the shape.
    pub fn parse(text: &str) -> Result<Self, PeerProofError> {
        if text.len() > MAX_PEER_PROOF_LEN {
            return Err(PeerProofError::TooLong);
        }
        let mut parts = text.split('.');
        let (Some(algorithm), Some(key), Some(expires), Some(signature), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(PeerProofError::Malformed(
                "expected four parts separated by '.'",
            ));
        };
        let algorithm = match algorithm {
            "Ed25519" => Algorithm::Ed25519,
            "ML-DSA-87" => Algorithm::MlDsa87,
            _ => return Err(PeerProofError::Malformed("unknown algorithm")),
        };
        let decode = |part: &str, what| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| PeerProofError::Malformed(what))
        };
        let public_key = decode(key, "the public key is not base64url")?;
        if public_key.len() != algorithm.public_key_len() {
            return Err(PeerProofError::Malformed("wrong public key length"));
        }
        let signature = decode(signature, "the signature is not base64url")?;
        let expires_ms = expires
            .parse()
            .map_err(|_| PeerProofError::Malformed("the expiry is not a number"))?;
        Ok(Self {
            algorithm,
            public_key,
            expires_ms,
            signature,
        })
    }

    /// The peer whose key this is.
    pub fn peer(&self) -> PeerId {
        PeerId::derive(self.algorithm, &self.public_key)
    }

    /// Checks that the peer signed "open `doc` at `node`" and that the proof is live at
    /// `now_ms`; returns the peer.
    pub fn verify(&self, node: NodeId, doc: &str, now_ms: u64) -> Result<PeerId, PeerProofError> {
        if self.expires_ms <= now_ms {
            return Err(PeerProofError::Expired);
        }
        if self.expires_ms - now_ms > MAX_PEER_PROOF_VALIDITY_MS {
            return Err(PeerProofError::TooLongLived);
        }
        let body = signed_body(node, doc, self.expires_ms);
        if !self.algorithm.verify(
            &self.public_key,
            PEER_PROOF_DOMAIN,
            body.as_bytes(),
            &self.signature,
        ) {
            return Err(PeerProofError::BadSignature);
        }
        Ok(self.peer())
    }
}

/// What a peer signs, after the domain.
pub fn signed_body(node: NodeId, doc: &str, expires_ms: u64) -> String {
    format!("{}\n{doc}\n{expires_ms}", node.to_hex())
}

/// The text form of a proof signed with an ML-DSA-87 `identity` (a program's peer key).
pub fn sign_ml_dsa(
    identity: &Identity,
    node: NodeId,
    doc: &str,
    expires_ms: u64,
) -> Result<String, PeerProofError> {
    let body = signed_body(node, doc, expires_ms);
    let signature = identity
        .sign(PEER_PROOF_DOMAIN, body.as_bytes())
        .map_err(|_| PeerProofError::Sign)?;
    Ok(encode(
        Algorithm::MlDsa87,
        identity.public_key().as_bytes(),
        expires_ms,
        signature.as_bytes(),
    ))
}

/// The text form of a proof from its parts.
pub fn encode(
    algorithm: Algorithm,
    public_key: &[u8],
    expires_ms: u64,
    signature: &[u8],
) -> String {
    format!(
        "{}.{}.{expires_ms}.{}",
        algorithm.as_str(),
        URL_SAFE_NO_PAD.encode(public_key),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};

    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn node(n: u8) -> NodeId {
        NodeId::from_bytes([n; 20])
    }

    fn ed25519_proof(doc: &str, at: NodeId, expires_ms: u64) -> (String, PeerId) {
        let key = Ed25519KeyPair::generate().unwrap();
        let public = key.public_key().as_ref().to_vec();
        let mut message = format!("{PEER_PROOF_DOMAIN}\0").into_bytes();
        message.extend_from_slice(signed_body(at, doc, expires_ms).as_bytes());
        let signature = key.sign(&message);
        (
            encode(Algorithm::Ed25519, &public, expires_ms, signature.as_ref()),
            PeerId::derive(Algorithm::Ed25519, &public),
        )
    }

    #[test]
    fn an_ed25519_proof_opens_its_document_at_its_node_only() {
        let (text, peer) = ed25519_proof("notes", node(1), NOW + 60_000);
        let proof = PeerProof::parse(&text).unwrap();
        assert_eq!(proof.verify(node(1), "notes", NOW), Ok(peer));
        assert_eq!(
            proof.verify(node(2), "notes", NOW),
            Err(PeerProofError::BadSignature)
        );
        assert_eq!(
            proof.verify(node(1), "other", NOW),
            Err(PeerProofError::BadSignature)
        );
        assert_eq!(
            proof.verify(node(1), "notes", NOW + 60_000),
            Err(PeerProofError::Expired)
        );
    }

    #[test]
    fn an_ml_dsa_proof_verifies_and_names_the_key_s_peer() {
        let identity = Identity::from_seed(&[9; 32]).unwrap();
        let text = sign_ml_dsa(&identity, node(1), "notes", NOW + 1).unwrap();
        let proof = PeerProof::parse(&text).unwrap();
        let peer = PeerId::derive(Algorithm::MlDsa87, identity.public_key().as_bytes());
        assert_eq!(proof.verify(node(1), "notes", NOW), Ok(peer));
        assert!(text.len() <= MAX_PEER_PROOF_LEN, "{} bytes", text.len());
    }

    #[test]
    fn a_proof_for_more_than_a_day_is_refused() {
        let (text, _) = ed25519_proof("notes", node(1), NOW + MAX_PEER_PROOF_VALIDITY_MS + 1);
        let proof = PeerProof::parse(&text).unwrap();
        assert_eq!(
            proof.verify(node(1), "notes", NOW),
            Err(PeerProofError::TooLongLived)
        );
    }

    #[test]
    fn malformed_proofs_are_refused_without_panicking() {
        let (good, _) = ed25519_proof("notes", node(1), NOW + 1);
        let long = "a".repeat(MAX_PEER_PROOF_LEN + 1);
        let cases = [
            "",
            "Ed25519",
            "Ed25519.a.b",
            "RSA.AAAA.1.AAAA",
            "Ed25519.!!!.1.AAAA",
            "Ed25519.AAAA.1.AAAA",
            &good.replace(".1800", ".x1800"),
            &format!("{good}.extra"),
            &long,
        ];
        for case in cases {
            assert!(PeerProof::parse(case).is_err(), "{case:.40}");
        }
        // A signature of the wrong length parses but never verifies.
        let (alg_key_expiry, _) = good.rsplit_once('.').unwrap();
        let short = PeerProof::parse(&format!("{alg_key_expiry}.AAAA")).unwrap();
        assert_eq!(
            short.verify(node(1), "notes", NOW),
            Err(PeerProofError::BadSignature)
        );
    }
}
