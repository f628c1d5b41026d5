//! pqnode's post-quantum identity.
//!
//! What it is for: the node's long-term keys and everything derived from
//! them — the ML-DSA-87 signing [`Identity`], the [`NodeId`] bound to it, a
//! static ML-KEM-1024 [`KemKeyPair`], the key files that keep them across
//! restarts ([`load_or_create`]), the start-up self-test and the status the
//! API reports ([`Crypto`]). Two interchangeable implementations sit behind
//! a run-time [`Backend`] choice: aws-lc-rs, and RustCrypto's pure-Rust
//! crates (cargo feature `rustcrypto`, on by default). Application peers are identified
//! the same way: a [`PeerId`] is bound to the peer's Ed25519 or ML-DSA-87 key, and
//! [`Algorithm::verify`] checks what the peer signed.
//!
//! What it is not: a transport. The TLS 1.3 configuration that uses these
//! keys lives in `pqnode-net`; this crate never opens a socket.
//!
//! Every signature pqnode makes is over `domain label || 0x00 || message`,
//! so a signature made for one purpose (a DHT record, a signaling challenge)
//! can never be replayed as another. aws-lc-rs signs with an empty FIPS 204
//! context, so the label lives in the message itself, identically on every
//! backend.

mod backend;
mod component;
mod error;
mod id;
mod identity;
mod kem;
mod keyfile;
mod keystore;
mod peer;
mod self_test;

/// Entry points for the fuzz targets in `fuzz/`: not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes `file` as both kinds of key file; must never panic.
    pub fn decode_key_file(file: &[u8]) {
        for kind in [
            crate::keyfile::KeyKind::DsaSeed,
            crate::keyfile::KeyKind::KemExpanded,
        ] {
            let _ = crate::keyfile::decode(kind, file);
        }
    }
}

pub use backend::{Backend, ParseBackendError};
pub use component::{Crypto, CryptoStatus};
pub use error::CryptoError;
pub use id::{NODE_ID_LEN, NodeId, ParseNodeIdError};
pub use identity::{
    DSA_PUBLIC_KEY_LEN, DSA_SEED_LEN, DSA_SIGNATURE_LEN, DsaPublicKey, Identity, Signature, verify,
    verify_with,
};
pub use kem::{
    KEM_CIPHERTEXT_LEN, KEM_EXPANDED_SECRET_KEY_LEN, KEM_PUBLIC_KEY_LEN, KEM_SEED_LEN,
    KEM_SHARED_SECRET_LEN, KemCiphertext, KemKeyPair, KemPublicKey, SharedSecret,
};
pub use keyfile::KeyFileProblem;
pub use keystore::{
    IDENTITY_FILE, KEM_FILE, KeyFileError, KeyPolicy, LoadedKeys, NodeKeys, load_or_create,
};
pub use peer::{Algorithm, PEER_ID_LEN, ParsePeerIdError, PeerId};
pub use self_test::{SelfTestError, SelfTestReport, self_test};
