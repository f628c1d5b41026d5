//! Capability tokens: "the holder may read (or write) this document until then", signed by
//! a node's ML-DSA-87 key.
//!
//! A token carries its issuer's public key, so any node can check it; a node honours only
//! the issuers it trusts (itself, and the node ids in its configuration). Encoding, all
//! integers big-endian, then base64url without padding:
//!
//! ```text
//! version (1) | id (16) | rights (1) | expires_ms (8) | doc_len (2) | doc | issuer key (2592) | signature (4627)
//! ```
//!
//! The signature covers everything before it, under the domain [`CAPABILITY_DOMAIN`]. About
//! 9.7 KB as text: it fits a URL query (y-websocket's `params`) within the 16 KiB the
//! node's listeners allow for a request head.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pqnode_crypto::{DSA_PUBLIC_KEY_LEN, DSA_SIGNATURE_LEN, DsaPublicKey, Identity, NodeId};
use serde::Serialize;

/// Signature domain of capability tokens.
pub const CAPABILITY_DOMAIN: &str = "pqnode/doc-capability/v1";
/// Longest token accepted, as text.
pub const MAX_TOKEN_LEN: usize = 12 * 1024;
const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 16 + 1 + 8 + 2;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rights {
    /// Receive the document and its updates.
    Read,
    /// Read, and send updates. Orders above [`Rights::Read`].
    Write,
}

impl Rights {
    fn byte(self) -> u8 {
        match self {
            Rights::Read => 1,
            Rights::Write => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Rights::Read),
            2 => Some(Rights::Write),
            _ => None,
        }
    }
}

/// A token's id: what revocation names.
pub type TokenId = [u8; 16];

/// A verified capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    /// Random; what a revocation names.
    pub id: TokenId,
    /// What the holder may do.
    pub rights: Rights,
    /// Unix milliseconds after which the token is refused.
    pub expires_ms: u64,
    /// The one document it opens.
    pub doc: String,
    /// The node that signed it (derived from the key inside the token).
    pub issuer: NodeId,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`]: refused before decoding.
    #[error("the token is longer than {MAX_TOKEN_LEN} characters")]
    TooLong,
    /// Not base64url, too short, an unknown version or a bad field; says which.
    #[error("the token is not a pqnode capability token: {0}")]
    Malformed(&'static str),
    /// The signature does not match the key inside the token.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// Valid, but for a different document than the one being opened.
    #[error("the token is for another document")]
    OtherDocument,
    /// Its expiry has passed.
    #[error("the token has expired")]
    Expired,
    /// Its id was revoked by this node's operator or by its issuer.
    #[error("the token was revoked")]
    Revoked,
    /// Signed by a node this node does not trust.
    #[error("the token's issuer is not trusted by this node")]
    UntrustedIssuer,
    /// A read token used for a write.
    #[error("the token allows reading only")]
    ReadOnly,
    /// Issuing: the random id or the signature could not be made.
    #[error("signing failed")]
    Sign,
}

/// Signs a token for `doc` with `identity`.
pub fn issue(
    identity: &Identity,
    doc: &str,
    rights: Rights,
    expires_ms: u64,
) -> Result<(Capability, String), TokenError> {
    let doc_len = u16::try_from(doc.len()).map_err(|_| TokenError::Malformed("document name"))?;
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|_| TokenError::Sign)?;
    let mut bytes =
        Vec::with_capacity(HEADER_LEN + doc.len() + DSA_PUBLIC_KEY_LEN + DSA_SIGNATURE_LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&id);
    bytes.push(rights.byte());
    bytes.extend_from_slice(&expires_ms.to_be_bytes());
    bytes.extend_from_slice(&doc_len.to_be_bytes());
    bytes.extend_from_slice(doc.as_bytes());
    bytes.extend_from_slice(identity.public_key().as_bytes());
    let signature = identity
        .sign(CAPABILITY_DOMAIN, &bytes)
        .map_err(|_| TokenError::Sign)?;
    bytes.extend_from_slice(signature.as_bytes());
    let capability = Capability {
        id,
        rights,
        expires_ms,
        doc: doc.to_owned(),
        issuer: identity.node_id(),
    };
    Ok((capability, URL_SAFE_NO_PAD.encode(bytes)))
}

/// Decodes `token` and checks its signature; what it allows is the caller's next check.
pub fn verify(token: &str) -> Result<Capability, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| TokenError::Malformed("not base64url"))?;
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or(TokenError::Malformed("too short"))?;
    if header[0] != VERSION {
        return Err(TokenError::Malformed("unknown version"));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&header[1..17]);
    let rights = Rights::from_byte(header[17]).ok_or(TokenError::Malformed("rights"))?;
    let mut expires = [0u8; 8];
    expires.copy_from_slice(&header[18..26]);
    let doc_len = usize::from(u16::from_be_bytes([header[26], header[27]]));
    let key_at = HEADER_LEN + doc_len;
    let signature_at = key_at + DSA_PUBLIC_KEY_LEN;
    if bytes.len() != signature_at + DSA_SIGNATURE_LEN {
        return Err(TokenError::Malformed("wrong length"));
    }
    let doc = std::str::from_utf8(&bytes[HEADER_LEN..key_at])
        .map_err(|_| TokenError::Malformed("document name"))?;
    let issuer = DsaPublicKey::from_bytes(&bytes[key_at..signature_at])
        .map_err(|_| TokenError::Malformed("issuer key"))?;
    issuer
        .verify(
            CAPABILITY_DOMAIN,
            &bytes[..signature_at],
            &bytes[signature_at..],
        )
        .map_err(|_| TokenError::BadSignature)?;
    Ok(Capability {
        id,
        rights,
        expires_ms: u64::from_be_bytes(expires),
        doc: doc.to_owned(),
        issuer: issuer.node_id(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_tampering_is_caught() {
        let node = Identity::from_seed(&[1; 32]).unwrap();
        let (cap, token) = issue(&node, "notes/a", Rights::Write, 42).unwrap();
        assert!(token.len() < 10_000, "{} characters", token.len());
        assert_eq!(verify(&token), Ok(cap.clone()));
        assert_eq!(cap.issuer, node.node_id());

        // One changed byte anywhere breaks it.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[17] = Rights::Read.byte(); // write -> read

        assert_eq!(
            verify(&URL_SAFE_NO_PAD.encode(&bytes)),
            Err(TokenError::BadSignature)
        );
        assert!(matches!(verify("%%%"), Err(TokenError::Malformed(_))));
        assert!(matches!(verify(""), Err(TokenError::Malformed(_))));
        assert_eq!(
            verify(&"A".repeat(MAX_TOKEN_LEN + 1)),
            Err(TokenError::TooLong)
        );
        let truncated = &token[..token.len() - 10];
        assert!(verify(truncated).is_err());
    }
}
