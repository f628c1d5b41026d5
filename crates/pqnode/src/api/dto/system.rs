//! Crypto status. The system monitor's sample is `monitor::SystemSnapshot` itself (schema
//! `SystemInfo`).

use serde::Deserialize;
use utoipa::ToSchema;

/// `/api/crypto/status`: algorithms, key sizes measured on the keys in use, backend, node id
/// and mode; never secret material.
///
/// The body itself is `components::crypto`'s (also the `crypto` entry's stats in
/// `/api/health`); this type describes it, and a test checks that it deserializes into this
/// type with no field left over.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "describes components::crypto's JSON (a test checks it), never built here"
)]
pub(crate) struct CryptoStatus {
    /// True only if the start-up self-test passed.
    pub initialized: bool,
    #[schema(examples("Kyber1024-Dilithium5"))]
    pub algorithm: String,
    #[schema(examples("ML-KEM-1024"))]
    pub kem: String,
    #[schema(examples("ML-DSA-87"))]
    pub signature: String,
    pub key_pairs: usize,
    /// ML-KEM-1024 encapsulation key, bytes (1568).
    pub kyber_key_size: Option<usize>,
    /// ML-DSA-87 public key, bytes (2592).
    pub dilithium_key_size: Option<usize>,
    /// ML-DSA-87 signature made by the self-test, bytes (4627).
    pub signature_size: Option<usize>,
    #[schema(examples("aws-lc-rs"))]
    pub backend: String,
    /// `null` when the keys could not be loaded.
    pub node_id: Option<String>,
    /// Whether key files and the data folder were checked with production strictness.
    pub production: bool,
    /// Why the component is not initialized; absent when it is.
    #[serde(default)]
    pub error: Option<String>,
    /// SHA-256 of the ML-DSA-87 public key, hex (what `pqnode id` prints).
    pub signature_key_fingerprint: String,
    /// SHA-256 of the ML-KEM-1024 public key, hex.
    pub kem_key_fingerprint: String,
}
