//! The crypto component as the node sees it: keys, self-test, status, health.

use std::path::Path;

use pqnode_health::Health;
use serde::Serialize;

use crate::{
    Backend, Identity, KemKeyPair, KeyFileError, KeyPolicy, LoadedKeys, NodeId, NodeKeys,
    SelfTestError, SelfTestReport, load_or_create, self_test,
};

/// The spec's name for the pair of algorithms (their round-3 names).
const ALGORITHM: &str = "Kyber1024-Dilithium5";
const KEM_ALGORITHM: &str = "ML-KEM-1024";
const SIGNATURE_ALGORITHM: &str = "ML-DSA-87";

/// The node's crypto component: its keys, on one backend, self-tested at start.
#[derive(Debug)]
pub struct Crypto {
    keys: NodeKeys,
    production: bool,
    created_identity: bool,
    warnings: Vec<String>,
    self_test: Result<SelfTestReport, SelfTestError>,
}

impl Crypto {
    /// Loads (or on first start creates) the keys in `data_dir`, then runs the self-test.
    ///
    /// A failed self-test does not stop this: the component reports itself
    /// uninitialized and unhealthy, and the caller decides.
    pub fn start(data_dir: &Path, policy: KeyPolicy) -> Result<Self, KeyFileError> {
        load_or_create(data_dir, policy).map(|loaded| Self::from_loaded(loaded, policy.production))
    }

    /// Self-tests keys that were loaded elsewhere.
    pub fn from_loaded(loaded: LoadedKeys, production: bool) -> Self {
        let self_test = self_test(&loaded.keys);
        Self {
            keys: loaded.keys,
            production,
            created_identity: loaded.created_identity,
            warnings: loaded.warnings,
            self_test,
        }
    }

    /// Both long-term key pairs.
    pub fn keys(&self) -> &NodeKeys {
        &self.keys
    }

    /// The ML-DSA-87 identity: signs for this node.
    pub fn identity(&self) -> &Identity {
        &self.keys.identity
    }

    /// The static ML-KEM-1024 key pair.
    pub fn kem(&self) -> &KemKeyPair {
        &self.keys.kem
    }

    /// This node's id, derived from its ML-DSA-87 public key.
    pub fn node_id(&self) -> NodeId {
        self.keys.identity.node_id()
    }

    /// The backend the identity runs on.
    pub fn backend(&self) -> Backend {
        self.keys.identity.backend()
    }

    /// True if this start created a new identity (and so a new node id).
    pub fn created_identity(&self) -> bool {
        self.created_identity
    }

    /// Problems found while loading that did not stop it, for the caller to log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What the start-up self-test measured, or why it failed.
    pub fn self_test(&self) -> Result<&SelfTestReport, &SelfTestError> {
        self.self_test.as_ref()
    }

    /// True only if the self-test passed.
    pub fn is_initialized(&self) -> bool {
        self.self_test.is_ok()
    }

    /// The body of `/api/crypto/status`.
    pub fn status(&self) -> CryptoStatus {
        let report = self.self_test.as_ref().ok();
        CryptoStatus {
            initialized: report.is_some(),
            algorithm: ALGORITHM,
            kem: KEM_ALGORITHM,
            signature: SIGNATURE_ALGORITHM,
            key_pairs: 2,
            kyber_key_size: Some(self.keys.kem.public_key().as_bytes().len()),
            dilithium_key_size: Some(self.keys.identity.public_key().as_bytes().len()),
            signature_size: report.map(|r| r.signature_len),
            backend: self.backend(),
            node_id: Some(self.node_id()),
            production: self.production,
            error: self
                .self_test
                .as_ref()
                .err()
                .map(|e| self_test_failure(self.backend(), e)),
        }
    }

    /// Fails if the self-test failed; warns if loading left warnings (development mode).
    pub fn health(&self) -> Health {
        match &self.self_test {
            Err(e) => Health::fail(self_test_failure(self.backend(), e)),
            Ok(_) if !self.warnings.is_empty() => Health::warn(self.warnings.join("; ")),
            Ok(_) => Health::pass(),
        }
    }
}

fn self_test_failure(backend: Backend, error: &SelfTestError) -> String {
    format!("crypto self-test failed on {backend}: {error}")
}

/// `/api/crypto/status`. Sizes are measured on the keys in use; nothing secret is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CryptoStatus {
    /// True only if the start-up self-test passed.
    pub initialized: bool,
    /// The requirements' name for the pair: "Kyber1024-Dilithium5".
    pub algorithm: &'static str,
    /// The key exchange's standard name: "ML-KEM-1024".
    pub kem: &'static str,
    /// The signature's standard name: "ML-DSA-87".
    pub signature: &'static str,
    /// Long-term key pairs held: the ML-DSA-87 identity and the ML-KEM-1024 static key.
    pub key_pairs: usize,
    /// ML-KEM-1024 encapsulation key, bytes (1568).
    pub kyber_key_size: Option<usize>,
    /// ML-DSA-87 public key, bytes (2592).
    pub dilithium_key_size: Option<usize>,
    /// ML-DSA-87 signature made by the self-test, bytes (4627).
    pub signature_size: Option<usize>,
    /// The backend the keys run on.
    pub backend: Backend,
    /// This node's id; `None` when the keys could not be loaded.
    pub node_id: Option<NodeId>,
    /// Whether key files and the data folder were checked with production strictness.
    pub production: bool,
    /// Why the component is not initialized; absent when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CryptoStatus {
    /// The status when the component could not start (for example a refused
    /// key file): still answerable, with the reason.
    pub fn unavailable(backend: Backend, production: bool, reason: impl Into<String>) -> Self {
        Self {
            initialized: false,
            algorithm: ALGORITHM,
            kem: KEM_ALGORITHM,
            signature: SIGNATURE_ALGORITHM,
            key_pairs: 0,
            kyber_key_size: None,
            dilithium_key_size: None,
            signature_size: None,
            backend,
            node_id: None,
            production,
            error: Some(reason.into()),
        }
    }
}
