//! Start-up step 2: the node's post-quantum keys.

use anyhow::bail;
use pqnode_crypto::{Backend, Crypto, KeyPolicy, NodeId};
use pqnode_health::Health;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use super::{Component, StatsFuture};
use crate::config::{Config, Mode};

pub(crate) struct CryptoService {
    crypto: Crypto,
}

/// What `pqnode id` prints: public facts only.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdentitySummary {
    pub node_id: NodeId,
    pub signature_key_fingerprint: String,
    pub kem_key_fingerprint: String,
    pub backend: Backend,
}

impl CryptoService {
    /// Loads or creates the keys and self-tests them. In production a failed
    /// self-test stops the start; in development the node runs and reports
    /// itself unhealthy.
    pub(crate) fn start(config: &Config) -> anyhow::Result<Self> {
        let backend: Backend = config.crypto.backend.parse()?;
        if !backend.is_available() {
            bail!(
                "crypto backend {backend} is not in this build (rebuild with the `rustcrypto` feature)"
            );
        }
        let production = config.mode == Mode::Production;
        let crypto = Crypto::start(
            &config.data_dir,
            KeyPolicy {
                production,
                backend,
            },
        )?;
        for warning in crypto.warnings() {
            warn!(warning = %warning, "insecure key setup");
        }
        if crypto.created_identity() {
            info!(node_id = %crypto.node_id(), "created a new ML-DSA-87 identity");
        }
        match crypto.self_test() {
            Ok(_) => info!(backend = %backend, "crypto self-test passed"),
            Err(e) if production => bail!("crypto self-test failed on {backend}: {e}"),
            Err(e) => {
                warn!(backend = %backend, error = %e, "crypto self-test failed; crypto is reported as failed")
            }
        }
        Ok(Self { crypto })
    }

    pub(crate) fn node_id(&self) -> NodeId {
        self.crypto.node_id()
    }

    pub(crate) fn identity(&self) -> &pqnode_crypto::Identity {
        self.crypto.identity()
    }

    /// A second handle on the signing key, for components that keep their own
    /// (the DHT signs the records it publishes).
    pub(crate) fn signing_identity(&self) -> anyhow::Result<pqnode_crypto::Identity> {
        let identity = self.crypto.identity();
        Ok(pqnode_crypto::Identity::from_seed_with(
            identity.backend(),
            identity.seed(),
        )?)
    }

    /// The crypto status, with the public keys' SHA-256 fingerprints (what `pqnode id`
    /// prints), so an operator can compare them with what a peer saw.
    pub(crate) fn status_json(&self) -> Value {
        let mut status = serde_json::to_value(self.crypto.status()).unwrap_or_default();
        let summary = self.identity_summary();
        status["signatureKeyFingerprint"] = summary.signature_key_fingerprint.into();
        status["kemKeyFingerprint"] = summary.kem_key_fingerprint.into();
        status
    }

    pub(crate) fn identity_summary(&self) -> IdentitySummary {
        let fingerprint = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
        IdentitySummary {
            node_id: self.node_id(),
            signature_key_fingerprint: fingerprint(self.crypto.identity().public_key().as_bytes()),
            kem_key_fingerprint: fingerprint(self.crypto.kem().public_key().as_bytes()),
            backend: self.crypto.backend(),
        }
    }
}

impl Component for CryptoService {
    fn health(&self) -> Health {
        self.crypto.health()
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async { self.status_json() })
    }
}
