//! pqnode's post-quantum identity.
//!
//! What it is for: the node's long-term keys and everything derived from
//! them — the ML-DSA-87 signing identity, the [`NodeId`] bound to it, a
//! static ML-KEM-1024 key pair, and signature verification for keys that
//! arrive from elsewhere (peers, DHT records).
//!
//! What it is not: a transport. The TLS 1.3 configuration that uses these
//! keys lives in `pqnode-net`; this crate never opens a socket.
//!
//! Every signature pqnode makes is over `domain label || 0x00 || message`,
//! so a signature made for one purpose (a DHT record, a signaling challenge)
//! can never be replayed as another. aws-lc-rs signs with an empty FIPS 204
//! context, so the label lives in the message itself, identically on every
//! backend.

mod id;
mod identity;

pub use id::{NODE_ID_LEN, NodeId, ParseNodeIdError};
pub use identity::{
    CryptoError, DSA_PUBLIC_KEY_LEN, DSA_SEED_LEN, DSA_SIGNATURE_LEN, DsaPublicKey, Identity,
    Signature, verify,
};
